"""Channel dependency analysis, step 2: run the recorder, then resolve width groups.

`analyze(model, inputs, pinned)` returns an `Analysis`: the width groups (name -> widest width),
for every handled layer its output parts and input parts, for every free parameter / buffer the
dimensions that follow a group, and the distillation taps. Group names are the name of the
first layer (in execution order) writing the group's channels, so they are stable across
rebuilds.

Distillation taps (the rule): for every spatial resolution of 4-d activations, the *last*
handled layer (conv, transposed conv or norm) that runs at that resolution and whose output
channels are exactly one width group; of those, the (at most) four at the lowest resolutions.
That is the output of each resolution stage, and the trunk for ResNet-like generators.
"""
from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from gancompress.errors import UserError
from gancompress.models.channel_trace import (
    CONV,
    LEAVES,
    NORM2D,
    Call,
    ChannelRecorder,
    Seg,
    Trace,
    _tensors,
    aligned,
    whole,
)

Parts = list[tuple["str | None", int]]
MAX_TAPS = 4


@dataclass
class LayerSpec:
    kind: str                      # "conv", "depthwise", "linear", "norm"
    in_parts: Parts | None = None  # None: the input keeps its width
    out_parts: Parts | None = None  # conv / linear outputs


@dataclass
class Analysis:
    groups: dict[str, int] = field(default_factory=dict)
    layers: dict[str, LayerSpec] = field(default_factory=dict)
    free: dict[tuple[str, str], list[tuple[int, Parts]]] = field(default_factory=dict)
    taps: list[tuple[str, str]] = field(default_factory=list)
    pinned: dict[str, str] = field(default_factory=dict)  # layer -> why its output keeps width
    notes: list[str] = field(default_factory=list)
    size_multiple: int = 1
    out_channels: int = 3


def check_layers(model: nn.Module, pinned: set[str]) -> None:
    """Spectral norm (or any parametrization) cannot follow a width: one UserError."""
    for name, m in model.named_modules():
        if name in pinned:
            continue
        if hasattr(m, "weight_orig") or (parametrize.is_parametrized(m) and
                                         isinstance(m, LEAVES)):
            raise UserError(f"spectral norm (or another weight parametrization) on layer "
                            f"{name!r}: its channels cannot shrink; remove it for compression "
                            f"(torch.nn.utils.remove_spectral_norm) or keep this layer's width "
                            f"fixed with pinned=[{name!r}] (--pin {name})")


def record(model: nn.Module, inputs: Sequence[torch.Tensor], pinned: set[str]) -> Trace:
    trace, labels, keep = Trace(), {}, []
    leaves = {n: m for n, m in model.named_modules() if isinstance(m, LEAVES)}
    owners = {id(t): n for n, m in leaves.items()
              for t in [*m.parameters(recurse=False), *m.buffers(recurse=False)]}
    for mname, m in model.named_modules():
        if mname in leaves:
            continue
        for attr, t in [*m._parameters.items(), *m._buffers.items()]:
            if t is None or id(t) in labels:
                continue
            dims = {d: trace.new("param", f"{mname}.{attr}" if mname else attr, size)
                    for d, size in enumerate(t.shape) if size > 1}
            labels[id(t)] = {d: whole(pid, t.shape[d]) for d, pid in dims.items()}
            keep.append(t)
            trace.free[(mname, attr)] = dims
    for i, x in enumerate(inputs):
        if x.dim() >= 2:
            pid = trace.new("input", f"input {i}", x.shape[1], "an input of the model")
            labels[id(x)] = {1: whole(pid, x.shape[1])}
    recorder = ChannelRecorder(trace, labels, keep, owners)
    side = inputs[0].shape[-2] if inputs[0].dim() == 4 else 0

    def pre(module, args):
        recorder.depth += 1

    def post(name):
        def hook(module, args, out):
            recorder.depth -= 1
            if recorder.depth == 0 and args and isinstance(args[0], torch.Tensor):
                handle(recorder, name, module, args[0], out, name in pinned)
                if side and out.dim() == 4 and 0 < out.shape[-2] < side and \
                        _scales_with_input(args[0], out, fixed):
                    trace.min_side_ratio = max(trace.min_side_ratio, side // out.shape[-2])
        return hook

    # Spatial sizes made by adaptive pooling (an SE gate's 1x1): fixed whatever the input size,
    # so neither the pool nor the layers running at that size constrain the input size.
    fixed: set[tuple[int, ...]] = set()

    handles = [m.register_forward_hook(lambda mod, args, out: fixed.add(tuple(out.shape[2:])))
               for m in model.modules() if isinstance(m, _ADAPTIVE)]
    for name, m in leaves.items():
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post(name)))
    try:
        with torch.no_grad(), recorder:
            out = model(*inputs)
    finally:
        for h in handles:
            h.remove()
    for t in _tensors(out):
        trace.output_shapes.append(tuple(t.shape))
        for segs in recorder.get(t).values():
            recorder.pin(segs, "an output of the model")
    return trace


