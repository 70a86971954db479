"""Latency of the full ResNet generator vs a published compressed configuration, side by side.

Both models run in the same process, interleaved round by round, so machine load affects both
alike; the figure that matters is the ratio. Usage:
    python bench/bench_generator_latency.py [--size 256] [--rounds 5] [--config 16_16_24_16_32_64_16_24]
"""
from __future__ import annotations

import argparse
import statistics

import torch

from gancompress.metrics.cost import (
    count_macs_both,
    count_params,
    format_count,
    measure_latency,
    runtime_conditions,
)
from gancompress.models.resnet import ResnetGenerator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per model per round")
    parser.add_argument("--config", default="16_16_24_16_32_64_16_24")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {"full (ngf 64, dense)": ResnetGenerator().eval(),
              f"compressed {args.config}": ResnetGenerator(conv="separable", widths=args.config).eval()}
    x = torch.rand(1, 3, args.size, args.size) * 2 - 1
    times: dict[str, list[float]] = {name: [] for name in models}
    for name, model in models.items():  # warm-up once
        measure_latency(model, x, warmup=2, runs=1)
    for _ in range(args.rounds):
        for name, model in models.items():
            times[name].append(measure_latency(model, x, warmup=0, runs=args.runs)["median_ms"])
    print(f"conditions: {runtime_conditions('cpu')}, input 1x3x{args.size}x{args.size}")
    print(f"{'model':40s} {'params':>10s} {'MACs':>10s} {'MACs true':>10s} {'median ms':>10s}")
    rows = {}
    for name, model in models.items():
        macs, macs_true = count_macs_both(model, tuple(x.shape))
        ms = statistics.median(times[name])
        rows[name] = (macs, ms)
        print(f"{name:40s} {format_count(count_params(model)):>10s} {format_count(macs):>10s} "
              f"{format_count(macs_true):>10s} {ms:10.1f}")
    (full_macs, full_ms), (small_macs, small_ms) = rows.values()
    print(f"MAC ratio {full_macs / small_macs:.1f}x, latency ratio {full_ms / small_ms:.1f}x "
          f"(eager PyTorch)")


if __name__ == "__main__":
    main()
