"""What the engine knows about torch operations: which kind each is, its arguments, its MACs.

Kinds (everything else is 'other': run on the whole tensors, changed pixels found by diffing):
    pointwise   output pixel (b, y, x) reads only pixel (b, y, x) of its spatial inputs:
                1x1 convs, activations, + - * /, clamp, cat along channels, BatchNorm with running
                statistics (SPADE's parameter-free norm), dropout in eval mode; InstanceNorm in
                fast mode (with the statistics cached by the last dense pass)
    conv        F.conv2d, zero padding, any kernel / stride / dilation / groups
    conv_t      F.conv_transpose2d
    index       a pure re-indexing of pixels: F.pad (reflect, replicate, circular, zeros) and
                nearest resampling (F.interpolate mode nearest / nearest-exact)
MACs follow the published convention of metrics/cost.py, applied to what really runs: conv
numel(out) * C_in/groups * kh * kw; transposed conv numel(out) * C_in * kh * kw; linear
numel(out) * in_features; elementwise mul and instance/layer/group norm numel(out).
"""
from __future__ import annotations

import inspect
import math
from typing import Any

import torch
import torch.nn.functional as F

POINTWISE = {
    "add", "__add__", "__radd__", "__iadd__", "add_", "sub", "__sub__", "__rsub__", "rsub",
    "__isub__", "sub_", "mul", "__mul__", "__rmul__", "__imul__", "mul_", "div", "__truediv__",
    "__rtruediv__", "__itruediv__", "div_", "neg", "__neg__", "relu", "relu_", "leaky_relu",
    "leaky_relu_", "tanh", "tanh_", "sigmoid", "sigmoid_", "clamp", "clamp_", "clip", "clip_",
    "hardtanh", "hardtanh_", "elu", "elu_", "gelu", "silu", "abs", "exp", "sqrt", "rsqrt",
    "pow", "__pow__", "square", "contiguous", "clone", "dropout", "batch_norm", "instance_norm",
    "cat", "concat", "softplus", "sin", "cos",
}
MULTIPLIES = {"mul", "__mul__", "__rmul__", "__imul__", "mul_"}
NORMS = {"instance_norm", "layer_norm", "group_norm"}
INDEX_MODES = {"nearest", "nearest-exact"}


def name_of(func: Any) -> str:
    return getattr(func, "__name__", "") or str(func)


_SIGNATURES: dict[Any, inspect.Signature | None] = {}


def bound(func: Any, args: tuple, kwargs: dict) -> dict[str, Any] | None:
    """Named arguments of a Python-level functional (None for builtins)."""
    if func not in _SIGNATURES:
        try:
            _SIGNATURES[func] = inspect.signature(func)
        except (TypeError, ValueError):
            _SIGNATURES[func] = None
    sig = _SIGNATURES[func]
    if sig is None:
        return None
    try:
        b = sig.bind(*args, **kwargs)
    except TypeError:
        return None
    b.apply_defaults()
    return dict(b.arguments)


def is_inplace(func: Any, args: tuple, kwargs: dict) -> bool:
    name = name_of(func)
    if name.startswith("__i") or (name.endswith("_") and not name.endswith("__")):
        return True
    named = bound(func, args, kwargs)
    return bool(named and named.get("inplace"))


