"""Elastic layers: one set of layers that serves the full model, the supernet and every
sub-network (GAN Compression sec. 3.3, weight sharing as in once-for-all).

An elastic layer holds its widest weights and, when narrowed, runs with the *first k* output
channels. Its input width always follows the tensor it receives, so only layers that *produce*
channels need to be told a width. Those layers carry a `group` name; coupled layers (e.g. every
conv that writes into the residual trunk) share one group, so the coupling is declared where the
model is built.

Every layer also declares the groups of its *input* channels, as parts: a layer fed
torch.cat([a, b], 1) (U-Net skips) declares two parts and slices each; a linear layer whose
output is split (MUNIT's AdaIN parameters) declares output parts. `channel_axes(model)` reads
these declarations, so `compact` and L1 pruning need no per-family channel tables.

BatchNorm keeps sliced statistics and is synchronized across processes under torch.distributed
(`ElasticBatchNorm2d`, `synchronize_batchnorm`).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancompress.errors import UserError

from gancompress import distributed

Widths = dict[str, int]


# A channel axis is a concatenation of *parts*: (width group or None, widest channels). A part
# with a group runs with that group's active width; a part without one has a fixed width. Most
# axes have one part; a layer fed torch.cat([a, b], 1) (U-Net skips) declares two, and a linear
# layer whose output is split (MUNIT's AdaIN parameters) declares one output part per target.
Part = tuple["str | None", int]
Parts = tuple[Part, ...]
# (tensor dimension, parts) for every parameter / buffer whose size follows width groups.
Axes = dict[str, list[tuple[int, Parts]]]


def as_parts(spec: Any, channels: int) -> Parts:
    """Normalise a declaration: None (fixed), a group name, or a sequence of (group, width)."""
    if spec is None or isinstance(spec, str):
        return ((spec, int(channels)),)
    parts = tuple((g, int(w)) for g, w in spec)
    if sum(w for _, w in parts) != channels:
        raise ValueError(f"parts {parts} do not add up to {channels} channels")
    return parts


def part_index(parts: Parts, widths: Mapping[str, int] | None) -> torch.Tensor | None:
    """Indices kept along an axis when each grouped part runs at widths[group] (None: all)."""
    if not widths or all(g is None or g not in widths or widths[g] == w for g, w in parts):
        return None
    index, offset = [], 0
    for group, width in parts:
        keep = width if group is None or group not in widths else widths[group]
        index.extend(range(offset, offset + keep))
        offset += width
    return torch.tensor(index, dtype=torch.long)


class ElasticModule:
    """Mixin of every elastic layer: its declared input parts and output group.

    `using_widths` sets `active` (output width of the layer's group) and, for layers with
    several input parts, `in_index` (which input channels of the widest weight the narrowed
    concatenation holds). Declarations also drive `compact` and L1 pruning (`channel_axes`).
    """

    group: str | None = None
    in_parts: Parts = ()
    out_parts: Parts | None = None  # only for layers whose output concatenates several groups
    active: int | None = None
    in_index: torch.Tensor | None = None
    out_index: torch.Tensor | None = None

    def set_widths(self, widths: Mapping[str, int] | None) -> None:
        self.active = widths[self.group] if widths and self.group in widths else None
        self.in_index = part_index(self.in_parts, widths) if len(self.in_parts) > 1 else None
        if self.out_parts is not None:
            self.out_index = part_index(self.out_parts, widths)

    def widths_state(self) -> tuple:
        return self.active, self.in_index, self.out_index

    def restore_widths(self, state: tuple) -> None:
        self.active, self.in_index, self.out_index = state

    def channel_axes(self) -> Axes:
        raise NotImplementedError

    def _input_weight(self, weight: torch.Tensor, dim: int, c_in: int) -> torch.Tensor:
        """The weight's input slice for an input of c_in channels (parts honoured)."""
        if self.in_index is not None:
            if len(self.in_index) != c_in:
                raise RuntimeError(f"input has {c_in} channels but the active parts "
                                   f"{self.in_parts} give {len(self.in_index)}")
            return weight.index_select(dim, self.in_index.to(weight.device))
        return weight.narrow(dim, 0, c_in) if weight.shape[dim] != c_in else weight


def _out_parts(layer: ElasticModule, channels: int) -> Parts:
    return layer.out_parts or ((layer.group, channels),)


class ElasticConv2d(ElasticModule, nn.Conv2d):
    """Conv2d that runs with its first `active` output channels and any input width <= in_channels.

    `group`: width group of the output channels (None = fixed, e.g. the RGB head);
    `in_group`: the group of the input channels, or `in_parts` for a concatenated input.
    A depthwise conv (groups == in == out channels) keeps one filter per input channel, so its
    output width follows the input and it needs no group.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, group: str | None = None,
                 in_group: str | None = None, in_parts: Any = None, depthwise: bool = False, **kwargs):
        if depthwise:
            kwargs["groups"] = in_channels
            out_channels = in_channels
        super().__init__(in_channels, out_channels, kernel_size, **kwargs)
        self.group = None if depthwise else group
        self.depthwise = depthwise
        self.in_parts = as_parts(in_parts if in_parts is not None else in_group, in_channels)

    def channel_axes(self) -> Axes:
        if self.depthwise:
            axes = {"weight": [(0, self.in_parts)]}
            if self.bias is not None:
                axes["bias"] = [(0, self.in_parts)]
            return axes
        out = _out_parts(self, self.out_channels)
        axes = {"weight": [(0, out)] + ([(1, self.in_parts)] if self.groups == 1 else [])}
        if self.bias is not None:
            axes["bias"] = [(0, out)]
        return axes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c_in = x.shape[1]
        if self.depthwise:
            weight = self.weight[:c_in]
            bias = None if self.bias is None else self.bias[:c_in]
            return self._conv_forward(x, weight, bias) if c_in == self.in_channels else \
                F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, c_in)
        c_out = self.active or self.out_channels
        weight, bias = self.weight, self.bias
        if c_out != self.out_channels:
            weight = weight[:c_out]
            bias = None if bias is None else bias[:c_out]
        weight = self._input_weight(weight, 1, c_in // self.groups)
        return self._conv_forward(x, weight, bias)


class ElasticConvTranspose2d(ElasticModule, nn.ConvTranspose2d):
    """ConvTranspose2d (weight shape: in, out, kh, kw) narrowed to its first `active` outputs."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, group: str | None = None,
                 in_group: str | None = None, in_parts: Any = None, **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, **kwargs)
        self.group = group
        self.in_parts = as_parts(in_parts if in_parts is not None else in_group, in_channels)

    def channel_axes(self) -> Axes:
        out = _out_parts(self, self.out_channels)
        axes = {"weight": [(0, self.in_parts), (1, out)]}
        if self.bias is not None:
            axes["bias"] = [(0, out)]
        return axes

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:  # noqa: D401
        c_out = self.active or self.out_channels
        weight = self._input_weight(self.weight[:, :c_out], 0, x.shape[1])
        bias = None if self.bias is None else self.bias[:c_out]
        return F.conv_transpose2d(x, weight, bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation)


