"""Deployment speed, side by side: full teacher vs the compressed generator on every backend.

    python bench/bench_deploy.py [--size 256] [--runs 20] [--threads N] [--compile]
                                 [--no-latency-model] [--lat-samples 40]

Measures, in one process and timed round-robin (deploy/backends.py), batch 1:
    teacher    ResnetGenerator() (dense, ngf 64, 56.8G MACs), eager PyTorch
    compressed ResnetGenerator(conv="separable", widths="16_16_24_16_32_64_16_24") (2.64G MACs):
               eager PyTorch, TorchScript (frozen), [torch.compile], onnxruntime fp32 without and
               with the CPU rewrites (deploy/graph.py), onnxruntime int8 (QDQ)
and prints medians, spread and the speed-ups against the compressed model in eager PyTorch and
against the teacher in eager PyTorch. Then builds the latency model (deploy/latency.py) of the
channels-64-cycleGAN search space of a separable ngf-64 supernet and prints its mean absolute %
error on held-out configs and its prediction for the compressed config. Weights are random:
speed does not depend on them (the int8 PSNR printed is for random weights and smooth random
calibration images, not a quality figure).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gancompress.compress.latency import LatencyModel  # noqa: E402
from gancompress.compress.space import SearchSpace  # noqa: E402
from gancompress.deploy.backends import build_backend, measure_side_by_side  # noqa: E402
from gancompress.metrics.cost import count_macs, format_count, runtime_conditions  # noqa: E402
from gancompress.models.resnet import ResnetGenerator  # noqa: E402

CONFIG = "16_16_24_16_32_64_16_24"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="also torch.compile (slow build)")
    parser.add_argument("--no-latency-model", action="store_true")
    parser.add_argument("--lat-samples", type=int, default=40)
    parser.add_argument("--lat-backend", default="torch,onnxruntime")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    size = (1, 3, args.size, args.size)
    teacher = ResnetGenerator().eval()
    student = ResnetGenerator(conv="separable", widths=CONFIG).eval()
    macs_t, macs_s = count_macs(teacher, size), count_macs(student, size)
    print(f"teacher {format_count(macs_t)} MACs, compressed {CONFIG} {format_count(macs_s)} MACs "
          f"({macs_t / macs_s:.1f}x fewer), input {args.size}x{args.size}, batch 1")

    plan = [("teacher eager", teacher, "torch", {}),
            ("compressed eager", student, "torch", {}),
            ("compressed torchscript", student, "torchscript", {}),
            ("compressed onnx fp32 plain", student, "onnx", {"optimize": False}),
            ("compressed onnx fp32", student, "onnx", {}),
            ("compressed onnx int8", student, "onnx-int8", {})]
    if args.compile:
        plan.insert(3, ("compressed compile", student, "compile", {}))
    calls, infos = {}, {}
    for name, model, backend, kwargs in plan:
        start = time.perf_counter()
        calls[name], infos[name] = build_backend(backend, model, size, threads=args.threads,
                                                 **kwargs)
        infos[name]["build_s"] = time.perf_counter() - start
    measured = measure_side_by_side(calls, warmup=args.warmup, runs=args.runs)
    conditions = runtime_conditions("cpu")
    import onnxruntime
    print(f"{conditions['device_name']}, {torch.get_num_threads()} threads, torch "
          f"{conditions['torch']}, onnxruntime {onnxruntime.__version__}; {args.runs} runs each, "
          f"round-robin blocks of 5")
    base = measured["compressed eager"]["median_ms"]
    teacher_ms = measured["teacher eager"]["median_ms"]
    print(f"{'backend':30s} {'median ms':>10s} {'p10':>8s} {'p90':>8s} {'min':>8s} "
          f"{'vs compr. eager':>16s} {'vs teacher':>11s}")
    for name, stats in measured.items():
        print(f"{name:30s} {stats['median_ms']:10.2f} {stats['p10_ms']:8.2f} "
              f"{stats['p90_ms']:8.2f} {stats['min_ms']:8.2f} {base / stats['median_ms']:15.2f}x "
              f"{teacher_ms / stats['median_ms']:10.1f}x")
    int8 = infos["compressed onnx int8"]
    print(f"int8: PSNR vs fp32 {int8['psnr_db']:.1f} dB (random weights), "
          f"{int8['float_convs']} convs kept float; compile time: "
          f"{infos.get('compressed compile', {}).get('compile_s', float('nan')):.1f} s")
    best = min((n for n in measured if n.startswith("compressed")),
               key=lambda n: measured[n]["median_ms"])
    print(f"best path: {best}: {base / measured[best]['median_ms']:.2f}x faster than compressed "
          f"eager (target >= 2x), {teacher_ms / measured[best]['median_ms']:.1f}x faster than the "
          f"teacher eager (target >= {macs_t / macs_s:.1f}x = the MAC reduction)")

    if args.no_latency_model:
        return
    supernet = ResnetGenerator(ngf=64, conv="separable").eval()
    space = SearchSpace.for_model(teacher, "channels-64-cycleGAN")
    config = space.decode(CONFIG)
    for backend in [b for b in args.lat_backend.split(",") if b]:
        with tempfile.TemporaryDirectory() as cache:
            start = time.perf_counter()
            latency = LatencyModel.load_or_build(supernet, space, size, backend=backend,
                                                 cache_dir=cache, samples=args.lat_samples,
                                                 runs=7)
            built = time.perf_counter() - start
            fastest, fastest_ms = latency.fastest()
            predicted, measured_ms = latency.predict(config), latency.measure(config)
            fit = latency.fit
            print(f"latency model ({backend}, {space.name}, {len(fit['measured'])} fit + "
                  f"{len(fit['holdout'])} held-out configs, built in {built:.0f} s): mean abs "
                  f"error {fit['holdout_mape']:.1f}% on held-out configs ({fit['train_mape']:.1f}% "
                  f"on fit configs); {CONFIG}: predicted {predicted:.1f} ms, measured "
                  f"{measured_ms:.1f} ms (best of 10); fastest {space.encode(fastest)} "
                  f"{fastest_ms:.1f} ms")


if __name__ == "__main__":
    main()
