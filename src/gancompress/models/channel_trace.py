"""Channel dependency analysis of an arbitrary nn.Module (automatic elastic conversion, step 1).

The model runs once on example inputs under a TorchFunctionMode that labels every tensor
dimension holding *channels*: a dimension's label is a list of segments (producer, start,
length), a producer being the output channels of a conv / transposed conv / linear layer, a free
parameter or buffer dimension (e.g. U-GAT-IT's AdaLIN rho), or a model input. Layers handled
as a whole (convs, linears, norms) are seen through module hooks, everything else op by op:
    elementwise ops (add, mul, where, activations ...)   union the channels they combine
    cat along a labelled dimension                        concatenates segments (parts)
    split / chunk / narrow / slicing                      cut segments
    reshape / view / flatten / squeeze / permute ...      move the label to the new dimension
    reductions over the channel dimension                 drop the label (width-consistent)
    matmul                                                unions the contracted dimensions
A label combined with a fixed-width tensor, or reaching a model output, is pinned. Operations
that mix channels with other dimensions (pixel shuffle: pinned silently; anything else: a
UserError naming the layers to pin) end the label.

Channels then form a union-find over producer *intervals* (a producer whose output is split is
cut into intervals), each equivalence class is a width group unless it holds a pinned member.
Why not fx or torch-pruning: fx fails on data-dependent Python control flow and hides
parameters used outside their layer; torch-pruning prunes indices physically and would need
custom pruners for every free parameter, while a run-time trace sees exactly what runs.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

from gancompress.errors import UserError

Seg = tuple[int, int, int]  # (producer id, start, length)
Label = dict[int, tuple[Seg, ...]]  # tensor dimension -> segments

CONV = (nn.Conv2d, nn.ConvTranspose2d)
NORM2D = (nn.BatchNorm2d, nn.InstanceNorm2d)
LEAVES = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm2d, nn.InstanceNorm2d,
          nn.GroupNorm, nn.LayerNorm)
SHUFFLES = {"pixel_shuffle", "pixel_unshuffle", "channel_shuffle"}
VIEWS = {"reshape", "view", "flatten", "unflatten", "squeeze", "unsqueeze", "view_as",
         "reshape_as", "unfold_view"}
PERMUTES = {"permute", "transpose", "swapaxes", "swapdims", "movedim", "moveaxis", "t"}
REDUCTIONS = {"sum", "mean", "amax", "amin", "max", "min", "var", "std", "norm", "logsumexp",
              "prod", "argmax", "argmin", "median", "nansum", "nanmean", "all", "any"}
SPLITS = {"split", "chunk", "tensor_split", "split_with_sizes", "unsafe_split"}
IGNORED = {"size", "dim", "numel", "__get__", "__set__", "__len__", "item",
           "tolist", "__bool__", "__format__", "__repr__", "__hash__", "__index__", "__int__",
           "__float__", "is_floating_point", "__iter__", "data_ptr", "element_size", "stride",
           "requires_grad_", "register_hook", "is_contiguous", "get_device", "__array__",
           "get", "set", "len",
           "bool", "format", "repr", "hash", "index", "int", "float", "iter", "array",
           "__reduce_ex__", "reduce_ex", "__deepcopy__", "deepcopy", "cpu", "numpy"}


@dataclass
class Producer:
    kind: str              # "layer", "param", "input", "fixed"
    name: str              # layer or tensor name
    width: int
    pinned: str = ""       # why its channels keep their width ("" = free)


@dataclass
class Call:
    """One call of a handled layer: its input channel segments, output label, output shape."""
    name: str
    module: nn.Module
    in_segs: tuple[Seg, ...] | None
    out_segs: tuple[Seg, ...] | None
    out_shape: tuple[int, ...]


@dataclass
class Trace:
    producers: list[Producer] = field(default_factory=list)
    unions: list[tuple[tuple[Seg, ...], tuple[Seg, ...]]] = field(default_factory=list)
    pins: list[tuple[tuple[Seg, ...], str]] = field(default_factory=list)
    conflicts: list[tuple[tuple[Seg, ...], str]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    # (module name, tensor name) -> tensor dimension -> producer id
    free: dict[tuple[str, str], dict[int, int]] = field(default_factory=dict)
    layer_pid: dict[str, int] = field(default_factory=dict)
    min_side_ratio: int = 1
    notes: set[str] = field(default_factory=set)
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)

    def new(self, kind: str, name: str, width: int, pinned: str = "") -> int:
        self.producers.append(Producer(kind, name, int(width), pinned))
        return len(self.producers) - 1


def whole(pid: int, width: int) -> tuple[Seg, ...]:
    return ((pid, 0, int(width)),)


def seg_len(segs: Sequence[Seg]) -> int:
    return sum(s[2] for s in segs)


def cut(segs: Sequence[Seg], start: int, stop: int) -> tuple[Seg, ...]:
    out, offset = [], 0
    for pid, s, n in segs:
        lo, hi = max(start, offset), min(stop, offset + n)
        if lo < hi:
            out.append((pid, s + lo - offset, hi - lo))
        offset += n
    return tuple(out)


def aligned(a: Sequence[Seg], b: Sequence[Seg]) -> Iterable[tuple[Seg, Seg]]:
    """Pieces of two equally long segment lists that cover the same positions."""
    bounds = sorted({0, seg_len(a)} | set(_offsets(a)) | set(_offsets(b)))
    for lo, hi in zip(bounds, bounds[1:]):
        yield cut(a, lo, hi)[0], cut(b, lo, hi)[0]


def _offsets(segs: Sequence[Seg]) -> list[int]:
    out, offset = [], 0
    for _, _, n in segs:
        out.append(offset)
        offset += n
    return out


def _norm_dim(dim: int, ndim: int) -> int:
    return dim + ndim if dim < 0 else dim


def _func_name(func: Any) -> str:
    name = getattr(func, "__name__", str(func))
    if name.startswith("__") and name.endswith("__"):
        core = name[2:-2]
        if core.startswith(("r", "i")) and core[1:] in ("add", "sub", "mul", "truediv", "div",
                                                         "pow", "matmul", "floordiv", "and", "or"):
            core = core[1:]
        return "getitem" if core == "getitem" else core
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


class ChannelRecorder(TorchFunctionMode):
    """Labels channel dimensions while the model runs (see the module docstring)."""

    def __init__(self, trace: Trace, labels: dict[int, Label], keep: list, owners: dict[int, str]):
        super().__init__()
        self.trace, self.labels, self.keep, self.owners = trace, labels, keep, owners
        self.depth = 0  # > 0 inside a handled layer: its inner ops are not traced
        # tensors whose dimension `dim` merges channels with space (x.view(B, -1)): only a
        # reduction over that dimension (a layer norm's statistics) is width-consistent
        self.mixed: dict[int, tuple[torch.Tensor, int, list, str]] = {}

    # -- labels ---------------------------------------------------------------------------------
    def get(self, t: Any) -> Label:
        return self.labels.get(id(t), {}) if isinstance(t, torch.Tensor) else {}

    def put(self, t: torch.Tensor, label: Label) -> None:
        label = {d: s for d, s in label.items() if s}
        if label:
            self.labels[id(t)] = label
            self.keep.append(t)
        else:
            self.labels.pop(id(t), None)

    def union(self, a: tuple[Seg, ...], b: tuple[Seg, ...]) -> None:
        if a != b:
            self.trace.unions.append((a, b))

    def pin(self, segs: tuple[Seg, ...], why: str) -> None:
        self.trace.pins.append((segs, why))

    def conflict(self, tensors: Iterable[Any], why: str) -> None:
        for t in tensors:
            for segs in self.get(t).values():
                self.trace.conflicts.append((segs, why))

    # -- dispatch -------------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.depth:
            return out
        name = _func_name(func)
        if name in IGNORED:
            return out
        inputs = _tensors(args) + _tensors(kwargs)
        self._leaf_params_used(inputs, name)
        for t in inputs:
            if id(t) in self.mixed:
                self._use_mixed(name, args, kwargs, t)
        if not any(self.get(t) for t in inputs):
            return out
        try:
            self.rule(name, func, args, kwargs, inputs, out)
        except _Unsupported as err:
            self.conflict(inputs, str(err) or f"operation {name}")
        return out

    def _use_mixed(self, name: str, args: tuple, kwargs: dict, t: torch.Tensor) -> None:
        _, dim, segs_list, why = self.mixed[id(t)]
        if name in REDUCTIONS and args and args[0] is t:
            reduced = _arg(args, kwargs, 1, "dim")
            dims = None if reduced is None else [reduced] if isinstance(reduced, int) else reduced
            if dims is None or dim in {_norm_dim(d, t.dim()) for d in dims}:
                return
        for segs in segs_list:
            self.trace.conflicts.append((segs, why))

    def _leaf_params_used(self, inputs: list[torch.Tensor], name: str) -> None:
        # e.g. U-GAT-IT's CAM multiplies features by its linear layer's weight: that weight
        # cannot be narrowed from outside, so the channels it meets are pinned by the op's rule
        for t in inputs:
            owner = self.owners.get(id(t))
            if owner is not None:
                self.trace.notes.add(f"a tensor of layer {owner!r} is used outside the layer "
                                     f"(in {name}): the channels it meets keep their width")

    def rule(self, name, func, args, kwargs, inputs, out) -> None:
        if name in SHUFFLES:
            for t in inputs:
                for segs in self.get(t).values():
                    self.pin(segs, f"{name} mixes channels with space")
            return
        if name in ("cat", "concat", "concatenate", "stack"):
            return self._cat(name, args, kwargs, out)
        if name in SPLITS or name == "unbind":
            return self._split(name, args, kwargs, out)
        if name == "getitem":
            return self._getitem(args[0], args[1], out)
        if name == "setitem":  # x[...] = y writes channels the labels cannot follow
            raise _Unsupported("an assignment x[...] = y into channels")
        if name in ("narrow", "select"):
            return self._narrow(name, args, kwargs, out)
        if name in VIEWS:
            return self._view(args[0], out)
        if name in PERMUTES:
            return self._permute(func, args, kwargs, out)
        if name in ("expand", "expand_as", "broadcast_to", "repeat"):
            return self._expand(name, args, out)
        if name in ("matmul", "bmm", "mm"):
            return self._matmul(args[0], args[1], out)
        if name in REDUCTIONS and not isinstance(_arg(args, kwargs, 1, "other"), torch.Tensor) \
                and (not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(args[0].shape)):
            return self._reduce(args, kwargs, out)
        if name in ("prelu", "batch_norm", "instance_norm", "group_norm"):
            return self._channel_params(args, out)
        if name in ("conv2d", "conv_transpose2d"):
            return self._functional_conv(args, kwargs, out)
        if isinstance(out, torch.Tensor) and self._elementwise(inputs, out):
            return
        self._fallback(name, inputs, out)

    # -- rules ----------------------------------------------------------------------------------
    def _elementwise(self, inputs: list[torch.Tensor], out: torch.Tensor) -> bool:
        shape = tuple(out.shape)
        try:
            if tuple(torch.broadcast_shapes(*(tuple(t.shape) for t in inputs))) != shape:
                return False
        except RuntimeError:
            return False
        n = len(shape)
        found: dict[int, tuple[Seg, ...]] = {}
        for t in inputs:
            for d, segs in self.get(t).items():
                od = n - (t.dim() - d)
                if t.shape[d] != shape[od]:
                    continue
                if od in found:
                    self.union(found[od], segs)
                else:
                    found[od] = segs
        for od, segs in found.items():
            for t in inputs:
                d = t.dim() - (n - od)
                if d >= 0 and t.shape[d] == shape[od] > 1 and d not in self.get(t):
                    self.pin(segs, "combined with a fixed-width tensor")
        self.put(out, found)
        return True

    def _fallback(self, name: str, inputs: list[torch.Tensor], out: Any) -> None:
        """Unknown op: labels survive when every labelled dimension keeps its size."""
        outs = _tensors(out)
        src = [t for t in inputs if self.get(t)]
        if len(src) == 1 and outs:
            label = self.get(src[0])
            if all(o.dim() == src[0].dim() and all(o.shape[d] == src[0].shape[d] for d in label)
                   for o in outs):
                for o in outs:
                    self.put(o, dict(label))
                return
        raise _Unsupported(f"operation {name} (shapes {[tuple(t.shape) for t in inputs]})")

    def _cat(self, name, args, kwargs, out) -> None:
        tensors = list(args[0])
        dim = _arg(args, kwargs, 1, "dim", 0)
        ndim = tensors[0].dim()
        dim = _norm_dim(dim, ndim + (name == "stack"))
        label: Label = {}
        if name == "cat":
            segs = []
            for t in tensors:
                own = self.get(t).get(dim)
                if own is None:
                    own = whole(self.trace.new("fixed", "cat input", t.shape[dim], "fixed"),
                                t.shape[dim])
                segs.extend(own)
            label[dim] = tuple(segs)
        for t in tensors:
            for d, segs in self.get(t).items():
                if name == "cat" and d == dim:
                    continue
                od = d + 1 if name == "stack" and d >= dim else d
                if od in label:
                    self.union(label[od], segs)
                else:
                    label[od] = segs
        self.put(out, label)

    def _split(self, name, args, kwargs, out) -> None:
        x = args[0]
        default = 0
        dim = _norm_dim(_arg(args, kwargs, 2 if name != "unbind" else 1, "dim", default), x.dim())
        if name == "unbind":
            if dim in self.get(x):
                raise _Unsupported("unbind along channels")
            for o in out:
                self.put(o, {d - (d > dim): s for d, s in self.get(x).items()})
            return
        offset, pieces = 0, []
        for o in out:
            label = {}
            for d, segs in self.get(x).items():
                label[d] = cut(segs, offset, offset + o.shape[d]) if d == dim else segs
            offset += o.shape[dim]
            self.put(o, label)
            pieces.append(label.get(dim))
        whole_dim = self.get(x).get(dim)
        if whole_dim is None or len(out) < 2:
            return
        if name == "chunk" and len({seg_len(p) for p in pieces}) == 1:
            # chunk(n) splits the *active* width in n: the pieces must keep equal widths
            for p in pieces[1:]:
                self.union(pieces[0], p)
        else:  # split sizes given as numbers stay those numbers at any width
            self.pin(whole_dim, f"{name} into fixed sizes")

    def _narrow(self, name, args, kwargs, out) -> None:
        x = args[0]
        dim = _norm_dim(_arg(args, kwargs, 1, "dim"), x.dim())
        start = _arg(args, kwargs, 2, "start" if name == "narrow" else "index")
        start = int(start) + (x.shape[dim] if int(start) < 0 else 0)
        label = {}
        for d, segs in self.get(x).items():
            if d != dim:
                label[d - (name == "select" and d > dim)] = segs
            elif name == "narrow":
                self.pin(segs, "a slice of channels")
                label[d] = cut(segs, start, start + int(_arg(args, kwargs, 3, "length")))
            else:
                raise _Unsupported("select of one channel")
        self.put(out, label)

    def _getitem(self, x, index, out) -> None:
        if not isinstance(index, tuple):
            index = (index,)
        if any(isinstance(i, (torch.Tensor, list)) for i in index):
            raise _Unsupported("advanced indexing")
        rest = x.dim() - sum(1 for i in index if i is not None and i is not Ellipsis)
        expanded = []
        for i in index:
            expanded.extend([slice(None)] * rest if i is Ellipsis else [i])
        expanded.extend([slice(None)] * (x.dim() - sum(1 for i in expanded if i is not None)))
        label, d, od = {}, 0, 0
        for i in expanded:
            if i is None:
                od += 1
                continue
            segs = self.get(x).get(d)
            if isinstance(i, int):
                if segs is not None:
                    raise _Unsupported("indexing one channel")
                d += 1
                continue
            if segs is not None:
                start, stop, step = i.indices(x.shape[d])
                if step != 1:
                    raise _Unsupported("strided channel slice")
                if (start, stop) != (0, x.shape[d]):  # fixed bounds stay fixed at any width
                    self.pin(segs, "a slice of channels")
                label[od] = cut(segs, start, stop)
            d, od = d + 1, od + 1
        self.put(out, label)

    def _view(self, x, out) -> None:
        label = {}
        ins, outs = tuple(x.shape), tuple(out.shape)
        for d, segs in self.get(x).items():
            before = math.prod(ins[:d])
            match = [od for od in range(len(outs))
                     if outs[od] == ins[d] and math.prod(outs[:od]) == before]
            if not match:
                why = f"a reshape {ins} -> {outs} that mixes channels with other dimensions"
                merged = [od for od in range(len(outs)) if math.prod(outs[:od]) <= before
                          and math.prod(outs[:od + 1]) >= before * ins[d]]
                if len(merged) != 1:
                    raise _Unsupported(why)
                entry = self.mixed.setdefault(id(out), (out, merged[0], [], why))
                entry[2].append(segs)
                continue
            label[match[0]] = segs
        self.put(out, label)

    def _permute(self, func, args, kwargs, out) -> None:
        x = args[0]
        primes = (2, 3, 5, 7, 11, 13, 17, 19)[: x.dim()]
        probe = func(torch.empty(primes, device="meta"), *args[1:], **kwargs)
        where = {p: i for i, p in enumerate(probe.shape)}
        self.put(out, {where[primes[d]]: s for d, s in self.get(x).items()})

    def _expand(self, name, args, out) -> None:
        x = args[0]
        shift = out.dim() - x.dim()
        label = {}
        for d, segs in self.get(x).items():
            if out.shape[d + shift] != x.shape[d]:
                raise _Unsupported(f"{name} that repeats channels")
            label[d + shift] = segs
        self.put(out, label)

    def _matmul(self, a, b, out) -> None:
        if a.dim() < 2 or b.dim() < 2:
            raise _Unsupported("matmul of vectors")
        la, lb = self.get(a), self.get(b)
        ka, kb = la.get(a.dim() - 1), lb.get(b.dim() - 2)
        if ka and kb:
            self.union(ka, kb)
        elif ka or kb:
            self.pin(ka or kb, "contracted with a fixed-width tensor")
        label = {}
        if a.dim() - 2 in la:
            label[out.dim() - 2] = la[a.dim() - 2]
        if b.dim() - 1 in lb:
            label[out.dim() - 1] = lb[b.dim() - 1]
        for t, lt in ((a, la), (b, lb)):
            for d, segs in lt.items():
                if d < t.dim() - 2:
                    od = out.dim() - (t.dim() - d)
                    if od in label:
                        self.union(label[od], segs)
                    else:
                        label[od] = segs
        self.put(out, label)

    def _reduce(self, args, kwargs, out) -> None:
        x = args[0]
        dim = _arg(args, kwargs, 1, "dim")
        if dim is None or not isinstance(dim, (int, list, tuple)):
            return  # a full reduction: no channels left
        dims = {_norm_dim(d, x.dim()) for d in ([dim] if isinstance(dim, int) else dim)}
        keep = bool(_arg(args, kwargs, 2, "keepdim", False))
        label = {}
        for d, segs in self.get(x).items():
            if d not in dims:
                label[d if keep else d - sum(1 for r in dims if r < d)] = segs
        for o in _tensors(out):
            self.put(o, label)

    def _channel_params(self, args, out) -> None:
        x, label = args[0], self.get(args[0])
        segs = label.get(1)
        for t in _tensors(args[1:]):
            own = self.get(t).get(0)
            if own is not None and segs is not None and t.shape[0] == x.shape[1]:
                self.union(segs, own)
            elif segs is not None and t.dim() == 1 and t.shape[0] == x.shape[1] > 1:
                self.pin(segs, "per-channel tensor of fixed width")
        self.put(out, dict(label))

    def _functional_conv(self, args, kwargs, out) -> None:
        x, weight = args[0], _arg(args, kwargs, 1, "weight")
        groups = _arg(args, kwargs, 6, "groups", 1)
        segs, own = self.get(x).get(1), self.get(weight).get(0)
        if groups == x.shape[1] == weight.shape[0] == out.shape[1]:  # depthwise, e.g. a blur
            if segs is not None and own is not None:
                self.union(segs, own)
            elif segs is not None:
                self.pin(segs, "depthwise filter of fixed width")
            self.put(out, {1: segs} if segs else {})
            return
        raise _Unsupported("a functional convolution with its own weight (use an nn.Conv2d)")


class _Unsupported(Exception):
    pass
