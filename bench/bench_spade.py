"""Benchmark: full vs compressed GauGAN (SPADE) at 256x512 (Cityscapes), side by side; and the
training throughput of a small GauGAN teacher step.

    .venv/bin/python bench/bench_spade.py [--threads 1] [--runs 5] [--config 32_32_48_32_32_32_32_24]

Part 1: published-convention MACs, true MACs, params, and measured batch-1 CPU latency of the full
model (ngf 64, 36 channels, 'more') and the compressed model (mobile ngf 48 at the paper's
config), timed interleaved (full, compact, full, ...) so machine load affects both alike.
Part 2: training throughput (images/s) of the `gaugan-demo` preset as it trains on the built-in
label demo data (ngf 4, 12 classes + edges, 32x64, batch 4; G + D update, hinge + feature
matching, no VGG), on random blocky label maps (no file I/O).
Medians and spread (p10-p90) of several runs; timings on a shared CPU are noisy.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from gancompress.config import preset
from gancompress.metrics.cost import count_macs_both, count_params, runtime_conditions, summarize_times
from gancompress.models.spade import SpadeGenerator


def latency_side_by_side(models: dict, runs: int) -> dict:
    inputs = {name: m.example_inputs() for name, m in models.items()}
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for name, m in models.items():  # warm-up
            m(*inputs[name])
        for _ in range(runs):
            for name, m in models.items():
                start = time.perf_counter()
                m(*inputs[name])
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: summarize_times(t) for name, t in times.items()}


def train_throughput(steps: int) -> dict:
    """Images/s of the gaugan-demo preset's training step on random label maps (no file I/O)."""
    from gancompress.data.demo import LABEL_NC
    from gancompress.data.segmaps import random_label_map, semantic_input
    from gancompress.training.objectives import TeacherTask

    cfg = preset("gaugan-demo")
    batch_size, width = cfg.train.batch_size, cfg.data.crop_size
    size = (round(width / cfg.data.aspect_ratio), width)
    task = TeacherTask(cfg, torch.device("cpu"), "gaugan")
    label, instance = random_label_map(batch_size, LABEL_NC, size,
                                       generator=torch.Generator().manual_seed(0))
    batch = {"source": semantic_input(label, instance, LABEL_NC),
             "target": torch.rand(batch_size, 3, *size) * 2 - 1}
    task.step(batch, 0)  # warm-up
    times = []
    for i in range(steps):
        start = time.perf_counter()
        task.step(batch, i + 1)
        times.append((time.perf_counter() - start) * 1e3)
    stats = summarize_times(times)
    return {"preset": "gaugan-demo", "ngf": cfg.model.generator_args["ngf"], "size": list(size),
            "batch": batch_size, **stats, "steps_per_s": 1e3 / stats["median_ms"],
            "images_per_s": batch_size * 1e3 / stats["median_ms"],
            "images_per_s_p10_p90": [batch_size * 1e3 / stats["p90_ms"],
                                     batch_size * 1e3 / stats["p10_ms"]]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--config", default="32_32_48_32_32_32_32_24")
    p.add_argument("--train-steps", type=int, default=30)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    full = SpadeGenerator(ngf=64).eval()
    compact = SpadeGenerator(ngf=48, conv="separable", widths=args.config).eval()
    models = {"full": full, f"compact {args.config}": compact}
    result = {"conditions": runtime_conditions("cpu"), "models": {}}
    for name, m in models.items():
        published, true = count_macs_both(m, m.input_size())
        result["models"][name] = {"params": count_params(m), "macs": published, "macs_true": true}
    lat = latency_side_by_side(models, args.runs)
    for name in models:
        result["models"][name]["latency"] = lat[name]
    (a, b) = models
    ra, rb = result["models"][a], result["models"][b]
    result["ratios"] = {"macs": ra["macs"] / rb["macs"], "params": ra["params"] / rb["params"],
                        "latency": ra["latency"]["median_ms"] / rb["latency"]["median_ms"]}
    result["training"] = train_throughput(args.train_steps)
    print(json.dumps(result, indent=2))
    for name, r in result["models"].items():
        lt = r["latency"]
        print(f"{name:32s} {r['params'] / 1e6:7.2f}M params {r['macs'] / 1e9:8.2f}G MACs  "
              f"{lt['median_ms']:9.1f} ms median (p10 {lt['p10_ms']:.1f}, p90 {lt['p90_ms']:.1f}, "
              f"{lt['runs']} runs)")
    print(f"ratios full/compact: MACs {result['ratios']['macs']:.2f}x, params "
          f"{result['ratios']['params']:.2f}x, CPU latency {result['ratios']['latency']:.2f}x "
          f"({args.threads} thread(s), {result['conditions']['device_name']})")
    t = result["training"]
    lo, hi = t["images_per_s_p10_p90"]
    print(f"training (gaugan-demo, ngf {t['ngf']}, {t['size'][0]}x{t['size'][1]}, batch "
          f"{t['batch']}): {t['images_per_s']:.1f} images/s ({lo:.1f}-{hi:.1f}), "
          f"{t['steps_per_s']:.2f} steps/s; step median {t['median_ms']:.0f} ms, p10 "
          f"{t['p10_ms']:.0f}, p90 {t['p90_ms']:.0f}, {t['runs']} steps")


if __name__ == "__main__":
    main()
