"""Incremental inference benchmark: dense vs incremental passes, side by side, one run.

Models (random weights: timing and MACs do not depend on them; error figures do, see below):
    gaugan-teacher      published full GauGAN (SPADE ngf 64, Cityscapes 36 input channels,
                        'more' upsampling) at 256x512
    gaugan-compressed   published compressed config 32_32_48_32_32_32_32_24 (ngf 48, separable)
    resnet-teacher      pix2pix/CycleGAN ResNet (ngf 64, 9 blocks, InstanceNorm) at 256x256
    resnet-compressed   published compressed 16_16_24_16_32_64_16_24
Inputs: a label map cut from a bundled photo (GauGAN), the photo itself (ResNet); edits are
brush strokes covering 0.5%..25% of the pixels. Per row: MACs dense vs incremental, median and
p10-p90 ms of the dense model and of the incremental call (alternating edited / original input,
so every call is one edit of that size) at the given threads, max abs error and PSNR against
the dense output, cached memory.

    python bench/bench_incremental.py --json            # all models, fractions, both modes
    python bench/bench_incremental.py --models gaugan-compressed --fractions 0.02 --modes fast

Run it on an idle machine: a second busy process makes the timings meaningless.
"""
from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time

import torch

from gancompress.incremental.edits import demo_input
from gancompress.incremental.measure import profile_edit
from gancompress.models import build_generator

MODELS = {
    "gaugan-teacher": ("spade", dict(in_channels=36, ngf=64, upsampling="more"), (256, 512)),
    "gaugan-compressed": ("spade", dict(in_channels=36, ngf=48, conv="separable",
                                        upsampling="more", widths="32_32_48_32_32_32_32_24"),
                          (256, 512)),
    "resnet-teacher": ("resnet", dict(ngf=64, n_blocks=9), (256, 256)),
    "resnet-compressed": ("resnet", dict(ngf=64, conv="separable",
                                         widths="16_16_24_16_32_64_16_24"), (256, 256)),
}
FRACTIONS = (0.005, 0.01, 0.02, 0.05, 0.10, 0.25)
GAUGAN_TEACHER_MACS = 281e9  # the paper's dense GauGAN (docs/incremental.md: 281G)


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--fractions", default=",".join(map(str, FRACTIONS)))
    p.add_argument("--modes", default="fast,exact")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--teacher-runs", type=int, default=3, help="runs for the GauGAN teacher")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--block", type=int, default=8, help="tile side at full resolution")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    print(f"# {cpu_name()}, {args.threads} threads, torch {torch.__version__}, device "
          f"{args.device}", file=sys.stderr)
    for name in args.models.split(","):
        family, arch, size = MODELS[name]
        torch.manual_seed(0)
        model = build_generator(family, **arch).eval().to(args.device)
        x0 = demo_input(model, size).to(args.device)
        runs = args.teacher_runs if name == "gaugan-teacher" else args.runs
        for mode in args.modes.split(","):
            for fraction in map(float, args.fractions.split(",")):
                start = time.perf_counter()
                r = profile_edit(model, x0, fraction, mode=mode, latency=True, runs=runs,
                                 warmup=1, seed=1, block=args.block)
                r.update(model=name, wall_s=time.perf_counter() - start)
                if family == "spade":
                    r["macs_vs_paper_teacher"] = GAUGAN_TEACHER_MACS / max(1, r["macs_incremental"])
                rows.append(r)
                gc.collect()  # the session's caches (GBs for the teacher) go before the next
                lat = r["latency"]
                print(f"{name:18s} {mode:5s} {fraction:6.3f} changed {r['changed_fraction']:6.2%}  "
                      f"MACs {r['macs_dense'] / 1e9:7.2f}G -> {r['macs_incremental'] / 1e9:6.2f}G "
                      f"({r['macs_dense'] / max(1, r['macs_incremental']):5.1f}x)  "
                      f"ms {r['ms_dense']:8.1f} [{lat['dense']['p10_ms']:.0f}-{lat['dense']['p90_ms']:.0f}]"
                      f" -> {r['ms_incremental']:7.1f} [{lat['incremental']['p10_ms']:.0f}-"
                      f"{lat['incremental']['p90_ms']:.0f}] ({r['ms_dense'] / r['ms_incremental']:5.2f}x)"
                      f"  err {r['max_abs_error']:.1e} PSNR {r['psnr_db']:6.1f}  cache "
                      f"{r['cache_bytes'] / 2**20:6.0f} MiB", file=sys.stderr, flush=True)
        del model
    if args.json:
        print(json.dumps({"cpu": cpu_name(), "threads": args.threads, "torch": torch.__version__,
                          "device": args.device, "rows": rows}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
