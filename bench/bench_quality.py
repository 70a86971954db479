"""Benchmark: quality per MAC of the compressed student against its baselines, on the test split.

    .venv/bin/python bench/bench_quality.py [--work DIR] [--seeds 0,1] [--budgets 1/10,1/20,1/40]
        [--tasks paired,unpaired,paired-auto,unet,unet-resnet,gaugan,munit]
        [--variants fast,default,ka] [--quick] [--epochs S,SD,F,FD] [--threads 1]

Every family (the tasks, their teachers and spaces: quality/tasks.py): paired / unpaired ResNet,
paired-auto (the paired teacher as a user's plain PyTorch module, converted automatically:
issue 24 item 4; its line "auto vs hand ResNet" compares the test L1 of both), U-Net teacher
with a U-Net or a ResNet student, GauGAN on `demo-data --labels` (teacher ngf --gaugan-ngf),
MUNIT on the unpaired data. GauGAN and MUNIT run their compress preset as it is (row
"default"); the VARIANTS below are pix2pix / CycleGAN losses.

Built-in data (`gancompress demo-data`, grayscale -> colour crops of scikit-image photos; train
and test crops come from disjoint photos):
    paired    the demo's aligned colorize data; teacher `train --preset demo` (pix2pix)
    unpaired  CycleGAN-style: trainA = grayscale crops, trainB = colour crops of *other* training
              crops (no pair is ever seen); testA / testB are the test pairs, so the unpaired
              models are scored against the ground truth too. Teacher: the demo preset with
              train.task=cyclegan.
Rows, for each budget (fraction of the teacher's MACs) and seed:
    teacher            the demo teacher
    fast, output, ...  `compress` with the Fast pipeline (supernet distilled from the teacher ->
                       evolution search under the budget -> fine-tune -> extract); one supernet per
                       task / seed / variant, searched at every budget. fast = the published
                       losses; output = + L1 to the teacher's output next to the ground truth
                       (compress.lambda_output=1, paired data only: unpaired data already
                       reconstructs the teacher's output); identity1 = + CycleGAN's identity term
                       (compress.lambda_identity=1, unpaired data only); default = what
                       `gancompress compress` does (output on paired, identity1 on unpaired
                       data); ka = CAT's kernel-alignment feature distillation; see VARIANTS
    scratch-epochs     the searched config trained from scratch (pix2pix / CycleGAN, no teacher)
                       for as many epochs as the student's supernet + fine-tune stages
    scratch-wall       the same config from scratch given the compression's whole training wall
                       time (supernet + search + fine-tune): more epochs, since it runs no teacher
    uniform            the teacher uniformly narrowed (ngf scaled down until it fits the budget,
                       the student's convs), no search, from scratch at the scratch-wall epochs
The row "input as output" (GauGAN: "grey", a uniform grey image) scores the grey input itself: on colorization L1 and PSNR reward
outputs close to grey, and doing nothing scores about as well as the teacher (see the note of
issue 17); SWD and the colour metric judge the outputs as a distribution, and grey cannot win
the colour metric.
Metrics on the TEST split against the ground truth: L1 (in [-1, 1] units), PSNR (dB), SWD x1e3
(Karras et al. 2018, metrics/swd.py), colour (sliced W1 of CIELAB a*b*, metrics/colour.py); KID
/ FID are skipped (no Inception weights are bundled; the test split has 40 images, too few);
MACs at 64x64 (GauGAN: its 32x64 label maps; published convention); measured batch-1 latency
(median of 5, 1 thread, shared machine: noisy); training seconds (the teacher's not counted for the
compressed rows: it is shared). Mean and spread (min..max) over seeds.
Everything goes through the library: `train`, `compress` (Pipeline), `load_generator`; --work
reuses finished runs (each run folder resumes).
Written to --work beside results.json: table.txt (the table as printed) and manifest.json (the
command line, the versions of Python / torch / gancompress / numpy, the seeds, the settings, and
the SHA-256 of the data folders), so any figure can be rerun.
Timings on this shared 2-core machine are noisy; the quality numbers are deterministic per seed
up to thread scheduling.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

# bench/ on the path (the helpers package `quality`, and the user module the automatic
# conversion imports, also in the search's spawned workers, which read PYTHONPATH)
_BENCH = str(Path(__file__).resolve().parent)
sys.path.insert(0, _BENCH)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_BENCH] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])

from gancompress.compress.pipeline import Pipeline, compress_config  # noqa: E402
from gancompress.config import apply_overrides, preset  # noqa: E402
from gancompress.models import build_generator  # noqa: E402
from gancompress.metrics.cost import count_macs  # noqa: E402
from gancompress.models.checkpoint import load_generator  # noqa: E402
from gancompress.compress.tasks import train  # noqa: E402

from quality.common import (elapsed, fraction, image_scores, log, make_data,  # noqa: E402
                            manifest, score, summarise)
from quality.tasks import (TASKS, TEACHERS, pairs_for, scratch_args, space_for,  # noqa: E402
                           task_teacher, teacher_config)

# The method's variants: config overrides on top of the compress-demo preset + the bench's
# space, each from the published losses (PUBLISHED) with its own changes.
PUBLISHED: dict[str, Any] = {"compress.lambda_output": 0.0, "compress.lambda_identity": 0.0,
                             "compress.lambda_target": 1.0, "compress.distill_loss": "mse"}
_CHANGES: dict[str, dict[str, Any]] = {
    "fast": {},  # the published losses
    # L1 to the teacher's output next to the ground truth (paired data; compress's default)
    "output": {"compress.lambda_output": 1.0},
    # CycleGAN's identity term on the student (unpaired data; compress's default at 1)
    "identity": {"compress.lambda_identity": 0.5},
    "identity1": {"compress.lambda_identity": 1.0},
    "identity3": {"compress.lambda_identity": 3.0},
    # what `gancompress compress` does by default: output on paired, identity on unpaired data
    "default": {"compress.lambda_output": 1.0, "compress.lambda_identity": 1.0},
    # the teacher's output only, no L1 to the ground truth (the L1 to a photo pulls toward grey)
    "output-only": {"compress.lambda_output": 1.0, "compress.lambda_target": 0.0},
    # 1 - KA is at most 1 per tap (MSE of raw features is not bounded): weighted up
    "ka": {"compress.distill_loss": "ka", "compress.lambda_distill": 10.0},
    "output+ka": {"compress.lambda_output": 1.0, "compress.distill_loss": "ka",
                  "compress.lambda_distill": 10.0},
    # the default with dense student convs: the automatic conversion keeps the user's convs,
    # so this is the hand-written family's like-for-like twin of the `paired-auto` student
    "output+dense": {"compress.lambda_output": 1.0, "compress.student_conv": "dense"},
    "prune": {"compress.lambda_output": 1.0, "compress.student_init": "prune",
              "compress.student_conv": "dense"},
    # the teacher's discriminator as the student's starting D (GAN Compression reuses it)
    "output+disc": {"compress.lambda_output": 1.0, "compress.disc_init": "teacher"},
    "identity+disc": {"compress.lambda_identity": 0.5, "compress.disc_init": "teacher"},
    "output+sandwich": {"compress.lambda_output": 1.0, "compress.sampling": "sandwich"},
    # the published CycleGAN compression weight of the teacher-output L1 (10, not pix2pix's
    # 100), with the identity term
    "identity-r10": {"compress.lambda_identity": 1.0, "loss.lambda_recon": 10.0},
}
VARIANTS: dict[str, dict[str, Any]] = {k: {**PUBLISHED, **v} for k, v in _CHANGES.items()}


def same_run(task: str, variant: str) -> str:
    """The variant whose run `variant` repeats on `task`: the output and target terms are
    no-ops on unpaired data (its reconstruction already targets the teacher's output), the
    identity term one on paired data (it has the ground truth)."""
    unpaired = TEACHERS[TASKS[task].teacher].data == "unpaired"
    noop: dict[str, float] = ({"compress.lambda_output": 0.0, "compress.lambda_target": 1.0}
                              if unpaired else {"compress.lambda_identity": 0.0})
    return next(v for v in VARIANTS if {**VARIANTS[v], **noop} == {**VARIANTS[variant], **noop})


def task_variants(task: str, variants: list[str]) -> list[str]:
    """The variants run on `task`: GauGAN and MUNIT run their compress preset as it is
    ('default'), the VARIANTS being pix2pix / CycleGAN losses."""
    return variants if TASKS[task].variants else ["default"]


def compress_runs(task: str, variant: str, seed: int, teacher: Path, data: Path, work: Path,
                  args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """One supernet (task, variant, seed), searched + fine-tuned + extracted at every budget."""
    spec = TASKS[task]
    if spec.variants:
        variant = same_run(task, variant)
    changes = VARIANTS[variant] if spec.variants else {}
    over = [f"{k}={v}" for k, v in changes.items()] + [
        "train.progress=false", f"train.threads={args.threads}", f"train.seed={seed}",
        f"compress.space={space_for(task, teacher, args)}",
        *(f"compress.epochs.{stage}={a},{b}"
          for stage, (a, b) in zip(("supernet", "finetune"), task_epochs(task, args))),
        *spec.over]
    if args.generations:
        over.append(f"compress.generations={args.generations}")
    over += args.compress_override
    base = work / f"{task}-{variant}-s{seed}"
    out: dict[str, dict[str, Any]] = {}
    supernet_dir = None
    for budget in args.budgets:
        folder = base / budget.replace("/", "_")
        if args.table_only and not (folder / "report" / "report.json").is_file():
            continue
        cfg = compress_config(teacher=str(teacher), data=str(data), budget=budget,
                              preset_name=spec.compress_preset, overrides=over)
        pipe = Pipeline(cfg, folder, log=lambda s: None)
        if supernet_dir is not None and not (folder / "supernet").exists():
            # the supernet does not depend on the budget: train it once per (task, variant, seed)
            pipe.prepare()  # compress.json first: the folder is then a compression folder
            shutil.copytree(supernet_dir, folder / "supernet")
        t = time.perf_counter()
        pipe.run()
        wall = time.perf_counter() - t
        supernet_dir = folder / "supernet"
        best = json.loads((folder / "search" / "best.json").read_text())
        times = {"supernet": elapsed(folder / "supernet"), "search": float(best["seconds"]),
                 "finetune": elapsed(folder / "finetune") if (folder / "finetune").exists()
                 else 0.0}
        out[budget] = {"path": folder / "compact.pth", "config": best["best"],
                       "train_s": sum(times.values()), "times": times, "wall_s": wall}
        log(f"{task} {variant} seed {seed} {budget}: {best['best']} "
            f"({sum(times.values()):.0f} s of training + search)")
    return out


def task_epochs(task: str, args: argparse.Namespace) -> tuple[tuple[int, int], ...]:
    """(constant, decay) epochs of the supernet and the fine-tuning: --epochs, --quick's, or
    the task's compress preset's own (the default recipe as `gancompress compress` runs it)."""
    if args.epochs:
        return args.epochs
    recipe = preset(f"compress-{TASKS[task].compress_preset}").compress.epochs
    return tuple(tuple(recipe[stage]) for stage in ("supernet", "finetune"))


def scratch_config(task: str, data: dict[str, Path], seed: int, family: str,
                   generator_args: dict[str, Any], epochs: int, args: argparse.Namespace):
    """The student's architecture trained with the teacher's own recipe (pix2pix / CycleGAN /
    GauGAN / MUNIT), no teacher, at the compression's batch size."""
    cfg = teacher_config(TASKS[task].teacher, data, args)
    decay = epochs // 2
    return apply_overrides(cfg, {"model.generator": family,
                                 "model.generator_args": generator_args, "train.seed": seed,
                                 "train.batch_size": TASKS[task].batch_size,
                                 "train.epochs": epochs - decay, "train.epochs_decay": decay,
                                 "train.checkpoint_every": 1000, "train.eval_every": 1000})


def train_scratch(name: str, task: str, data: dict[str, Path], seed: int, family: str,
                  generator_args: dict[str, Any], epochs: int, work: Path,
                  args: argparse.Namespace) -> dict[str, Any] | None:
    """The run's generator and training seconds (None: --table-only and not trained yet)."""
    run = work / f"{task}-{name}-s{seed}"
    gen_file = run / TEACHERS[TASKS[task].teacher].generator
    if (run / "config.json").is_file():  # a reused run must be of this very architecture
        recorded = json.loads((run / "config.json").read_text())["model"]["generator_args"]
        if {k: recorded.get(k) for k in generator_args} != generator_args:
            raise SystemExit(f"{run} trained {recorded}, not {generator_args} (another search "
                             f"result: other settings or --variants order); use another --work")
    if args.table_only and not gen_file.is_file():
        return None
    if not gen_file.is_file():
        train(scratch_config(task, data, seed, family, generator_args, epochs, args), run,
              resume=(run / "config.json").is_file())
    return {"path": gen_file, "train_s": elapsed(run), "epochs": epochs}


def uniform_args(teacher_path: Path, budget_macs: float, conv: str) -> dict[str, Any]:
    """Constructor arguments of the teacher with every width scaled by one factor (its ngf) to
    the widest that fits the budget, with the student's convs."""
    teacher = load_generator(teacher_path)
    arch = {k: v for k, v in teacher.arch.items()
            if k not in ("widths", "in_channels", "out_channels")}
    size = (1, teacher.arch["in_channels"], 64, 64)
    for ngf in range(int(arch["ngf"]), 0, -1):
        candidate = {**arch, "ngf": ngf, "conv": conv}
        model = build_generator(teacher.arch_name, in_channels=teacher.arch["in_channels"],
                                out_channels=teacher.arch["out_channels"], **candidate)
        if count_macs(model, size) <= budget_macs:
            return {k: candidate[k] for k in ("ngf", "n_blocks", "conv") if k in candidate}
    raise SystemExit(f"no uniformly narrowed model fits {budget_macs:.3g} MACs")


# ----------------------------------------------------------------------------------------------
# Table


def table(results: dict[str, Any], args: argparse.Namespace) -> str:
    lines = []
    header = (f"{'task':11s} {'budget':6s} {'row':16s} {'L1 test (min..max)':26s} "
              f"{'PSNR dB':>8s} {'L1/teacher':>10s} {'SWD x1e3 (min..max)':24s} "
              f"{'colour (min..max)':22s} {'MACs':>8s} {'lat ms':>7s} {'train s':>8s}")
    lines += [header, "-" * len(header)]

    def spread(runs: list[dict[str, Any]], key: str, width: int) -> str:
        return f"{summarise([r.get(key, float('nan')) for r in runs], 2):{width}s}"

    def mean(runs: list[dict[str, Any]], key: str) -> float:
        return statistics.fmean(r.get(key, float("nan")) for r in runs)

    for task in args.tasks:
        t = results[task]["teacher"]
        i = results[task]["input"]  # what the metric gives for doing nothing
        rows = [("1", "teacher", [t])] + [("-", results[task]["input_name"], [i])] + [
            (budget, name, runs) for budget in args.budgets
            for name, runs in results[task]["rows"].get(budget, {}).items()]
        for budget, name, runs in rows:
            l1 = [r["l1"] for r in runs]
            lines.append(
                f"{task:11s} {budget:6s} {name:16s} {summarise(l1):26s} "
                f"{mean(runs, 'psnr'):8.2f} {statistics.fmean(l1) / t['l1']:10.3f} "
                f"{spread(runs, 'swd', 24)} {spread(runs, 'colour', 22)} "
                f"{mean(runs, 'macs') / 1e6:7.1f}M {mean(runs, 'latency_ms'):7.1f} "
                f"{mean(runs, 'train_s'):8.0f}")
    return "\n".join(lines)


def targets(results: dict[str, Any], args: argparse.Namespace, variant: str) -> list[str]:
    """Per task and budget: each metric of `variant` against the teacher (ratio; PSNR: dB),
    the from-scratch rows and the input / grey baseline."""
    out = []
    for task in args.tasks:
        teacher, grey = results[task]["teacher"], results[task]["input"]
        rows = results[task]["rows"]
        for budget in args.budgets:
            if variant not in rows.get(budget, {}):
                continue
            mine = {k: statistics.fmean(r.get(k, float("nan")) for r in rows[budget][variant])
                    for k in ("l1", "psnr", "swd", "colour")}
            line = (f"{task} {budget} {variant} / teacher: L1 {mine['l1'] / teacher['l1']:.3f}, "
                    f"PSNR {mine['psnr'] - teacher['psnr']:+.2f} dB, "
                    f"SWD {mine['swd'] / teacher['swd']:.3f}, "
                    f"colour {mine['colour'] / teacher['colour']:.3f}")
            out.append(line)
            for key in ("l1", "swd", "colour"):
                line = (f"{task} {budget} {variant}: {key} {mine[key]:.4g} vs "
                        f"{results[task]['input_name']} {grey[key]:.4g} "
                        f"({'beats' if mine[key] < grey[key] else 'does NOT beat'} it)")
                for base in ("scratch-epochs", "scratch-wall"):
                    if base in rows[budget]:
                        other = statistics.fmean(r.get(key, float("nan"))
                                                 for r in rows[budget][base])
                        line += (f"; {base} {other:.4g} "
                                 f"({'beats' if mine[key] < other else 'LOSES'})")
                out.append(line)
    if "paired" in args.tasks and "paired-auto" in args.tasks:  # issue 24 item 4
        for budget in args.budgets:
            hand = results["paired"]["rows"].get(budget, {}).get(variant)
            auto = results["paired-auto"]["rows"].get(budget, {}).get(variant)
            if hand and auto:
                h = statistics.fmean(r["l1"] for r in hand)
                a = statistics.fmean(r["l1"] for r in auto)
                out.append(f"auto vs hand ResNet {budget} {variant}: test L1 {a:.4f} vs "
                           f"{h:.4f} = {a / h:.3f}x ({'within' if abs(a / h - 1) <= 0.02 else 'NOT within'} 2%)")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--work", default="/tmp/bench_quality", help="work folder (reused: finished "
                   "runs are skipped, interrupted ones resume)")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--budgets", default="1/10,1/20,1/40")
    p.add_argument("--tasks", default="paired,unpaired",
                   help=f"of {', '.join(TASKS)} (see quality/tasks.py)")
    p.add_argument("--variants", default="fast,default",
                   help=f"method variants (of {', '.join(VARIANTS)})")
    p.add_argument("--space", default="16,12,8,6,4", help="compress.space (reaches 1/40 of the "
                   "demo teacher)")
    p.add_argument("--quick", action="store_true", help="short teacher / supernet / fine-tune "
                   "(minutes instead of hours); budgets 1/20,1/40 unless --budgets is given")
    p.add_argument("--epochs", default="", metavar="S,SD,F,FD", help="supernet constant, "
                   "supernet decay, fine-tune constant, fine-tune decay epochs (default: each "
                   "task's compress preset's, e.g. compress-demo 10,15,15,15; --quick 1,1,1,2)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--gaugan-ngf", type=int, default=0, help="the GauGAN teacher's ngf (0 = "
                   "the gaugan-demo preset's 8)")
    p.add_argument("--no-scratch", action="store_true", help="skip the from-scratch rows")
    p.add_argument("--table-only", action="store_true", help="train nothing: the table of the "
                   "runs finished in --work")
    p.add_argument("--compress-override", action="append", default=[], metavar="KEY=VALUE",
                   help="extra setting of every compression (e.g. train.max_steps=5 for a "
                   "smoke run)")
    p.add_argument("--teacher-override", action="append", default=[], metavar="KEY=VALUE",
                   help="extra setting of every teacher and from-scratch run (e.g. "
                   "train.max_steps=5 for a smoke run)")
    args = p.parse_args(argv)
    if args.quick and "--budgets" not in " ".join(argv or sys.argv):
        args.budgets = "1/20,1/40"
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.budgets = [b.strip() for b in args.budgets.split(",")]
    args.tasks = [t.strip() for t in args.tasks.split(",")]
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown:
        raise SystemExit(f"unknown task(s) {unknown}; known: {', '.join(TASKS)}")
    args.variants = [v.strip() for v in args.variants.split(",")]
    # supernet / fine-tune epochs (constant, decay): given, quick ones, or each compress
    # preset's (task_epochs)
    epochs = [int(e) for e in args.epochs.split(",")] if args.epochs else (
        [1, 1, 1, 2] if args.quick else [])
    if epochs and (len(epochs) != 4 or min(epochs) < 0):
        raise SystemExit("--epochs takes four numbers, e.g. 3,3,4,4")
    args.epochs = (tuple(epochs[:2]), tuple(epochs[2:])) if epochs else None
    args.generations = 3 if args.quick else 0
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = make_data(work)
    results: dict[str, Any] = {}
    for task in list(args.tasks):
        spec = TASKS[task]
        task_data = data[TEACHERS[spec.teacher].data]
        if args.table_only and not (work / f"teacher-{spec.teacher}" /
                                    TEACHERS[spec.teacher].generator).is_file():
            log(f"{task}: no finished teacher in {work}, left out of the table")
            args.tasks = [t for t in args.tasks if t != task]
            continue
        teacher, teacher_s = task_teacher(task, data, work, args)
        pairs = pairs_for(task, teacher, data)
        t_score = {**score(teacher, pairs), "train_s": teacher_s}
        rows: dict[str, dict[str, list[dict[str, Any]]]] = {b: {} for b in args.budgets}
        student_epochs = sum(map(sum, task_epochs(task, args)))
        variants = task_variants(task, args.variants)
        for seed in args.seeds:
            shown = set()
            for variant in variants:
                same = same_run(task, variant) if spec.variants else variant
                if same in shown:
                    continue  # the same run as a variant listed before (see same_run)
                shown.add(same)
                runs = compress_runs(task, variant, seed, teacher, task_data, work, args)
                for budget, run in runs.items():
                    rows[budget].setdefault(variant, []).append({**score(run["path"], pairs),
                                                                 **run})
            if args.no_scratch or not spec.scratch:
                continue
            ref = compress_runs(task, variants[0], seed, teacher, task_data, work, args)
            for budget, run in ref.items():
                family, gargs = scratch_args(run["path"])
                tag = budget.replace("/", "_")
                eq = train_scratch(f"scratch-epochs-{tag}", task, data, seed, family, gargs,
                                   student_epochs, work, args)
                if eq is None:
                    continue
                # equal wall time: epochs in proportion to the measured seconds per epoch
                per_epoch = eq["train_s"] / student_epochs
                wall_epochs = max(student_epochs, round(run["train_s"] / per_epoch))
                wall = train_scratch(f"scratch-wall-{tag}", task, data, seed, family, gargs,
                                     wall_epochs, work, args)
                found = [("scratch-epochs", eq), ("scratch-wall", wall)]
                if spec.uniform:
                    uni_args = uniform_args(teacher, t_score["macs"] * fraction(budget),
                                            "separable")
                    found.append(("uniform", train_scratch(
                        f"uniform-{tag}", task, data, seed, family, uni_args, wall_epochs,
                        work, args)))
                for name, r in found:
                    if r is None:
                        continue
                    rows[budget].setdefault(name, []).append({**score(r["path"], pairs), **r})
                log(f"{task} seed {seed} {budget}: scratch {student_epochs} / {wall_epochs} "
                    f"epochs")
        source, target = pairs
        if source.shape[1] in (1, target.shape[1]):  # the grey input itself, against the truth
            nothing, name = image_scores(source, target), "input as output"
        else:  # a label map is no image: a uniform grey one
            nothing, name = image_scores(torch.zeros_like(target), target), "grey"
        nothing["latency_ms"] = nothing["macs"] = nothing["train_s"] = 0.0
        results[task] = {"teacher": t_score, "input": nothing, "input_name": name, "rows": rows}
    wall_s = time.perf_counter() - t0
    heading = (f"=== Quality per MAC on the test split (40 crops of unseen photos), seeds "
               f"{args.seeds}, {'quick' if args.quick else 'full'} settings: supernet, "
               f"fine-tune epochs {', '.join(f'{t} {task_epochs(t, args)}' for t in args.tasks)}"
               f"; space {args.space} ===")
    print()
    text = "\n".join(
        [heading, table(results, args),
         "KID / FID: skipped (no Inception weights bundled; 40 test images)"]
        + [line for variant in args.variants for line in targets(results, args, variant)]
        + [f"bench wall time {wall_s:.0f} s ({args.threads} thread(s), shared machine: noisy)"])
    print(text)
    (work / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (work / "table.txt").write_text(text + "\n")
    (work / "manifest.json").write_text(json.dumps(manifest(args, data, list(sys.argv if argv is
                                                                            None else argv)),
                                                   indent=2, default=str) + "\n")
    print(f"table, results and manifest in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
