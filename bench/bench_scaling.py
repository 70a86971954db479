"""Data-parallel scaling of the training loop: images/s with 1, 2, ... processes, same global batch.

Trains the `demo` pix2pix teacher (ngf 24, 6 blocks, 64 px, `gancompress demo-data` images) for
a few steps through the real loop (`training.loop.train`: data loading, gradient all-reduce,
logging), once per process count, at a fixed *global* batch (per-process batch = global /
processes), interleaving the process counts over the repeats so that load changes on a shared
machine hit them alike. Reports the steady-state images/s of the job (the loop's last log window,
summed over ranks) as median [min .. max] over the repeats, and the speed-up over 1 process.

The processes are started like torchrun does (distributed.run_local: RANK, WORLD_SIZE, ...):
gloo and one torch thread per process on CPU; NCCL and one GPU per process when CUDA is there.

    python bench/bench_scaling.py                          # CPU: 1 and 2 processes
    python bench/bench_scaling.py --procs 1 2 4 8 --global-batch 32 --steps 60   # GPUs
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch

from gancompress.config import apply_overrides, preset
from gancompress.data.demo import write_demo_data
from gancompress import distributed
from gancompress.compress.tasks import train


def _worker(cfg_dict: dict, out: str) -> None:
    from gancompress.config import Config

    train(Config.from_dict(cfg_dict), out)


def measure(data: Path, work: Path, procs: int, global_batch: int, steps: int, device: str,
            tag: str) -> float:
    """Steady-state images/s of one run (the second half of its steps)."""
    cfg = apply_overrides(preset("demo"), {
        "data.root": str(data), "train.batch_size": global_batch // procs,
        "train.max_steps": steps, "train.log_every": steps // 2, "train.checkpoint_every": 10**6,
        "train.eval_every": 10**6, "train.progress": False, "train.device": device,
        "train.threads": 1 if device == "cpu" else 0})
    out = work / tag
    distributed.run_local(_worker, procs, cfg.to_dict(), str(out), timeout_s=1800)
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [r for r in records if "losses" in r][-1]["time"]["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--global-batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    for p in args.procs:
        if args.global_batch % p:
            parser.error(f"--global-batch {args.global_batch} is not divisible by {p} processes")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "data"
        write_demo_data(data, n_train=64, n_test=4)
        speeds: dict[int, list[float]] = {p: [] for p in args.procs}
        for r in range(args.repeats):
            for p in args.procs:
                speeds[p].append(measure(data, work, p, args.global_batch, args.steps,
                                         args.device, f"r{r}p{p}"))
    device = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU, 1 thread/process"
    print(f"demo pix2pix teacher, 64 px, global batch {args.global_batch}, {args.steps} steps, "
          f"{args.repeats} repeats; {device}; torch {torch.__version__}")
    print(f"{'procs':>5} {'batch/proc':>10} {'images/s median [min .. max]':>30} {'speed-up':>9}")
    base = statistics.median(speeds[args.procs[0]])
    for p in args.procs:
        med = statistics.median(speeds[p])
        print(f"{p:>5} {args.global_batch // p:>10} "
              f"{med:>12.1f} [{min(speeds[p]):.1f} .. {max(speeds[p]):.1f}]".ljust(47)
              + f"{med / base:>8.2f}x")


if __name__ == "__main__":
    main()
