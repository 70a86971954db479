"""Benchmark: quality per MAC of the compressed student against its baselines, on the test split.

    .venv/bin/python bench/bench_quality.py [--work DIR] [--seeds 0,1] [--budgets 1/10,1/20,1/40]
        [--tasks paired,unpaired] [--variants fast,default,ka] [--quick] [--epochs S,SD,F,FD]
        [--threads 1]

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
The row "input as output" scores the grey input itself: on colorization L1 and PSNR reward
outputs close to grey, and doing nothing scores about as well as the teacher (see the note of
issue 17); SWD and the colour metric judge the outputs as a distribution, and grey cannot win
the colour metric.
Metrics on the TEST split against the ground truth: L1 (in [-1, 1] units), PSNR (dB), SWD x1e3
(Karras et al. 2018, metrics/swd.py), colour (sliced W1 of CIELAB a*b*, metrics/colour.py); KID
/ FID are skipped (no Inception weights are bundled; the test split has 40 images, too few);
MACs at 64x64 (published convention); training seconds (the teacher's not counted for the
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
import hashlib
import json
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from gancompress.compress.pipeline import Pipeline, compress_config
from gancompress.config import apply_overrides, preset
from gancompress.data import open_dataset
from gancompress.data.demo import write_demo_data
from gancompress.metrics.colour import colour_distance
from gancompress.metrics.cost import count_macs
from gancompress.metrics.quality import l1_per_image, psnr_per_image
from gancompress.metrics.swd import swd
from gancompress.models import build_generator
from gancompress.models.checkpoint import load_generator
from gancompress.compress.tasks import train

# The method's variants: config overrides on top of the compress-demo preset + the bench's
# space, each from the published losses (PUBLISHED) with its own changes.
PUBLISHED: dict[str, Any] = {"compress.lambda_output": 0.0, "compress.lambda_identity": 0.0,
                             "compress.distill_loss": "mse"}
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
    # 1 - KA is at most 1 per tap (MSE of raw features is not bounded): weighted up
    "ka": {"compress.distill_loss": "ka", "compress.lambda_distill": 10.0},
    "output+ka": {"compress.lambda_output": 1.0, "compress.distill_loss": "ka",
                  "compress.lambda_distill": 10.0},
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


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------------------------
# Data


def make_data(work: Path) -> dict[str, Path]:
    paired = work / "data-paired"
    if not paired.exists():
        write_demo_data(paired)
    unpaired = work / "data-unpaired"
    if not unpaired.exists():
        tmp = work / "data-unpaired.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for phase in ("train", "test"):
            files = sorted((paired / phase).glob("*.png"))
            for side in "AB":
                (tmp / f"{phase}{side}").mkdir(parents=True)
            for i, f in enumerate(files):
                with Image.open(f) as img:
                    w, h = img.size
                    a, b = img.crop((0, 0, w // 2, h)), img.crop((w // 2, 0, w, h))
                if phase == "test":  # test pairs kept (same names): scored against GT
                    a.save(tmp / "testA" / f.name)
                    b.save(tmp / "testB" / f.name)
                elif i % 2 == 0:  # training: grayscale of the even crops, colour of the odd
                    a.save(tmp / "trainA" / f.name)
                else:
                    b.save(tmp / "trainB" / f.name)
        tmp.rename(unpaired)
    return {"paired": paired, "unpaired": unpaired}


def test_pairs(paired_root: Path, in_channels: int, out_channels: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """All test (source, ground truth) pairs at 64 px, evaluation preprocessing."""
    ds = open_dataset(paired_root, mode="aligned", phase="test", direction="AtoB",
                      preprocess="resize_and_crop", load_size=64, crop_size=64, flip=False,
                      in_channels=in_channels, out_channels=out_channels, augment=False)
    items = [ds[i] for i in range(len(ds))]
    return (torch.stack([it["source"] for it in items]),
            torch.stack([it["target"] for it in items]))


def image_scores(fake: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """L1, PSNR (per image, mean), SWD and colour (the sets) of outputs against the truth."""
    if fake.shape[1] != target.shape[1]:  # a 1-channel grey input shown as a colour image
        fake = fake.expand(-1, target.shape[1], -1, -1)
    return {"l1": l1_per_image(fake, target).mean().item(),
            "psnr": psnr_per_image(fake, target).mean().item(),
            "swd": swd(fake, target),
            "colour": colour_distance(fake, target) if target.shape[1] == 3 else float("nan")}


@torch.no_grad()
def score(path: Path, pairs: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
    model = load_generator(path).eval()
    source, target = pairs
    fake = torch.cat([model(source[i:i + 16]) for i in range(0, len(source), 16)])
    return {**image_scores(fake, target),
            "macs": float(count_macs(model, (1, source.shape[1], *source.shape[-2:])))}


def folder_sha256(root: Path) -> str:
    """SHA-256 over the relative paths and bytes of every file under `root`, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def manifest(args: argparse.Namespace, data: dict[str, Path], argv: list[str]) -> dict[str, Any]:
    """What reruns the table: command, versions, seeds, settings, data hashes."""
    import numpy

    import gancompress
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()}
    return {"command": [sys.executable, *argv], "python": platform.python_version(),
            "torch": torch.__version__, "gancompress": gancompress.__version__,
            "numpy": numpy.__version__, "platform": platform.platform(),
            "seeds": args.seeds, "data_seed": 0, "settings": settings,
            "metric_seeds": {"swd": 0, "colour": 0},
            "data_sha256": {task: folder_sha256(root) for task, root in data.items()},
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _elapsed(run: Path) -> float:
    done = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if '"done"' in x]
    return float(done[-1]["elapsed_s"]) if done else float("nan")


