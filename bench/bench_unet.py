"""Benchmark: a pix2pix U-Net teacher vs its compressed U-Net student on the built-in demo data.

    PYTHONPATH=src .venv/bin/python bench/bench_unet.py [--work /tmp/bench_unet] [--threads 1]
        [--scale 1.0]

Built-in demo data (`gancompress demo-data`: 400 + 40 pairs, 64 px, grayscale -> colour) ->
teacher `train --preset demo-unet` (the ResNet demo's budget, 6+6 epochs = 4800 steps, with the
pix2pix U-Net defaults: 6 levels, ngf 32, batch norm, dropout, vanilla GAN, L1 x100) ->
`compress --preset demo` (Fast pipeline into a compact separable U-Net at 1/10 of the teacher's
MACs; BatchNorm re-calibrated for every scored sub-network) -> held-out report.

Prints teacher vs compact side by side: params, MACs, latency (median and p10-p90 of the
report's runs, measured one after the other in this process), held-out L1 and PSNR to the
ground truth, and the wall time of each part. --scale < 1 shrinks every epoch count (a smoke
run on a shared machine). Timings are noisy on a shared CPU; nothing here is asserted.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from gancompress.compress.pipeline import compress, compress_config
from gancompress.config import apply_overrides, preset
from gancompress.data.demo import write_demo_data
from gancompress.compress.tasks import train


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def scaled(cfg_keys: dict[str, int], scale: float) -> dict[str, int]:
    return {k: max(1, math.ceil(v * scale)) if v else 0 for k, v in cfg_keys.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/bench_unet", help="work folder (reused)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every epoch count by this (default 1 = the demo budget)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    data = work / "data"
    if not data.exists():
        write_demo_data(data)

    t = time.perf_counter()
    teacher_dir = work / "teacher"
    base = preset("demo-unet")
    epochs = scaled({"train.epochs": base.train.epochs,
                     "train.epochs_decay": base.train.epochs_decay}, args.scale)
    if not (teacher_dir / "generator.pth").is_file():
        cfg = apply_overrides(base, {"data.root": str(data), "train.progress": False,
                                     "train.threads": args.threads, **epochs})
        train(cfg, teacher_dir, resume=(teacher_dir / "config.json").is_file())
    timings["teacher training"] = time.perf_counter() - t

    t = time.perf_counter()
    demo = preset("compress-demo").compress
    stage_epochs = scaled({f"compress.{stage}_epochs{suffix}": demo.epochs[stage][i]
                           for stage in ("supernet", "finetune")
                           for i, suffix in enumerate(("", "_decay"))}, args.scale)
    cfg = compress_config(teacher=str(teacher_dir / "generator.pth"), data=str(data),
                          preset_name="demo", overrides=[
                              "train.progress=false", f"train.threads={args.threads}",
                              *(f"{k}={v}" for k, v in stage_epochs.items())])
    result = compress(cfg, work / "compressed", log=log)
    timings["compress"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    report = result["report"]
    models = report["models"]
    print()
    print(f"U-Net teacher vs compact student, demo data, {report['held_out_images']} held-out "
          f"images, input {'x'.join(map(str, report['input_size']))}, {args.threads} thread(s), "
          f"epoch scale {args.scale:g}")
    print(f"{'':24s} {'teacher':>16s} {'compact':>16s} {'ratio':>8s}")

    def row(name: str, get, fmt: str = "{:,.0f}") -> None:
        a, b = get(models["teacher"]), get(models["compact"])
        ratio = f"{b / a:.3f}" if a else "-"
        print(f"{name:24s} {fmt.format(a):>16s} {fmt.format(b):>16s} {ratio:>8s}")

    row("params", lambda m: m["params"])
    row("MACs (published)", lambda m: m["macs"])
    row("latency median (ms)", lambda m: m["latency"]["median_ms"], "{:.2f}")
    row("latency p10 (ms)", lambda m: m["latency"]["p10_ms"], "{:.2f}")
    row("latency p90 (ms)", lambda m: m["latency"]["p90_ms"], "{:.2f}")
    row("held-out L1", lambda m: m["quality"]["l1"], "{:.4f}")
    row("held-out PSNR (dB)", lambda m: m["quality"]["psnr"], "{:.2f}")
    best = json.loads((work / "compressed" / "search" / "best.json").read_text())
    print(f"compact config {best['best']} (budget {cfg.compress.budget} of the teacher's MACs)")
    for name, seconds in timings.items():
        print(f"time {name:20s} {seconds:8.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
