"""One incremental-inference measurement: a brush-stroke edit of an input, the session's
output against a dense pass (error, PSNR), MACs both ways, cached memory, and optionally the
latency of the dense and the incremental call side by side (medians, same runtime).

Used by `gancompress profile --edit` and bench/bench_incremental.py.
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

from gancompress.incremental.edits import apply_edit, brush_stroke
from gancompress.incremental.session import IncrementalSession, modes
from gancompress.metrics.cost import summarize_times
from gancompress.metrics.quality import psnr


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def profile_edit(model: nn.Module, x0: torch.Tensor, fraction: float, mode: str = "fast",
                 latency: bool = False, runs: int = 10, warmup: int = 2, seed: int = 0,
                 **settings: Any) -> dict[str, Any]:
    """Measure one edit covering `fraction` of x0 (B, C, H, W), the model's first input.

    Latency: the dense call is the plain model (eager); the incremental call alternates the
    edited and the original input, so every timed call is one edit of that size. Both are
    timed in alternating blocks so load changes hit both alike."""
    model = model.eval()
    h, w = x0.shape[-2:]
    mask = brush_stroke(h, w, fraction, seed=seed)
    x1 = apply_edit(model, x0, mask, seed=seed)
    session = IncrementalSession(model, mode=mode, refresh_area=math.inf, **settings)
    session(x0)
    y = session(x1)
    stats = dict(session.stats)
    with torch.no_grad():
        dense = model(x1)
    result: dict[str, Any] = {
        "mode": mode, "mode_behaviour": modes(model)[mode],
        "input_size": list(x0.shape), "edit_fraction": fraction,
        "changed_fraction": stats["changed_fraction"],
        "macs_dense": stats["macs_dense"], "macs_incremental": stats["macs_incremental"],
        "max_abs_error": float((y - dense).abs().max()), "psnr_db": psnr(dense, y),
        "cache_bytes": session.cache_bytes, "dense_ops": stats["dense_ops"],
    }
    if latency:
        result.update(_latency(model, session, x0, x1, runs, warmup))
    return result


def _latency(model: nn.Module, session: IncrementalSession, x0: torch.Tensor,
             x1: torch.Tensor, runs: int, warmup: int) -> dict[str, Any]:
    device = x0.device
    state = {"edited": False}

    def dense() -> None:
        with torch.no_grad():
            model(x1)

    def incremental() -> None:
        state["edited"] = not state["edited"]
        session(x0 if not state["edited"] else x1)

    calls = {"dense": dense, "incremental": incremental}
    for call in calls.values():
        for _ in range(warmup):
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    block = max(1, min(5, runs))
    while any(len(t) < runs for t in times.values()):
        for name, call in calls.items():
            for _ in range(min(block, runs - len(times[name]))):
                _sync(device)
                start = time.perf_counter()
                call()
                _sync(device)
                times[name].append((time.perf_counter() - start) * 1e3)
    summary = {name: summarize_times(t) for name, t in times.items()}
    return {"ms_dense": summary["dense"]["median_ms"],
            "ms_incremental": summary["incremental"]["median_ms"],
            "latency": summary, "threads": torch.get_num_threads()}


def edit_input(model: nn.Module, size: Sequence[int], realistic: bool = False) -> torch.Tensor:
    """The first input an edit starts from: the family's example input, or a realistic one."""
    if realistic:
        from gancompress.incremental.edits import demo_input
        return demo_input(model, size)
    return model.example_inputs(size)[0]