# ----------------------------------------------------------------------------------------------
# Runs (each through the library; a finished run folder is reused)


def teacher_config(task: str, data: Path, args: argparse.Namespace):
    over: dict[str, Any] = {"data.root": str(data), "train.progress": False,
                            "train.threads": args.threads}
    if task == "unpaired":
        over.update({"train.task": "cyclegan", "data.mode": "unaligned",
                     "loss.lambda_cycle": 10.0, "loss.lambda_identity": 0.5,
                     "loss.pool_size": 50})
    if args.quick:  # half the demo's steps (the teacher is shared by every row)
        over.update({"train.epochs": 3, "train.epochs_decay": 3})
    return apply_overrides(preset("demo"), over)


def generator_file(task: str, run: Path) -> Path:
    """The translation generator a run exports (CycleGAN: the A -> B one of its two)."""
    return run / ("generator.pth" if task == "paired" else "generator_AtoB.pth")


def train_teacher(task: str, data: Path, work: Path, args: argparse.Namespace) -> Path:
    run = work / f"teacher-{task}"
    if not generator_file(task, run).is_file():
        log(f"teacher ({task}) in {run}")
        train(teacher_config(task, data, args), run, resume=(run / "config.json").is_file())
    return generator_file(task, run)


def same_run(task: str, variant: str) -> str:
    """The variant whose run `variant` repeats on `task`: the output term is a no-op on
    unpaired data (its reconstruction already targets the teacher's output), the identity
    term one on paired data (it has the ground truth)."""
    noop = {"compress.lambda_output" if task == "unpaired" else "compress.lambda_identity": 0.0}
    return next(v for v in VARIANTS if {**VARIANTS[v], **noop} == {**VARIANTS[variant], **noop})


def compress_runs(task: str, variant: str, seed: int, teacher: Path, data: Path, work: Path,
                  args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """One supernet (task, variant, seed), searched + fine-tuned + extracted at every budget."""
    variant = same_run(task, variant)
    over = [f"{k}={v}" for k, v in VARIANTS[variant].items()] + [
        "train.progress=false", f"train.threads={args.threads}", f"train.seed={seed}",
        f"compress.space={args.space}",
        f"compress.supernet_epochs={args.supernet_epochs[0]}",
        f"compress.supernet_epochs_decay={args.supernet_epochs[1]}",
        f"compress.finetune_epochs={args.finetune_epochs[0]}",
        f"compress.finetune_epochs_decay={args.finetune_epochs[1]}"]
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
                              preset_name="demo", overrides=over)
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
        times = {"supernet": _elapsed(folder / "supernet"), "search": float(best["seconds"]),
                 "finetune": _elapsed(folder / "finetune") if (folder / "finetune").exists()
                 else 0.0}
        out[budget] = {"path": folder / "compact.pth", "config": best["best"],
                       "train_s": sum(times.values()), "times": times, "wall_s": wall}
        log(f"{task} {variant} seed {seed} {budget}: {best['best']} "
            f"({sum(times.values()):.0f} s of training + search)")
    return out


