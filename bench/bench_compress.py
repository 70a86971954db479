"""Benchmark: compress a demo teacher end to end on this CPU; sandwich vs uniform sampling.

    .venv/bin/python bench/bench_compress.py [--work /tmp/bench_compress] [--threads 1]
        [--skip-sampling] [--sampling-epochs 12]

Part 1 (the product's promise, issue 4): built-in demo data -> teacher (`train --preset demo`)
-> `compress --preset demo` (budget 1/10 of the teacher's MACs) -> report. Prints teacher vs
compact MACs and held-out L1 to the ground truth, and the wall time of every part. Targets:
compact MACs <= 1/10 of the teacher's, held-out L1 within 5% of the teacher's, all within 30
minutes.

Part 2 (sampling rule): two supernets from the same teacher, one trained with the published
uniform sampling and one with the sandwich rule (widest + narrowest + random per step), given
the same wall time (the sandwich run gets fewer steps, in proportion to its measured step time).
Each is searched with the same evolution settings and seed at several budgets; printed side by
side: best held-out L1 per budget, widest / narrowest sub-network L1, mean L1 of 30 random
sub-networks. No fine-tuning in part 2: it compares the supernets themselves.

Figures are measured side by side in one run; nothing here is a timed assertion.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

from gancompress.compress.heldout import held_out_batches
from gancompress.compress.pipeline import Pipeline, compress, compress_config
from gancompress.compress.stages import search_supernet
from gancompress.compress.supernet import load_supernet
from gancompress.compress.scoring import ReconstructionScorer
from gancompress.compress.tasks import DistillTask, load_teacher
from gancompress.config import apply_overrides, preset
from gancompress.data import dataset_from_config
from gancompress.data.demo import write_demo_data
from gancompress.compress.tasks import train


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def part1(work: Path, threads: int) -> dict:
    timings = {}
    t0 = time.perf_counter()
    data = work / "data"
    if not data.exists():
        write_demo_data(data)
    timings["demo data"] = time.perf_counter() - t0

    t = time.perf_counter()
    teacher_dir = work / "teacher"
    if not (teacher_dir / "generator.pth").is_file():
        cfg = apply_overrides(preset("demo"), {"data.root": str(data), "train.progress": False,
                                               "train.threads": threads})
        train(cfg, teacher_dir, resume=(teacher_dir / "config.json").is_file())
    timings["teacher training"] = time.perf_counter() - t

    t = time.perf_counter()
    cfg = compress_config(teacher=str(teacher_dir / "generator.pth"), data=str(data),
                          preset_name="demo", overrides=["train.progress=false",
                                                         f"train.threads={threads}"])
    result = compress(cfg, work / "compressed", log=log)
    timings["compress"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    # per-stage training times from the run logs
    for stage in ("supernet", "finetune"):
        lines = (work / "compressed" / stage / "log.jsonl").read_text().splitlines()
        done = [json.loads(x) for x in lines if '"done"' in x]
        if done:
            timings[f"  {stage} training"] = done[-1]["elapsed_s"]
    best = json.loads((work / "compressed" / "search" / "best.json").read_text())
    timings["  search"] = best["seconds"]
    return {"report": result["report"], "timings": timings, "best": best}


def _steps_per_second(cfg, sampling: str, steps: int = 12) -> float:
    cfg = apply_overrides(cfg, {"train.task": "supernet", "compress.sampling": sampling})
    task = DistillTask(cfg, torch.device("cpu"))
    ds = dataset_from_config(cfg.data, "train", True, 0)
    batch = torch.utils.data.default_collate([ds[i] for i in range(cfg.train.batch_size)])
    for i in range(3):
        task.step(batch, i)
    t = time.perf_counter()
    for i in range(steps):
        task.step(batch, i)
    return steps / (time.perf_counter() - t)


def part2(work: Path, threads: int, epochs: int) -> dict:
    teacher_path = work / "teacher" / "generator.pth"
    base = compress_config(teacher=str(teacher_path), data=str(work / "data"),
                           preset_name="demo", overrides=["train.progress=false",
                                                          f"train.threads={threads}",
                                                          "compress.finetune_epochs=0",
                                                          "compress.finetune_epochs_decay=0"])
    torch.set_num_threads(threads)
    speed = {s: _steps_per_second(base, s) for s in ("uniform", "sandwich")}
    # same wall time: the sandwich run gets epochs in proportion to its speed
    epochs_for = {"uniform": epochs,
                  "sandwich": max(1, round(epochs * speed["sandwich"] / speed["uniform"]))}
    log(f"steps/s: uniform {speed['uniform']:.2f}, sandwich {speed['sandwich']:.2f} -> epochs "
        f"{epochs_for}")
    out: dict = {"speed": speed, "epochs": epochs_for, "arms": {}}
    teacher = load_teacher(teacher_path)
    fractions = ["1/14", "1/10", "1/7", "1/5"]  # the demo space reaches down to 1/15
    for sampling in ("uniform", "sandwich"):
        e = epochs_for[sampling]
        decay = e // 2
        cfg = apply_overrides(base, {"compress.sampling": sampling,
                                     "compress.supernet_epochs": e - decay,
                                     "compress.supernet_epochs_decay": decay})
        run_dir = work / f"sampling-{sampling}"
        pipe = Pipeline(cfg, run_dir, log=log)
        pipe.run(["supernet"])
        lines = (run_dir / "supernet" / "log.jsonl").read_text().splitlines()
        wall = [json.loads(x) for x in lines if '"done"' in x][-1]["elapsed_s"]
        supernet_path = run_dir / "supernet" / "supernet.pth"
        supernet, space, _ = load_supernet(supernet_path)
        batches, _ = held_out_batches(cfg, pipe.held_out, teacher)
        scorer = ReconstructionScorer(supernet, space, batches, "l1")
        rng = random.Random(0)
        sampled = [space.sample(rng) for _ in range(30)]
        arm = {"train_s": wall, "steps": json.loads(lines[-1]).get("step"),
               "widest": scorer(space.largest()), "narrowest": scorer(space.smallest()),
               "random_mean": sum(scorer(c) for c in sampled) / len(sampled), "best": {}}
        for fraction in fractions:
            bcfg = apply_overrides(cfg, {"compress.budget": fraction})
            folder = run_dir / f"search-{fraction.replace('/', '_')}"
            best = search_supernet(bcfg, supernet_path, folder, teacher, pipe.held_out,
                                   log=lambda s: None)
            arm["best"][fraction] = (best["best"], best["score"], best["macs"])
        arm["teacher"] = scorer.evaluate(teacher)
        out["arms"][sampling] = arm
        log(f"{sampling}: {arm}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--work", default="/tmp/bench_compress", help="work folder (reused: finished "
                   "parts are skipped)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the "
                   "machine is shared; 2 threads oversubscribe it)")
    p.add_argument("--skip-sampling", action="store_true", help="part 1 only")
    p.add_argument("--sampling-epochs", type=int, default=12,
                   help="part 2: uniform-sampling supernet epochs (sandwich: same wall time)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    r = part1(work, args.threads)
    rep = r["report"]
    t, c = rep["models"]["teacher"], rep["models"]["compact"]
    print("\n=== Part 1: demo data -> teacher -> compress --preset demo (budget "
          f"{rep.get('budget')}) on this CPU, {args.threads} thread(s) ===")
    print(f"{'':28s}{'teacher':>14s}{'compact':>14s}{'ratio':>9s}")
    print(f"{'params':28s}{t['params']:>14,}{c['params']:>14,}{c['params'] / t['params']:>9.3f}")
    print(f"{'MACs (64x64)':28s}{t['macs']:>14,}{c['macs']:>14,}{c['macs'] / t['macs']:>9.3f}")
    print(f"{'latency ms (batch 1)':28s}{t['latency_ms']:>14.2f}{c['latency_ms']:>14.2f}"
          f"{c['latency_ms'] / t['latency_ms']:>9.3f}")
    print(f"{'held-out L1 to ground truth':28s}{t['quality']['l1']:>14.4f}"
          f"{c['quality']['l1']:>14.4f}{c['quality']['l1'] / t['quality']['l1']:>9.3f}")
    print(f"{'held-out PSNR (dB)':28s}{t['quality']['psnr']:>14.2f}{c['quality']['psnr']:>14.2f}")
    print(f"compact sub-network {rep['config']} ({rep['held_out_images']} held-out images)")
    for k, v in r["timings"].items():
        print(f"time {k:24s}{v:8.0f} s")
    ok_macs = c["macs"] <= t["macs"] / 10
    ok_l1 = c["quality"]["l1"] <= 1.05 * t["quality"]["l1"]
    ok_time = r["timings"]["total"] <= 30 * 60
    print(f"targets: MACs <= 1/10: {ok_macs}; L1 within 5%: {ok_l1}; under 30 min: {ok_time}")

    if not args.skip_sampling:
        s = part2(work, args.threads, args.sampling_epochs)
        print("\n=== Part 2: supernet sampling, same wall time (demo preset, no fine-tuning) ===")
        arms = s["arms"]
        print(f"{'':30s}{'uniform':>22s}{'sandwich':>22s}")
        print(f"{'training s (steps)':30s}" + "".join(
            f"{a['train_s']:>14.0f} ({a['steps']:>5})" for a in arms.values()))
        for key, label in (("widest", "widest sub-network L1"),
                           ("narrowest", "narrowest sub-network L1"),
                           ("random_mean", "mean L1, 30 random subnets")):
            print(f"{label:30s}" + "".join(f"{a[key]:>22.4f}" for a in arms.values()))
        for fraction in arms["uniform"]["best"]:
            print(f"{'best L1 at ' + fraction + ' MACs':30s}" + "".join(
                f"{a['best'][fraction][1]:>13.4f} {a['best'][fraction][0]:>8s}"
                for a in arms.values()))
        print(f"teacher held-out L1: {arms['uniform']['teacher']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