class ElasticLinear(ElasticModule, nn.Linear):
    """Linear layer with elastic input (`in_group` / `in_parts`) and output.

    The output is either one group (`group`, first k features) or a concatenation of parts
    (`out_parts`, e.g. MUNIT's MLP emitting the AdaIN mean and std of every decoder layer: each
    part follows its layer's width group, so a narrowed decoder gets exactly its parameters).
    """

    def __init__(self, in_features: int, out_features: int, *, group: str | None = None,
                 in_group: str | None = None, in_parts: Any = None, out_parts: Any = None,
                 bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        self.group = group
        self.in_parts = as_parts(in_parts if in_parts is not None else in_group, in_features)
        self.out_parts = as_parts(out_parts, out_features) if out_parts is not None else None

    def channel_axes(self) -> Axes:
        out = _out_parts(self, self.out_features)
        axes = {"weight": [(0, out), (1, self.in_parts)]}
        if self.bias is not None:
            axes["bias"] = [(0, out)]
        return axes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.weight, self.bias
        if self.out_index is not None:
            index = self.out_index.to(weight.device)
            weight = weight.index_select(0, index)
            bias = None if bias is None else bias.index_select(0, index)
        elif self.active and self.active != self.out_features:
            weight = weight[: self.active]
            bias = None if bias is None else bias[: self.active]
        return F.linear(x, self._input_weight(weight, 1, x.shape[-1]), bias)


class _ElasticNorm(ElasticModule):
    """Norm layers follow their input width; they declare the group of their channels."""

    def channel_axes(self) -> Axes:
        parts = self.in_parts
        return {name: [(0, parts)] for name in ("weight", "bias", "running_mean", "running_var")
                if getattr(self, name, None) is not None}


class ElasticBatchNorm2d(_ElasticNorm, nn.BatchNorm2d):
    """BatchNorm whose affine parameters and running statistics are sliced to the input width.

    Training a narrow sub-network updates only the leading slice of the running statistics; a
    sub-network's statistics are re-calibrated before it is scored (see `sub_network`).

    Synchronized under torch.distributed: in training mode with several processes the batch
    statistics are those of the *global* batch (all-reduce of the sliced per-channel sums and of
    the image count, then of the centred squares), so N processes at batch b normalise exactly
    as one process at batch N*b, at any width, and the running statistics stay identical on
    every rank. Gradients flow through the all-reduce (distributed.all_reduce_sum). A single
    process takes the plain path (no collective, unchanged speed).
    """

    def __init__(self, num_features: int, *, group: str | None = None, **kwargs):
        super().__init__(num_features, **kwargs)
        self.in_parts = as_parts(group, num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # no_grad forwards in training mode (BatchNorm re-calibration of one sub-network, while
        # ranks score different ones) stay local
        if self.training and torch.is_grad_enabled() and distributed.active():
            return self._synchronized(x)
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        use_batch_stats = self.training or not self.track_running_stats
        momentum = self._momentum()
        return F.batch_norm(
            x,
            None if self.running_mean is None else self.running_mean[:c],
            None if self.running_var is None else self.running_var[:c],
            None if self.weight is None else self.weight[:c],
            None if self.bias is None else self.bias[:c],
            use_batch_stats, momentum, self.eps)

    def _momentum(self) -> float:
        """Counts a training batch; the running-average factor (None = cumulative, as torch)."""
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average, as nn.BatchNorm2d does
                momentum = 1.0 / float(self.num_batches_tracked)
        return momentum

    def _synchronized(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        shape = [1, c] + [1] * (x.dim() - 2)
        x32 = x.float()  # statistics in float32 also under autocast, as torch's BatchNorm
        count = x32.new_tensor([x.numel() // c])
        first = distributed.all_reduce_sum(torch.cat([x32.sum(dims), count]))
        n = first[c]
        mean = first[:c] / n
        centred = x32 - mean.view(shape)
        var = distributed.all_reduce_sum((centred * centred).sum(dims)) / n  # biased, as torch
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.weight is not None:
            y = y * self.weight[:c].view(shape) + self.bias[:c].view(shape)
        if self.track_running_stats and self.running_mean is not None:
            momentum = self._momentum()
            with torch.no_grad():
                unbiased = var.detach() * n / (n - 1).clamp_min(1)  # torch's running_var
                self.running_mean[:c].mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
                self.running_var[:c].mul_(1 - momentum).add_(unbiased, alpha=momentum)
        return y.to(x.dtype)


def synchronize_batchnorm(model: nn.Module) -> nn.Module:
    """Replace every plain nn.BatchNorm2d (e.g. in a discriminator) by an ElasticBatchNorm2d with
    the same state, so it is synchronized across processes too; elastic ones already are."""
    for name, child in list(model.named_children()):
        if type(child) is nn.BatchNorm2d:
            bn = ElasticBatchNorm2d(child.num_features, eps=child.eps, momentum=child.momentum,
                                    affine=child.affine,
                                    track_running_stats=child.track_running_stats)
            bn.load_state_dict(child.state_dict())
            bn.train(child.training)
            anchor = next(child.buffers(), None)
            setattr(model, name, bn if anchor is None else bn.to(anchor.device))
        else:
            synchronize_batchnorm(child)
    return model


class ElasticInstanceNorm2d(_ElasticNorm, nn.InstanceNorm2d):
    """InstanceNorm (affine or not) at any input width <= num_features."""

    def __init__(self, num_features: int, *, group: str | None = None, **kwargs):
        super().__init__(num_features, **kwargs)
        self.in_parts = as_parts(group, num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if not self.affine and not self.track_running_stats:
            return F.instance_norm(x, eps=self.eps)
        return F.instance_norm(
            x,
            None if self.running_mean is None else self.running_mean[:c],
            None if self.running_var is None else self.running_var[:c],
            None if self.weight is None else self.weight[:c],
            None if self.bias is None else self.bias[:c],
            self.training or not self.track_running_stats, self.momentum or 0.0, self.eps)


class ElasticScale2d(_ElasticNorm, nn.Module):
    """A learned per-channel scale and shift, y = x * weight + bias: the "scale" norm of fast
    students. No statistics (nothing to re-calibrate, the same in training and eval), and an
    affine map after a conv, so the export folds it into that conv (`fold_into`) and the graph
    keeps no norm at all. Follows its input width like the other norms.
    """

    def __init__(self, num_features: int, *, group: str | None = None):
        super().__init__()
        self.num_features = num_features
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.in_parts = as_parts(group, num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.weight, self.bias
        c = x.shape[1]
        if c != self.num_features:  # a narrowed sub-network: its leading channels
            weight, bias = weight[:c], bias[:c]
        return x * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)

    # MACs: as BatchNorm (torch's _BatchNorm rule): the published convention counts a foldable
    # per-channel affine as free, the true count one multiply per element (metrics/cost.py)
    @staticmethod
    def mac_rule(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
        return 0, y.numel()

    @torch.no_grad()
    def fold_into(self, conv: nn.Module) -> nn.Module:
        """Fold this scale into `conv`, the conv (or transposed conv) whose output it receives:
        conv's weight and bias are changed in place (a bias is added when it has none), so that
        conv(x) afterwards equals self(conv(x)); returns conv. Work on a copy of the model: the
        scale layer itself must then be dropped (replaced by nn.Identity)."""
        if not isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)):
            raise TypeError(f"cannot fold a scale into a {type(conv).__name__}")
        transposed = isinstance(conv, nn.ConvTranspose2d)
        out = conv.out_channels
        if transposed and conv.groups != 1:
            raise ValueError("cannot fold a scale into a grouped transposed conv")
        if out > self.num_features:
            raise ValueError(f"conv has {out} outputs, the scale {self.num_features} channels")
        scale, shift = self.weight[:out], self.bias[:out]
        if transposed:  # weight (in, out, kh, kw)
            conv.weight.mul_(scale.view(1, -1, 1, 1).to(conv.weight))
        else:           # weight (out, in / groups, kh, kw)
            conv.weight.mul_(scale.view(-1, 1, 1, 1).to(conv.weight))
        bias = conv.bias if conv.bias is not None else conv.weight.new_zeros(out)
        conv.bias = nn.Parameter(bias * scale.to(bias) + shift.to(bias))
        return conv


# Student / generator norms: kinds with statistics per image (instance), statistics of the
# training set (batch), a foldable affine without statistics (scale) or nothing (none).
NORMS = ("instance", "batch", "scale", "none")


def norm_layer(kind: str, channels: int, group: str | None = None) -> nn.Module:
    """The published conventions: InstanceNorm without affine or running stats; affine BatchNorm;
    and the fast students' "scale" (ElasticScale2d: a per-channel affine that folds into the
    preceding conv at export) and "none" (identity).

    `group` is the width group of the normalised channels (for compact / pruning).
    """
    if kind == "instance":
        return ElasticInstanceNorm2d(channels, group=group, affine=False, track_running_stats=False)
    if kind == "batch":
        return ElasticBatchNorm2d(channels, group=group)
    if kind == "scale":
        return ElasticScale2d(channels, group=group)
    if kind == "none":
        return nn.Identity()
    raise UserError(f"unknown norm {kind!r}; use one of {', '.join(NORMS)}")


class SeparableConv2d(nn.Module):
    """MobileNet-style conv of the mobile generators: depthwise kxk (bias) -> norm -> pointwise 1x1.

    The norm between the two convs is InstanceNorm without affine in the published mobile ResNet
    generator (docs/reference.md sec. 2). The pointwise conv sets the output width (its `group`);
    `in_group` is the group of the input channels.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *, group: str | None,
                 in_group: str | None = None, norm: str = "instance", bias: bool = True,
                 padding: int = 0, stride: int = 1):
        super().__init__()
        self.depthwise = ElasticConv2d(in_channels, in_channels, kernel_size, depthwise=True,
                                       in_group=in_group, padding=padding, stride=stride,
                                       bias=True)
        self.norm = norm_layer(norm, in_channels, in_group)
        self.pointwise = ElasticConv2d(in_channels, out_channels, 1, group=group, in_group=in_group,
                                       bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.norm(self.depthwise(x)))


def elastic_modules(model: nn.Module) -> Iterator[tuple[str, ElasticModule]]:
    """Every (name, module) that declares channel parts (convs, linears, norms)."""
    for name, module in model.named_modules():
        if isinstance(module, ElasticModule):
            yield name, module


def elastic_layers(model: nn.Module) -> Iterator[tuple[str, ElasticModule]]:
    """Every (name, module) whose output width is governed by a width group."""
    for name, module in elastic_modules(model):
        if module.group is not None or module.out_parts is not None:
            yield name, module


def channel_axes(model: nn.Module) -> Axes:
    """state_dict key -> [(dim, parts)] for every tensor whose size follows width groups.

    Derived from the layers' declarations only: no per-family tables.
    """
    axes: Axes = {}
    for name, module in elastic_modules(model):
        prefix = f"{name}." if name else ""
        for key, entries in module.channel_axes().items():
            axes[prefix + key] = [(dim, parts) for dim, parts in entries
                                  if any(g is not None for g, _ in parts)]
    return {k: v for k, v in axes.items() if v}
