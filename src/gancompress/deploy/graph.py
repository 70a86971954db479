"""The deployable form of a generator: plain torch layers, folded norms, CPU-friendly rewrites.

`deploy_module(model)` turns any loaded generator (elastic or compact, any active widths) into a
standalone `nn.Module` that computes the same function and that exporters (ONNX, TorchScript) and
runtimes handle well:

1. `compact` at the active widths, then every elastic layer becomes its plain `torch.nn` parent
   (`ElasticConv2d` -> `nn.Conv2d`, ...). The elastic forward slices weights by the input width,
   which the ONNX exporters cannot express with a static channel count (InstanceNormalization
   needs it); the plain layers have exactly the cropped weights.
2. On the torch.fx graph (skipped, harmlessly, when a model cannot be traced: onnxruntime,
   OpenVINO and TorchScript freeze fold what they can themselves):
   - a per-channel affine layer after a conv is folded into the conv's weight and bias:
     BatchNorm2d with running statistics, or any layer with a `fold_into(conv)` method (a
     student's learned per-channel scale). InstanceNorm cannot fold: its statistics are the
     image's own, computed at run time (two passes over the activation).
   - a constant-zero pad (nn.ZeroPad2d, nn.ConstantPad2d(value 0), F.pad constant 0) before a
     conv, the same on both sides of each axis, becomes the conv's own zero padding: one op
     instead of a pad that writes a padded copy of the activation. Reflection pads stay (not
     exact as conv padding).
3. Exact rewrites that trade a few extra multiplies for much better CPU kernels (measured in
   bench/bench_deploy.py, see the report in deploy/__init__.py):
   - a conv with very few outputs (the 7x7 24->3 head of the ResNet generator) runs as a
     stride-r conv with r*r*cout outputs followed by pixel_shuffle ("output phases"): with 3
     outputs the CPU GEMM / NCHWc kernels run at ~1/5 of their peak (they pad to 16 output
     channels), with 48 they are efficient; the head went from ~50% of onnxruntime time to ~12%.
   - a strided ConvTranspose2d becomes an ordinary conv with stride*stride*cout outputs followed
     by pixel_shuffle (sub-pixel convolution): onnxruntime's ConvTranspose is an im2col/col2im
     kernel without NCHWc or int8 (QLinearConv) support (fp32: neutral, int8: ~6% faster).
     oneDNN's transposed conv is fast, so the PyTorch paths (TorchScript, torch.compile) keep it
     (`transposed=False`).
   Both only re-arrange the same weights (zeros where a tap does not apply); outputs agree with
   the original to float rounding (~1e-6), which every export verifies.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from gancompress.errors import UserError
from gancompress.models.elastic import (
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticConvTranspose2d,
    ElasticGenerator,
    ElasticInstanceNorm2d,
    compact,
    current_widths,
)

# A conv with at most this many outputs is rewritten to output phases (stride FEW_OUT_PHASES).
FEW_OUT_CHANNELS = 4
FEW_OUT_PHASES = 4


# ----------------------------------------------------------------------------------------------
# 1. plain layers
# ----------------------------------------------------------------------------------------------

def _plain_conv(m: nn.Module) -> nn.Module:
    transpose = isinstance(m, nn.ConvTranspose2d)
    kwargs = dict(stride=m.stride, padding=m.padding, dilation=m.dilation, groups=m.groups,
                  bias=m.bias is not None, padding_mode=m.padding_mode)
    if transpose:
        kwargs.pop("padding_mode")
        plain = nn.ConvTranspose2d(m.in_channels, m.out_channels, m.kernel_size,
                                   output_padding=m.output_padding, **kwargs)
    else:
        plain = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, **kwargs)
    plain.load_state_dict(m.state_dict())
    return plain


def _plain_norm(m: nn.Module) -> nn.Module:
    cls = nn.BatchNorm2d if isinstance(m, nn.BatchNorm2d) else nn.InstanceNorm2d
    plain = cls(m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine,
                track_running_stats=m.track_running_stats)
    plain.load_state_dict(m.state_dict())
    return plain


def plain_module(model: nn.Module) -> nn.Module:
    """Copy of `model` at its active widths with every elastic layer replaced by its torch.nn
    parent class (same weights, same function), in eval mode on the CPU."""
    if isinstance(model, ElasticGenerator):
        model = compact(model, current_widths(model))
    else:
        model = copy.deepcopy(model)
    model = model.cpu().eval()
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (ElasticConv2d, ElasticConvTranspose2d)):
                setattr(parent, name, _plain_conv(child))
            elif isinstance(child, (ElasticBatchNorm2d, ElasticInstanceNorm2d)):
                setattr(parent, name, _plain_norm(child))
    return model


# ----------------------------------------------------------------------------------------------
# 3. exact rewrites
# ----------------------------------------------------------------------------------------------

class PhaseConv2d(nn.Module):
    """A stride-1, unpadded conv computed as a stride-r conv with r*r*cout outputs + pixel_shuffle.

    Output pixel (r*i + a, r*j + b) is channel (o, a, b) of a stride-r conv whose kernel is the
    original kxk kernel placed at offset (a, b) inside a (k+r-1)x(k+r-1) zero kernel.
    """

    def __init__(self, conv: nn.Conv2d, r: int = FEW_OUT_PHASES):
        super().__init__()
        w = conv.weight.detach()                     # (cout, cin, kh, kw)
        cout, cin, kh, kw = w.shape
        weight = w.new_zeros(cout, r, r, cin, kh + r - 1, kw + r - 1)
        for a in range(r):
            for b in range(r):
                weight[:, a, b, :, a:a + kh, b:b + kw] = w
        self.conv = nn.Conv2d(cin, cout * r * r, (kh + r - 1, kw + r - 1), stride=r,
                              bias=conv.bias is not None)
        self.conv.weight.data = weight.reshape(cout * r * r, cin, kh + r - 1, kw + r - 1)
        if conv.bias is not None:
            self.conv.bias.data = conv.bias.detach().repeat_interleave(r * r)
        self.r, self.kh, self.kw = r, kh, kw
        self.pad = tuple(int(v) for v in conv.padding)  # zero padding (a fused zero pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, (self.pad[1], self.pad[1], self.pad[0], self.pad[0]))
        r, (h, w) = self.r, x.shape[-2:]
        out_h, out_w = h - self.kh + 1, w - self.kw + 1
        rows, cols = -(-out_h // r), -(-out_w // r)
        need_h, need_w = r * (rows - 1) + self.kh + r - 1, r * (cols - 1) + self.kw + r - 1
        if need_h != h or need_w != w:  # zeros only feed outputs that are cropped below
            x = F.pad(x, (0, need_w - w, 0, need_h - h))
        y = F.pixel_shuffle(self.conv(x), r)
        if y.shape[-2] != out_h or y.shape[-1] != out_w:
            y = y[..., :out_h, :out_w]
        return y


class SubpixelConvTranspose2d(nn.Module):
    """ConvTranspose2d (groups 1, dilation 1) as conv with s*s*cout outputs + pixel_shuffle.

    Output row s*i + a of a transposed conv (stride s, padding p) reads input row
    i + (a + p - k) / s through tap k, for the taps with (a + p - k) divisible by s; collecting
    those offsets for every phase a gives one small ordinary conv per phase.
    """

    def __init__(self, conv: nn.ConvTranspose2d):
        super().__init__()
        (s, s2), (k, k2), (p, p2) = conv.stride, conv.kernel_size, conv.padding
        if s != s2 or k != k2 or p != p2 or conv.groups != 1 or conv.dilation != (1, 1):
            raise ValueError("only square, ungrouped, undilated transposed convs are rewritten")
        w = conv.weight.detach()                     # (cin, cout, k, k)
        cin, cout = w.shape[:2]
        offsets = [(a + p - t) // s for a in range(s) for t in range(k) if (a + p - t) % s == 0]
        lo, size = min(offsets), max(offsets) - min(offsets) + 1
        weight = w.new_zeros(cout, s, s, cin, size, size)
        for a in range(s):
            for b in range(s):
                for ty in range(k):
                    for tx in range(k):
                        if (a + p - ty) % s or (b + p - tx) % s:
                            continue
                        dy, dx = (a + p - ty) // s - lo, (b + p - tx) // s - lo
                        weight[:, a, b, :, dy, dx] += w[:, :, ty, tx].t()
        self.conv = nn.Conv2d(cin, cout * s * s, size, bias=conv.bias is not None)
        self.conv.weight.data = weight.reshape(cout * s * s, cin, size, size)
        if conv.bias is not None:
            self.conv.bias.data = conv.bias.detach().repeat_interleave(s * s)
        self.s, self.k, self.p, self.lo, self.size = s, k, p, lo, size
        self.output_padding = conv.output_padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, (h, w) = self.s, x.shape[-2:]
        out_h = (h - 1) * s - 2 * self.p + self.k + self.output_padding[0]
        out_w = (w - 1) * s - 2 * self.p + self.k + self.output_padding[1]
        rows, cols = -(-out_h // s), -(-out_w // s)
        before = max(0, -self.lo)
        after_h = max(0, rows - 1 + self.lo + self.size - 1 - (h - 1))
        after_w = max(0, cols - 1 + self.lo + self.size - 1 - (w - 1))
        if before or after_h or after_w:  # zero padding: taps outside the input contribute 0
            x = F.pad(x, (before, after_w, before, after_h))
        if self.lo > 0:
            x = x[..., self.lo:, self.lo:]
        y = self.conv(x)
        if y.shape[-2] != rows or y.shape[-1] != cols:
            y = y[..., :rows, :cols]
        y = F.pixel_shuffle(y, s)
        if y.shape[-2] != out_h or y.shape[-1] != out_w:
            y = y[..., :out_h, :out_w]
        return y


def _rewrite(model: nn.Module, transposed: bool = True, few_outputs: bool = True) -> list[str]:
    """Replace rewritable layers in place; return the names of what was rewritten."""
    done = []
    for parent_name, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            full = f"{parent_name}.{name}" if parent_name else name
            if (transposed and type(child) is nn.ConvTranspose2d and child.groups == 1
                    and child.dilation == (1, 1) and child.stride[0] == child.stride[1] > 1
                    and child.kernel_size[0] == child.kernel_size[1]
                    and child.padding[0] == child.padding[1]):
                setattr(parent, name, SubpixelConvTranspose2d(child))
                done.append(f"{full}: ConvTranspose2d -> sub-pixel conv")
            elif (few_outputs and type(child) is nn.Conv2d
                  and child.out_channels <= FEW_OUT_CHANNELS
                  and child.stride == (1, 1) and child.groups == 1 and child.dilation == (1, 1)
                  and not isinstance(child.padding, str) and max(child.kernel_size) >= 3
                  and child.padding_mode == "zeros"):
                setattr(parent, name, PhaseConv2d(child))
                done.append(f"{full}: {child.out_channels}-output conv -> {FEW_OUT_PHASES}x"
                            f"{FEW_OUT_PHASES} output phases")
    return done


# ----------------------------------------------------------------------------------------------
# 2. BatchNorm folding on the fx graph
# ----------------------------------------------------------------------------------------------

class _Forward(nn.Module):
    """`model(x)` with every optional argument at its default, for tracing."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _folds(m: nn.Module) -> bool:
    """A per-channel affine layer that folds into the conv before it: BatchNorm2d with running
    statistics, or any layer offering `fold_into(conv)` (a student's learned scale norm)."""
    if isinstance(m, nn.BatchNorm2d):
        return bool(m.track_running_stats and m.running_mean is not None)
    return callable(getattr(m, "fold_into", None))