def handle(rec: ChannelRecorder, name: str, m: nn.Module, x: torch.Tensor, out: torch.Tensor,
           pinned: bool) -> None:
    trace = rec.trace
    label = rec.get(x)
    last = x.dim() - 1
    cdim = last if isinstance(m, (nn.Linear, nn.LayerNorm)) else 1
    segs = label.get(cdim)
    why = "pinned by name" if pinned else ""
    if isinstance(m, CONV) and not pinned and m.groups > 1:
        if not (m.groups == m.in_channels == m.out_channels):
            why = "a grouped convolution keeps its widths"
    elif isinstance(m, nn.GroupNorm) and m.num_groups not in (1, m.num_channels):
        why = "GroupNorm with 1 < groups < channels keeps the width of its channels"
    elif isinstance(m, nn.LayerNorm) and len(m.normalized_shape) != 1:
        why = "LayerNorm over several dimensions"
    if why:
        for d, s in label.items():
            if d == cdim or isinstance(m, nn.LayerNorm):
                rec.pin(s, f"{why} ({name})")
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            pid = trace.layer_pid.setdefault(name, trace.new("layer", name, out.shape[cdim], why))
            rest = {d: s for d, s in label.items() if d != cdim}
            rec.put(out, {**rest, cdim: whole(pid, out.shape[cdim])})
        else:
            rec.put(out, dict(label))
        return
    depthwise = isinstance(m, CONV) and m.groups > 1
    follower = depthwise or isinstance(m, (*NORM2D, nn.LayerNorm, nn.GroupNorm))
    previous = [c for c in trace.calls if c.name == name]
    if previous and previous[0].in_segs and segs:
        rec.union(previous[0].in_segs, segs)
    if follower:
        out_segs = segs
        rec.put(out, dict(label))
    else:
        width = out.shape[cdim]
        pid = trace.layer_pid.setdefault(name, trace.new("layer", name, width))
        out_segs = whole(pid, width)
        rec.put(out, {**{d: s for d, s in label.items() if d != cdim}, cdim: out_segs})
    trace.calls.append(Call(name, m, segs, out_segs, tuple(out.shape)))


class _Sets:
    def __init__(self):
        self.parent: dict[Any, Any] = {}

    def find(self, a):
        self.parent.setdefault(a, a)
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def join(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def resolve(trace: Trace, strict: bool = True) -> Analysis:
    producers = trace.producers
    cuts: dict[int, set[int]] = defaultdict(set)
    for pid, p in enumerate(producers):
        cuts[pid] |= {0, p.width}
    seg_lists = [s for pair in trace.unions for s in pair] + [s for s, _ in trace.pins] + \
        [s for s, _ in trace.conflicts] + [c.in_segs for c in trace.calls if c.in_segs] + \
        [c.out_segs for c in trace.calls if c.out_segs]
    for segs in seg_lists:
        for pid, s, n in segs:
            cuts[pid] |= {s, s + n}
    pieces = [pair for a, b in trace.unions for pair in aligned(a, b)]
    changed = True
    while changed:  # a cut on one side of a union cuts the other side too
        changed = False
        for (pa, a0, n), (pb, b0, _) in pieces:
            for (p, s), (q, t) in (((pa, a0), (pb, b0)), ((pb, b0), (pa, a0))):
                for c in [c for c in cuts[p] if s < c < s + n and t + c - s not in cuts[q]]:
                    cuts[q].add(t + c - s)
                    changed = True
    intervals = {pid: list(zip(sorted(c), sorted(c)[1:])) for pid, c in cuts.items()}

    def nodes(seg: Seg) -> list[tuple[int, int]]:
        pid, s, n = seg
        return [(pid, lo) for lo, hi in intervals[pid] if s <= lo < s + n]

    sets = _Sets()
    for pid in intervals:
        for lo, _ in intervals[pid]:
            sets.find((pid, lo))
    for a, b in pieces:
        for na, nb in zip(nodes(a), nodes(b)):
            sets.join(na, nb)
    why: dict[Any, str] = {}
    for pid, p in enumerate(producers):
        if p.pinned:
            for lo, _ in intervals[pid]:
                why.setdefault(sets.find((pid, lo)), p.pinned)
    for segs, reason in trace.pins:
        for seg in segs:
            for node in nodes(seg):
                why.setdefault(sets.find(node), reason)
    problems = []
    for segs, reason in trace.conflicts:
        roots = {sets.find(node) for seg in segs for node in nodes(seg)} - set(why)
        if roots and strict:
            layers = sorted({producers[pid].name for pid, lo in sets.parent
                             if sets.find((pid, lo)) in roots and producers[pid].kind == "layer"})
            problems.append(f"{reason} on the channels of layer(s) {', '.join(layers)}")
        for r in roots:
            why.setdefault(r, reason)
    if problems:
        names = sorted({n.strip() for p in problems for n in p.split("layer(s) ")[1].split(",")})
        raise UserError("cannot make these channels elastic: " + "; ".join(sorted(set(problems)))
                        + f". Keep those layers at full width: pinned={names} (--pin "
                        f"{','.join(names)})")
    return _analysis(trace, intervals, nodes, sets, why)


def _analysis(trace, intervals, nodes, sets, why) -> Analysis:
    producers = trace.producers
    result = Analysis()
    names: dict[Any, str] = {}
    for pid, p in enumerate(producers):
        if p.kind != "layer":
            continue
        for lo, hi in intervals[pid]:
            root = sets.find((pid, lo))
            if root in why:
                result.pinned.setdefault(p.name, why[root])
            elif root not in names:
                suffix = "" if (lo, hi) == (0, p.width) else f"[{lo}:{hi}]"
                names[root] = p.name + suffix
                result.groups[names[root]] = hi - lo

    def parts(segs) -> Parts | None:
        if not segs:
            return None
        out = [(names.get(sets.find(node)), hi - lo)
               for seg in segs for node in nodes(seg)
               for lo, hi in [next(iv for iv in intervals[node[0]] if iv[0] == node[1])]]
        return out if any(g is not None for g, _ in out) else None

    for call in trace.calls:
        if call.name in result.layers:
            continue
        m = call.module
        if isinstance(m, CONV) and m.groups > 1:
            kind = "depthwise"
        elif isinstance(m, CONV):
            kind = "conv"
        elif isinstance(m, nn.Linear):
            kind = "linear"
        else:
            kind = "norm"
        out = parts(call.out_segs) if kind in ("conv", "linear") else None
        result.layers[call.name] = LayerSpec(kind, parts(call.in_segs), out)
    for (mname, attr), dims in trace.free.items():
        axes = [(d, parts(whole(pid, producers[pid].width))) for d, pid in dims.items()]
        axes = [(d, p) for d, p in axes if p]
        if axes:
            result.free[(mname, attr)] = axes
    by_side: dict[tuple[int, ...], tuple[str, str]] = {}
    for call in trace.calls:
        p = parts(call.out_segs)
        if len(call.out_shape) == 4 and p and len(p) == 1 and p[0][0] is not None:
            by_side[call.out_shape[2:]] = (call.name, p[0][0])
    ordered = sorted(by_side.items(), key=lambda kv: kv[0][0] * kv[0][1])[:MAX_TAPS]
    order = {c.name: i for i, c in enumerate(trace.calls)}
    result.taps = sorted((v for _, v in ordered), key=lambda t: order[t[0]])
    result.notes = sorted(trace.notes)
    result.size_multiple = trace.min_side_ratio
    result.out_channels = trace.output_shapes[0][1] if trace.output_shapes and \
        len(trace.output_shapes[0]) > 1 else 0
    return result


_ADAPTIVE = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
             nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)


