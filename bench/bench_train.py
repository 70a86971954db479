"""Training throughput of the teacher-training step (forward + backward of G and D, Adam updates).

Measures the pix2pix TeacherTask.step on random tensors (no data loading), side by side in one process:
    full   ngf 64, 9 blocks, dense (published pix2pix/CycleGAN teacher), PatchGAN ndf 128
    mobile the same with separable residual convs (GAN Compression's mobile teacher)
    demo   the `demo` preset (ngf 24, 6 blocks, ndf 32, 2 layers)
at 256 px (batch 1, a few steps: slow on a CPU) and at 64 px. Prints images/s and ratios.

    python bench/bench_train.py                      # CPU, torch default threads
    python bench/bench_train.py --device cuda --steps 20
"""
from __future__ import annotations

import argparse
import time

import torch

from gancompress.config import apply_overrides, preset
from gancompress.training.objectives import TeacherTask

MODELS = {
    "full": ("pix2pix-edges2shoes-r", []),
    "mobile": ("pix2pix-edges2shoes-r", ["model.conv=separable"]),
    "demo": ("demo", []),
}


def measure(name: str, size: int, batch: int, steps: int, device: torch.device) -> float:
    """Images per second of the pix2pix TeacherTask.step (after one warm-up step)."""
    base, overrides = MODELS[name]
    cfg = apply_overrides(preset(base), overrides + [f"train.batch_size={batch}"])
    torch.manual_seed(0)
    task = TeacherTask(cfg, device, "pix2pix")
    data = {"source": torch.rand(batch, 3, size, size, device=device) * 2 - 1,
            "target": torch.rand(batch, 3, size, size, device=device) * 2 - 1}
    task.step(data, 0)  # warm-up (allocator, oneDNN / cuDNN algorithm choice)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for i in range(steps):
        task.step(data, i + 1)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=3, help="timed steps at 256 px")
    parser.add_argument("--steps-small", type=int, default=10, help="timed steps at 64 px")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}")
    runs = [("full", 256, 1, args.steps), ("full", 64, 1, args.steps_small),
            ("full", 64, 4, args.steps_small), ("mobile", 64, 4, args.steps_small),
            ("demo", 64, 4, args.steps_small), ("demo", 64, 1, 4 * args.steps_small)]
    results = {}
    print(f"{'model':8s} {'px':>4s} {'batch':>5s} {'images/s':>9s} {'ms/image':>9s}")
    for name, size, batch, steps in runs:
        ips = measure(name, size, batch, steps, device)
        results[(name, size, batch)] = ips
        print(f"{name:8s} {size:4d} {batch:5d} {ips:9.2f} {1000 / ips:9.1f}")
    full256, full64 = results[("full", 256, 1)], results[("full", 64, 4)]
    print(f"full teacher: 64 px / 256 px throughput = {full64 / full256:.1f}x (pixels: 16x)")
    print(f"demo preset vs full teacher at 64 px: {results[('demo', 64, 4)] / full64:.1f}x")
    print(f"mobile vs full teacher at 64 px: {results[('mobile', 64, 4)] / full64:.2f}x")
    demo1 = results[("demo", 64, 1)]
    print(f"demo preset (batch 1): {demo1:.1f} images/s -> its 4800 steps take about "
          f"{4800 / demo1 / 60:.1f} min of pure training steps")


if __name__ == "__main__":
    main()
