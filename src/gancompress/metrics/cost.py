"""Cost model: MACs (published convention and true count), parameters, measured latency.

Published convention (docs/reference.md sec. 5, as torchprofile 0.0.1 counts; the papers' tables):
    conv             numel(output) * in_channels / groups * kh * kw      (bias free)
    conv-transpose   numel(output) * in_channels * kh * kw
    instance/layer/group norm, elementwise mul   numel(output)
    batch norm, add, activations, padding, upsampling   0
True count: the multiply-accumulates the layers really perform. It differs for a stride-s
transposed conv, which does numel(input) * out_channels / groups * kh * kw MACs (the published
rule counts every output position as if it saw all kh*kw taps: 4x too many at stride 2), and
counts one multiply per element for BatchNorm in eval too (it is a per-channel scale).

Both are counted by forward hooks on the modules, so they follow the active widths of an elastic
model: macs(g@w) is what runs, and equals macs(compact(g, w)).
"""
from __future__ import annotations

import math
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

# Rules: fn(module, input, output) -> (published MACs, true MACs). MAC_RULES holds the rules of
# torch's own layer types; a model family's layer declares its rule on its class as a
# `mac_rule` staticmethod (SPADE's Modulation, MUNIT's LayerNorm / AdaIN / GlobalPool /
# MlpLinear, U-Net's depthwise transposed conv), read here: models never import metrics, and
# no family changes the rule of a torch class for every model.
MacRule = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[int, int]]
MAC_RULES: dict[type, MacRule] = {}