class _Tracer(fx.Tracer):
    """fx tracer that keeps foldable layers as single call_module nodes (fx would otherwise
    trace into a custom layer's multiply and add)."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return callable(getattr(m, "fold_into", None)) or super().is_leaf_module(m, qualname)


@torch.no_grad()
def _fold_conv_bn(conv: nn.Module, bn: nn.BatchNorm2d) -> None:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else \
        1.0 / torch.sqrt(bn.running_var + bn.eps)
    shift = (bn.bias if bn.affine else 0.0) - bn.running_mean * scale
    if isinstance(conv, nn.ConvTranspose2d):   # weight (in, out, kh, kw)
        conv.weight.mul_(scale.view(1, -1, 1, 1))
    else:                                      # weight (out, in / groups, kh, kw)
        conv.weight.mul_(scale.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(scale)
    conv.bias = nn.Parameter(bias * scale + shift)


def _trace(model: nn.Module) -> fx.GraphModule | None:
    try:
        tracer = _Tracer()
        graph = tracer.trace(_Forward(model))
    except Exception:  # noqa: BLE001 - a model fx cannot trace keeps its layers
        return None
    return fx.GraphModule(tracer.root, graph)


def _single_call(gm: fx.GraphModule, target: str) -> bool:
    """The module `target` is called at one place only (a shared conv cannot change for one)."""
    return sum(1 for n in gm.graph.nodes if n.op == "call_module" and n.target == target) == 1


def _finish(gm: fx.GraphModule) -> None:
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()


def _fold_into_convs(gm: fx.GraphModule) -> int:
    modules = dict(gm.named_modules())
    folded = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not _folds(modules.get(node.target)):
            continue
        source = node.args[0] if node.args else None
        norm = modules[node.target]
        if (not isinstance(source, fx.Node) or source.op != "call_module"
                or len(source.users) != 1 or len(node.args) != 1 or node.kwargs
                or type(modules.get(source.target)) not in (nn.Conv2d, nn.ConvTranspose2d)
                or not _single_call(gm, source.target) or not _single_call(gm, node.target)):
            continue
        conv = modules[source.target]
        if isinstance(conv, nn.ConvTranspose2d) and conv.groups != 1:
            continue
        if isinstance(norm, nn.BatchNorm2d):
            _fold_conv_bn(conv, norm)
        else:
            with torch.no_grad():
                replaced = norm.fold_into(conv)
            if isinstance(replaced, nn.Module) and replaced is not conv:
                parent, _, name = source.target.rpartition(".")
                setattr(gm.get_submodule(parent) if parent else gm, name, replaced)
                modules[source.target] = replaced
        node.replace_all_uses_with(source)
        gm.graph.erase_node(node)
        folded += 1
    return folded


def _zero_pad(node: fx.Node, modules: dict[str, nn.Module]) -> tuple[int, ...] | None:
    """(left, right, top, bottom) of a constant-zero 2-d pad node, else None."""
    if node.op == "call_module":
        m = modules.get(node.target)
        if isinstance(m, (nn.ZeroPad2d, nn.ConstantPad2d)) and float(m.value) == 0.0:
            pad = m.padding
            return tuple(int(v) for v in (pad if isinstance(pad, tuple) else (pad,) * 4))
        return None
    if node.op == "call_function" and node.target in (F.pad, torch.constant_pad_nd):
        args = list(node.args) + [None] * 4
        pad = node.kwargs.get("pad", args[1])
        mode = node.kwargs.get("mode", args[2] if node.target is F.pad else "constant")
        value = node.kwargs.get("value", args[3] if node.target is F.pad else args[2])
        if (mode or "constant") == "constant" and not value and isinstance(pad, (list, tuple)) \
                and len(pad) == 4 and all(isinstance(v, int) for v in pad):
            return tuple(pad)
    return None


def _fuse_pads(gm: fx.GraphModule) -> int:
    """Zero pad -> conv becomes the conv with that padding (one op, no padded copy of the
    activation): exact when the pad is the same on both sides of each axis."""
    modules = dict(gm.named_modules())
    fused = 0
    for node in list(gm.graph.nodes):
        pad = _zero_pad(node, modules)
        if pad is None or len(node.users) != 1:
            continue
        (user,) = node.users
        conv = modules.get(user.target) if user.op == "call_module" else None
        left, right, top, bottom = pad
        if (type(conv) is not nn.Conv2d or conv.padding_mode != "zeros"
                or isinstance(conv.padding, str) or left != right or top != bottom
                or min(pad) < 0 or user.args[0] is not node or not _single_call(gm, user.target)):
            continue
        conv.padding = (conv.padding[0] + top, conv.padding[1] + left)
        node.replace_all_uses_with(node.args[0])
        gm.graph.erase_node(node)
        fused += 1
    return fused


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """(traced module with every conv -> BatchNorm (or other foldable norm) pair folded, number
    folded). Returns the model unchanged (and 0) when it has nothing to fold or cannot be traced
    by fx."""
    if not any(_folds(m) for m in model.modules()):
        return model, 0
    gm = _trace(model)
    if gm is None:
        return model, 0
    folded = _fold_into_convs(gm)
    _finish(gm)
    return gm, folded


def fuse_graph(model: nn.Module, copy_first: bool = True) -> tuple[nn.Module, list[str]]:
    """Norm folding and zero-pad fusion on one fx trace: (module, notes). A model fx cannot
    trace, or with nothing to fold or fuse, is returned as it is (exporters and runtimes then
    fold what they can themselves). The convs are changed in place: `copy_first` (default)
    works on a copy, so `model` itself is untouched."""
    given = model
    if copy_first:
        model = copy.deepcopy(model)
    gm = _trace(model)
    if gm is None:
        return given, []
    folded = _fold_into_convs(gm)
    fused = _fuse_pads(gm)
    if not folded and not fused:
        return given, []
    _finish(gm)
    notes = []
    if folded:
        notes.append(f"folded {folded} norm layers (BatchNorm / per-channel scale) into convs")
    if fused:
        notes.append(f"fused {fused} zero pads into conv padding")
    return gm, notes


# ----------------------------------------------------------------------------------------------
# the whole pipeline
# ----------------------------------------------------------------------------------------------

def deploy_module(model: nn.Module, optimize: bool = True, transposed: bool = True) -> nn.Module:
    """The deployable module for `model` (see the module docstring). `optimize=False` keeps
    only steps 1-2 (plain layers, folded BatchNorm); `transposed=False` keeps ConvTranspose2d.
    The returned module has `.deploy_notes`."""
    plain = plain_module(model)
    plain, notes = fuse_graph(plain, copy_first=False)  # plain is already a copy
    if optimize:
        notes += _rewrite(plain, transposed=transposed)
    plain.eval()
    for p in plain.parameters():
        p.requires_grad_(False)
    plain.deploy_notes = notes
    return plain


def model_info(model: nn.Module, input_size: Sequence[int]) -> dict:
    """What a deployed file must record so that it runs without flags (JSON-serialisable)."""
    info = {"input_size": [int(v) for v in input_size],
            "input_range": getattr(model, "input_description", ElasticGenerator.input_description),
            "output_range": "[-1, 1]: uint8 = trunc(clip((y + 1) / 2 * 255, 0, 255))",
            "resize": "bicubic to input_size (H, W)"}
    if isinstance(model, ElasticGenerator):
        info["arch_name"] = model.arch_name
        info["arch"] = {**model.arch, "widths": current_widths(model)}
        try:
            info["config"] = model.config_from_widths(current_widths(model))
        except (UserError, NotImplementedError):  # widths without a config-string form
            pass
    target = latency_target(getattr(model, "meta", None))
    if target:
        info["latency_budget"] = target
    return info


def latency_target(meta) -> dict | None:
    """The runtime and precision a compressed student was searched for, from its checkpoint's
    metadata (the search's cost_info, else a latency budget and compress.latency_backend of the
    recorded compression config), else None (a MAC budget, or no record)."""
    if not isinstance(meta, dict):
        return None
    search = meta.get("search")
    info = search.get("cost_info") if isinstance(search, dict) else None
    config = next((c for c in (meta.get("train_config"), meta.get("config"))
                   if isinstance(c, dict)), {})
    compress = config.get("compress") if isinstance(config.get("compress"), dict) else {}
    budget = str(meta.get("budget") or compress.get("budget") or "").strip()
    if isinstance(info, dict) and info.get("runtime"):
        out = {"budget": budget, "runtime": info["runtime"],
               "precision": info.get("precision", "fp32")}
        if info.get("holdout_mape") is not None:
            out["latency_model_holdout_error_pct"] = info["holdout_mape"]
        return out
    if not budget or not budget.lower().endswith(("ms", "s")) or \
            budget.lower().endswith("macs"):
        return None
    runtime = str(compress.get("latency_backend") or "torch")
    runtime = {"onnxruntime": "onnx"}.get(runtime, runtime)
    precision = {"openvino-bf16": "bf16", "openvino-int8": "int8"}.get(runtime, "fp32")
    return {"budget": budget, "runtime": runtime, "precision": precision}