def scratch_config(task: str, data: Path, seed: int, generator_args: dict[str, Any],
                   epochs: int, args: argparse.Namespace):
    """The student's architecture trained with the teacher's own recipe (pix2pix / CycleGAN),
    no teacher, at the compression's batch size."""
    cfg = teacher_config(task, data, args)
    decay = epochs // 2
    return apply_overrides(cfg, {"model.generator_args": generator_args, "train.seed": seed,
                                 "train.batch_size": args.batch_size,
                                 "train.epochs": epochs - decay, "train.epochs_decay": decay,
                                 "train.checkpoint_every": 1000, "train.eval_every": 1000})


def train_scratch(name: str, task: str, data: Path, seed: int, generator_args: dict[str, Any],
                  epochs: int, work: Path, args: argparse.Namespace) -> dict[str, Any] | None:
    """The run's generator and training seconds (None: --table-only and not trained yet)."""
    run = work / f"{task}-{name}-s{seed}"
    if (run / "config.json").is_file():  # a reused run must be of this very architecture
        recorded = json.loads((run / "config.json").read_text())["model"]["generator_args"]
        if {k: recorded.get(k) for k in generator_args} != generator_args:
            raise SystemExit(f"{run} trained {recorded}, not {generator_args} (another search "
                             f"result: other settings or --variants order); use another --work")
    if args.table_only and not generator_file(task, run).is_file():
        return None
    if not generator_file(task, run).is_file():
        train(scratch_config(task, data, seed, generator_args, epochs, args), run,
              resume=(run / "config.json").is_file())
    return {"path": generator_file(task, run), "train_s": _elapsed(run), "epochs": epochs}


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


def _fraction(text: str) -> float:
    num, _, den = text.partition("/")
    return float(num) / float(den) if den else float(text)


def summarise(values: list[float], digits: int = 4) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values)
    return (f"{mean:.{digits}f} ({min(values):.{digits}f}..{max(values):.{digits}f})"
            if len(values) > 1 else f"{mean:.{digits}f}")


def table(results: dict[str, Any], args: argparse.Namespace) -> str:
    lines = []
    header = (f"{'task':9s} {'budget':6s} {'row':16s} {'L1 test (min..max)':26s} "
              f"{'PSNR dB':>8s} {'L1/teacher':>10s} {'SWD x1e3 (min..max)':24s} "
              f"{'colour (min..max)':22s} {'MACs':>8s} {'train s':>8s}")
    lines += [header, "-" * len(header)]

    def spread(runs: list[dict[str, Any]], key: str, width: int) -> str:
        return f"{summarise([r.get(key, float('nan')) for r in runs], 2):{width}s}"

    for task in args.tasks:
        t = results[task]["teacher"]
        lines.append(f"{task:9s} {'1':6s} {'teacher':16s} {t['l1']:<26.4f} {t['psnr']:8.2f} "
                     f"{1.0:10.3f} {spread([t], 'swd', 24)} {spread([t], 'colour', 22)} "
                     f"{t['macs'] / 1e6:7.1f}M {t['train_s']:8.0f}")
        i = results[task]["input"]  # what the metric gives for doing nothing
        lines.append(f"{task:9s} {'-':6s} {'input as output':16s} {i['l1']:<26.4f} "
                     f"{i['psnr']:8.2f} {i['l1'] / t['l1']:10.3f} {spread([i], 'swd', 24)} "
                     f"{spread([i], 'colour', 22)} {0:7.1f}M {0:8.0f}")
        for budget in args.budgets:
            rows = results[task]["rows"].get(budget, {})
            for name, runs in rows.items():
                l1 = [r["l1"] for r in runs]
                lines.append(
                    f"{task:9s} {budget:6s} {name:16s} {summarise(l1):26s} "
                    f"{statistics.fmean(r['psnr'] for r in runs):8.2f} "
                    f"{statistics.fmean(l1) / t['l1']:10.3f} "
                    f"{spread(runs, 'swd', 24)} {spread(runs, 'colour', 22)} "
                    f"{statistics.fmean(r['macs'] for r in runs) / 1e6:7.1f}M "
                    f"{statistics.fmean(r['train_s'] for r in runs):8.0f}")
    return "\n".join(lines)