def _conv_rule(m: nn.Conv2d, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    groups = x.shape[1] if getattr(m, "depthwise", False) else m.groups
    macs = y.numel() * (x.shape[1] // groups) * math.prod(m.kernel_size)
    return macs, macs


def _conv_transpose_rule(m: nn.ConvTranspose2d, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    k = math.prod(m.kernel_size)
    published = y.numel() * x.shape[1] * k
    true = x.numel() * (y.shape[1] // m.groups) * k
    return published, true


def _norm_rule(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    return y.numel(), y.numel()


def _batch_norm_rule(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    return 0, y.numel()


def _linear_rule(m: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    macs = y.numel() * x.shape[-1]  # the input width that runs (an elastic linear may be narrowed)
    return macs, macs


MAC_RULES.update({nn.Conv2d: _conv_rule, nn.ConvTranspose2d: _conv_transpose_rule,
                  nn.InstanceNorm2d: _norm_rule, nn.LayerNorm: _norm_rule, nn.GroupNorm: _norm_rule,
                  nn.BatchNorm2d: _batch_norm_rule, nn.Linear: _linear_rule})


def _rule_for(module: nn.Module) -> MacRule | None:
    """The nearest rule along the class hierarchy: a class's own `mac_rule`, else a torch type's
    rule (subclasses, e.g. elastic layers, inherit their parent's)."""
    for cls in type(module).__mro__:
        if "mac_rule" in cls.__dict__:
            return getattr(cls, "mac_rule")
        if cls in MAC_RULES:
            return MAC_RULES[cls]
    return None


def model_inputs(model: nn.Module, inputs: Any) -> tuple[torch.Tensor, ...]:
    """forward() inputs from a shape (B, C, H, W) - through the generator family's
    `profile_inputs` (its published counting inputs: label maps, ...) when it has one - a
    tensor, or a tuple of tensors."""
    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if isinstance(inputs, (tuple, list)) and inputs and all(isinstance(v, int) for v in inputs):
        shape = tuple(int(v) for v in inputs)
        if hasattr(model, "profile_inputs"):
            return model.profile_inputs(shape[-2:], batch=shape[0])
        param = next(model.parameters(), None)
        return (torch.zeros(shape, device=param.device if param is not None else "cpu"),)
    return tuple(inputs)


@torch.no_grad()
def count_macs_both(model: nn.Module, input_size: Any = (1, 3, 256, 256),
                    example: Any = None) -> tuple[int, int]:
    """(published MACs, true MACs) of one forward pass at `input_size` (a shape (B, C, H, W) or
    the inputs themselves, see `model_inputs`)."""
    totals = [0, 0]

    def hook(module, inputs, output):
        published, true = _rule_for(module)(module, inputs[0], output)
        totals[0] += int(published)
        totals[1] += int(true)

    handles = [m.register_forward_hook(hook) for m in model.modules() if _rule_for(m) is not None]
    was_training = model.training
    try:
        model.eval()
        model(*model_inputs(model, input_size if example is None else example))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return totals[0], totals[1]


def count_macs(model: nn.Module, input_size: Any = (1, 3, 256, 256),
               convention: str = "published") -> int:
    """MACs of one forward pass; convention 'published' (paper tables) or 'true'."""
    published, true = count_macs_both(model, input_size)
    if convention not in ("published", "true"):
        raise ValueError(f"convention must be 'published' or 'true', got {convention!r}")
    return published if convention == "published" else true


def count_params(model: nn.Module) -> int:
    """Number of parameters (buffers such as BatchNorm statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def format_count(n: float, unit: str = "") -> str:
    """56831770624 -> '56.83G' (the papers' style)."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{suffix}{unit}"
    return f"{n:g}{unit}"


def runtime_conditions(device: torch.device | str = "cpu") -> dict[str, Any]:
    """What a latency number depends on: device, threads, library versions."""
    device = torch.device(device)
    info: dict[str, Any] = {"device": str(device), "torch": torch.__version__,
                            "threads": torch.get_num_threads(), "python": platform.python_version()}
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    else:
        info["device_name"] = platform.processor() or platform.machine()
    return info


def measure_latency(fn: Callable[[], Any] | nn.Module, example: Any = None,
                    warmup: int = 3, runs: int = 10, device: torch.device | str | None = None,
                    min_time_s: float = 0.0) -> dict[str, Any]:
    """Time `fn()` (or `model(*inputs)` under no_grad; `example` as in `model_inputs`): warm-up,
    then `runs` timed calls.

    Each call is bracketed by a CUDA synchronize on GPU. Returns median/mean/std/min/p10/p90 in
    milliseconds plus the conditions. `min_time_s` adds runs until that much time was measured.
    """
    if isinstance(fn, nn.Module):
        model = fn
        if device is None:
            param = next(model.parameters(), None)
            device = param.device if param is not None else torch.device("cpu")

        inputs = model_inputs(model, example)

        def call():
            with torch.inference_mode():
                return model(*inputs)
    else:
        call = fn
    device = torch.device(device or "cpu")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        call()
    sync()
    times: list[float] = []
    while len(times) < runs or sum(times) < min_time_s * 1e3:
        start = time.perf_counter()
        call()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return {**summarize_times(times), "warmup": warmup, **runtime_conditions(device)}


def profile(model: nn.Module, input_size: Any = (1, 3, 256, 256), latency: bool = False,
            warmup: int = 3, runs: int = 10, device: torch.device | str | None = None,
            reference: bool = False) -> dict[str, Any]:
    """The one profile of a model: params, published and true MACs at `input_size` (a shape or
    the inputs, see `model_inputs`); with `reference`, the published MACs at the family's
    reference size (`macs_ref`, `ref_size`: the papers' tables); with `latency`, the measured
    latency at batch 1 (`latency_ms`, the median, and `latency`, the full measurement)."""
    macs, macs_true = count_macs_both(model, input_size)
    result: dict[str, Any] = {"params": count_params(model), "macs": macs, "macs_true": macs_true}
    if reference:
        ref_size = model.input_size()
        result.update(macs_ref=count_macs_both(model, ref_size)[0], ref_size=list(ref_size[-2:]))
    if latency:
        if device is not None:
            model = model.to(device)
        measured = measure_latency(model.eval(), input_size, warmup=warmup, runs=runs,
                                   device=device)
        result.update(latency_ms=measured["median_ms"], latency=measured)
    return result


def summarize_times(times_ms: list[float]) -> dict[str, float]:
    """Median, mean, std, min, p10/p25/p90 and relative spread (p90-p10)/median of timings."""
    ordered = sorted(times_ms)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]

    median = statistics.median(ordered)
    return {"median_ms": median, "mean_ms": statistics.fmean(ordered),
            "std_ms": statistics.pstdev(ordered), "min_ms": ordered[0], "p10_ms": pct(0.1),
            "p25_ms": pct(0.25), "p90_ms": pct(0.9),
            "spread": (pct(0.9) - pct(0.1)) / median if median else 0.0, "runs": len(ordered)}