def classify(func: Any, args: tuple, kwargs: dict, fast: bool) -> str:
    name = name_of(func)
    if name in POINTWISE:
        if name == "batch_norm":
            named = bound(func, args, kwargs)
            return "pointwise" if named is not None and not named.get("training") else "other"
        if name == "instance_norm":
            return "pointwise" if fast else "other"
        if name == "dropout":
            named = bound(func, args, kwargs)
            return "pointwise" if named is not None and not named.get("training") else "other"
        if name in ("cat", "concat"):
            dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
            return "pointwise" if dim in (1, -3) else "other"
        return "pointwise"
    if name == "conv2d":
        c = conv_args(args, kwargs, transposed=False)
        if c is not None and c["kernel"] == (1, 1) and c["stride"] == (1, 1) \
                and c["padding"] == (0, 0):
            return "pointwise"  # a 1x1 conv reads one pixel: a GEMM on the changed pixels
        return "conv"
    if name == "conv_transpose2d":
        return "conv_t"
    if name == "pad":
        named = bound(func, args, kwargs)
        if named is None or len(named["pad"]) != 4:
            return "other"
        if named.get("mode", "constant") == "constant" and named.get("value") not in (None, 0, 0.0):
            return "other"
        return "index"
    if name == "interpolate":
        named = bound(func, args, kwargs)
        if named is not None and named.get("mode") in INDEX_MODES and not named.get("antialias"):
            return "index"
    return "other"


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


CONV_ARGS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
CONV_T_ARGS = ("input", "weight", "bias", "stride", "padding", "output_padding", "groups",
               "dilation")
CONV_DEFAULTS = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1,
                 "output_padding": 0}


def conv_args(args: tuple, kwargs: dict, transposed: bool) -> dict[str, Any] | None:
    """F.conv2d / F.conv_transpose2d arguments by name, pairs normalised; None if unusable."""
    names = CONV_T_ARGS if transposed else CONV_ARGS
    named = {**CONV_DEFAULTS, **dict(zip(names, args)), **kwargs}
    weight = named["weight"]
    kernel = tuple(weight.shape[-2:])
    dilation = _pair(named["dilation"])
    padding = named["padding"]
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        elif padding == "same" and not transposed and all(k % 2 for k in kernel) \
                and _pair(named["stride"]) == (1, 1):
            padding = (dilation[0] * (kernel[0] - 1) // 2, dilation[1] * (kernel[1] - 1) // 2)
        else:
            return None
    named.update(kernel=kernel, stride=_pair(named["stride"]), padding=_pair(padding),
                 dilation=dilation, output_padding=_pair(named["output_padding"]),
                 groups=int(named["groups"]))
    return named


def op_macs(func: Any, args: tuple, kwargs: dict, out: Any, kind: str) -> int:
    """MACs of one executed call (published convention, see the module docstring)."""
    if not isinstance(out, torch.Tensor):
        return 0
    name = name_of(func)
    if name in ("conv2d", "conv_transpose2d"):
        kind = "conv_t" if name == "conv_transpose2d" else "conv"
        c = conv_args(args, kwargs, kind == "conv_t")
        if c is None:
            return 0
        x = c["input"]
        per = x.shape[1] if kind == "conv_t" else x.shape[1] // c["groups"]
        return out.numel() * per * math.prod(c["kernel"])
    if name == "linear":
        return out.numel() * int(args[1].shape[-1] if len(args) > 1 else kwargs["weight"].shape[-1])
    if name in MULTIPLIES or name in NORMS:
        return out.numel()
    return 0


def index_map(func: Any, args: tuple, kwargs: dict, x: torch.Tensor, zero_row: int) -> torch.Tensor:
    """For an 'index' op applied to x (B, C, H, W): the flat source row of every output pixel
    (B*Ho*Wo,), `zero_row` where the op writes zeros (constant padding). Found by applying the
    op itself to a map of pixel numbers."""
    b, _, h, w = x.shape
    ids = torch.arange(b * h * w, dtype=torch.float64, device=x.device).view(b, 1, h, w)
    rest = list(args)
    rest[0] = ids
    kw = dict(kwargs)
    if name_of(func) == "pad":
        named = bound(func, tuple(rest), kw)
        if named.get("mode", "constant") == "constant":
            mapped = F.pad(ids, named["pad"], mode="constant", value=-1.0)
            return torch.where(mapped < 0, torch.full_like(mapped, zero_row), mapped).long().reshape(-1)
    mapped = func(*rest, **kw)
    return mapped.round().long().reshape(-1)