def _scales_with_input(x: torch.Tensor, out: torch.Tensor, fixed: set[tuple[int, ...]]
                       ) -> bool:
    """Whether `out`'s spatial size follows the model's input size (then it sets the input
    size multiple): not for layers that keep a fixed size made by adaptive pooling."""
    return not (x.dim() == out.dim() and tuple(x.shape[2:]) == tuple(out.shape[2:])
                and tuple(out.shape[2:]) in fixed)


def analyze(model: nn.Module, inputs: Sequence[torch.Tensor], pinned: Sequence[str] = (),
            strict: bool = True) -> Analysis:
    """Width groups, layer parts, free tensors and taps of `model` run on `inputs`."""
    pinned = set(pinned)
    known = {n for n, _ in model.named_modules()}
    unknown = sorted(pinned - known)
    if unknown:
        raise UserError(f"pinned layer(s) {unknown} are not modules of this model; names look "
                        f"like {sorted(known - {''})[:4]}")
    check_layers(model, pinned)
    trace = _meta_trace(model, inputs, pinned)
    if trace is None:  # the forward needs real values (e.g. .item()): trace on real tensors
        was_training = model.training
        model.eval()
        try:
            trace = record(model, inputs, pinned)
        finally:
            model.train(was_training)
    return resolve(trace, strict)


def _meta_trace(model: nn.Module, inputs: Sequence[torch.Tensor], pinned: set[str]
                ) -> Trace | None:
    """The trace on a copy of the model on the meta device: shapes only, no arithmetic, so a
    large generator at a large size converts in about the time of its Python forward. The
    analysis refers to layers and tensors by name, so it applies to the real model."""
    try:
        # the copy shares no data: every parameter and buffer is copied as a meta tensor
        memo: dict[int, Any] = {id(t): nn.Parameter(torch.empty_like(t, device="meta"),
                                                    t.requires_grad)
                                for t in model.parameters()}
        memo.update({id(t): torch.empty_like(t, device="meta") for t in model.buffers()})
        twin = copy.deepcopy(model, memo).eval()
        return record(twin, [t.to("meta") for t in inputs], pinned)
    except Exception:  # noqa: BLE001 - any failure: the real trace decides (and reports)
        return None