def targets(results: dict[str, Any], args: argparse.Namespace, variant: str) -> list[str]:
    out = []
    for task in args.tasks:
        t = results[task]["teacher"]["l1"]
        rows = results[task]["rows"]
        for budget in args.budgets:
            if variant not in rows.get(budget, {}):
                continue
            ours = statistics.fmean(r["l1"] for r in rows[budget][variant])
            line = f"{task} {budget} {variant}: L1/teacher {ours / t:.3f}"
            for base in ("scratch-epochs", "scratch-wall"):
                if base in rows[budget]:
                    other = statistics.fmean(r["l1"] for r in rows[budget][base])
                    line += f"; vs {base} {ours / other:.3f} ({'beats' if ours < other else 'LOSES'})"
            out.append(line)
            for key in ("swd", "colour"):  # the distribution metrics, judged the same way
                mine = statistics.fmean(r.get(key, float("nan")) for r in rows[budget][variant])
                teacher = results[task]["teacher"].get(key, float("nan"))
                grey = results[task]["input"].get(key, float("nan"))
                line = (f"{task} {budget} {variant}: {key} {mine:.2f}, teacher {teacher:.2f}, "
                        f"input-as-output {grey:.2f} "
                        f"({'beats grey' if mine < grey else 'does NOT beat grey'})")
                for base in ("scratch-epochs", "scratch-wall"):
                    if base in rows[budget]:
                        other = statistics.fmean(r.get(key, float("nan"))
                                                 for r in rows[budget][base])
                        line += f"; {base} {other:.2f} ({'beats' if mine < other else 'LOSES'})"
                out.append(line)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--work", default="/tmp/bench_quality", help="work folder (reused: finished "
                   "runs are skipped, interrupted ones resume)")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--budgets", default="1/10,1/20,1/40")
    p.add_argument("--tasks", default="paired,unpaired")
    p.add_argument("--variants", default="fast,default",
                   help=f"method variants (of {', '.join(VARIANTS)})")
    p.add_argument("--space", default="16,12,8,6,4", help="compress.space (reaches 1/40 of the "
                   "demo teacher)")
    p.add_argument("--quick", action="store_true", help="short teacher / supernet / fine-tune "
                   "(minutes instead of hours); budgets 1/20,1/40 unless --budgets is given")
    p.add_argument("--epochs", default="", metavar="S,SD,F,FD", help="supernet constant, "
                   "supernet decay, fine-tune constant, fine-tune decay epochs (default: the "
                   "compress-demo preset's 10,15,15,15; --quick 1,1,1,2)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-scratch", action="store_true", help="skip the from-scratch rows")
    p.add_argument("--table-only", action="store_true", help="train nothing: the table of the "
                   "runs finished in --work")
    p.add_argument("--compress-override", action="append", default=[], metavar="KEY=VALUE",
                   help="extra setting of every compression (e.g. train.max_steps=5 for a "
                   "smoke run)")
    args = p.parse_args(argv)
    if args.quick and "--budgets" not in " ".join(argv or sys.argv):
        args.budgets = "1/20,1/40"
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.budgets = [b.strip() for b in args.budgets.split(",")]
    args.tasks = [t.strip() for t in args.tasks.split(",")]
    args.variants = [v.strip() for v in args.variants.split(",")]
    # supernet / fine-tune epochs (constant, decay): the compress-demo preset's, or quick ones
    epochs = [int(e) for e in args.epochs.split(",")] if args.epochs else (
        [1, 1, 1, 2] if args.quick else [10, 15, 15, 15])
    if len(epochs) != 4 or min(epochs) < 0:
        raise SystemExit("--epochs takes four numbers, e.g. 3,3,4,4")
    args.supernet_epochs, args.finetune_epochs = tuple(epochs[:2]), tuple(epochs[2:])
    args.generations = 3 if args.quick else 0
    args.batch_size = 4  # the compress-demo preset's
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = make_data(work)
    results: dict[str, Any] = {}
    for task in args.tasks:
        teacher = train_teacher(task, data[task], work, args)
        arch = load_generator(teacher).arch
        pairs = test_pairs(data["paired"], arch["in_channels"], arch["out_channels"])
        t_score = score(teacher, pairs)
        t_score["train_s"] = _elapsed(teacher.parent)
        rows: dict[str, dict[str, list[dict[str, Any]]]] = {b: {} for b in args.budgets}
        student_epochs = sum(args.supernet_epochs) + sum(args.finetune_epochs)
        for seed in args.seeds:
            shown = set()
            for variant in args.variants:
                if same_run(task, variant) in shown:
                    continue  # the same run as a variant listed before (see same_run)
                shown.add(same_run(task, variant))
                runs = compress_runs(task, variant, seed, teacher, data[task], work, args)
                for budget, run in runs.items():
                    rows[budget].setdefault(variant, []).append({**score(run["path"], pairs),
                                                                 **run})
            if args.no_scratch:
                continue
            ref = compress_runs(task, args.variants[0], seed, teacher, data[task], work, args)
            for budget, run in ref.items():
                widths = {"conv": "separable", "widths": run["config"]}
                teacher_arch = load_generator(teacher).arch
                gargs = {"ngf": teacher_arch["ngf"], "n_blocks": teacher_arch["n_blocks"],
                         **widths}
                tag = budget.replace("/", "_")
                eq = train_scratch(f"scratch-epochs-{tag}", task, data[task], seed, gargs,
                                   student_epochs, work, args)
                if eq is None:
                    continue
                # equal wall time: epochs in proportion to the measured seconds per epoch
                per_epoch = eq["train_s"] / student_epochs
                wall_epochs = max(student_epochs, round(run["train_s"] / per_epoch))
                wall = train_scratch(f"scratch-wall-{tag}", task, data[task], seed, gargs,
                                     wall_epochs, work, args)
                uni_args = uniform_args(teacher, t_score["macs"] * _fraction(budget),
                                        "separable")
                uni = train_scratch(f"uniform-{tag}", task, data[task], seed, uni_args,
                                    wall_epochs, work, args)
                for name, r in (("scratch-epochs", eq), ("scratch-wall", wall),
                                ("uniform", uni)):
                    if r is None:
                        continue
                    rows[budget].setdefault(name, []).append({**score(r["path"], pairs), **r})
                log(f"{task} seed {seed} {budget}: scratch {student_epochs} / {wall_epochs} "
                    f"epochs, uniform {uni_args}")
        source, target = pairs  # the grey input itself, as a colour image, against the truth
        nothing = image_scores(source, target)
        results[task] = {"teacher": t_score, "input": nothing, "rows": rows}
    elapsed = time.perf_counter() - t0
    heading = (f"=== Quality per MAC on the test split (40 crops of unseen photos), seeds "
               f"{args.seeds}, {'quick' if args.quick else 'full'} settings: supernet "
               f"{args.supernet_epochs}, fine-tune {args.finetune_epochs} epochs, space "
               f"{args.space} ===")
    print()
    text = "\n".join(
        [heading, table(results, args),
         "KID / FID: skipped (no Inception weights bundled; 40 test images)"]
        + [line for variant in args.variants for line in targets(results, args, variant)]
        + [f"bench wall time {elapsed:.0f} s ({args.threads} thread(s), shared machine: noisy)"])
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
