"""Elastic width: one set of layers that serves the full model, the supernet and every sub-network.

An elastic layer holds its widest weights and, when narrowed, runs with the *first k* output
channels (GAN Compression sec. 3.3, weight sharing as in once-for-all). Its input width always
follows the tensor it receives, so only layers that *produce* channels need to be told a width.
Those layers carry a `group` name; coupled layers (e.g. every conv that writes into the residual
trunk) share one group, so the coupling is declared where the model is built.

Every layer also declares the groups of its *input* channels, as parts: a layer fed
torch.cat([a, b], 1) (U-Net skips) declares two parts and slices each; a linear layer whose
output is split (MUNIT's AdaIN parameters) declares output parts. `channel_axes(model)` reads
these declarations, so `compact` and L1 pruning need no per-family channel tables.

The active widths are the only hidden state. They are set through `using_widths(model, widths)`
(a context manager that always restores the previous state) and nowhere else.

`compact(model, widths)` builds the same generator class at those widths and keeps the first k
channels of every declared part, giving a standalone model with `compact(g, w)(x) == g@w(x)`.
`sub_network(model, widths, calibration)` is the one way to *evaluate* a sub-network: BatchNorm
statistics are re-calibrated on training batches first (and restored afterwards).

`ElasticGenerator` is the family contract (see its docstring): a generator family is one
subclass plus one registry line in models/__init__.py.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancompress.errors import UserError
from gancompress.training import distributed
from gancompress.weights import load_state_strict

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


def norm_layer(kind: str, channels: int, group: str | None = None) -> nn.Module:
    """The published conventions: InstanceNorm without affine or running stats; affine BatchNorm.

    `group` is the width group of the normalised channels (for compact / pruning).
    """
    if kind == "instance":
        return ElasticInstanceNorm2d(channels, group=group, affine=False, track_running_stats=False)
    if kind == "batch":
        return ElasticBatchNorm2d(channels, group=group)
    if kind == "none":
        return nn.Identity()
    raise UserError(f"unknown norm {kind!r}; use 'instance', 'batch' or 'none'")


class SeparableConv2d(nn.Module):
    """MobileNet-style conv of the mobile generators: depthwise kxk (bias) -> norm -> pointwise 1x1.

    The norm between the two convs is InstanceNorm without affine in the published mobile ResNet
    generator (REFERENCE.md sec. 2). The pointwise conv sets the output width (its `group`);
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


class ElasticGenerator(nn.Module):
    """Base of every generator family: the family contract (DESIGN.md, "A generator family is
    one registry entry").

    A family class owns every fact about its architecture, so pipeline, search, distillation,
    export, profile and the CLI stay generic:
        arch                  its constructor arguments (JSON-serialisable; per-group widest
                              widths under "widths"); `type(g)(**g.arch)` rebuilds it
        widths_from_config / config_from_widths   published config string <-> widths
        search_spaces()       named search-space presets of this family (names are local)
        feature_widths        width group of each distillation tap of forward(return_features)
        example_inputs(size)  the inputs of forward (image, label map, style code ...)
        reference_size        the paper's (H, W) for MAC counts
        read_published(state) the reader of its published checkpoint formats
        student_arch(...)     constructor arguments of a student / supernet of this family
        read_input(arch, path, size)   one input file -> forward()'s first input (generate,
                              for checkpoints and exported files alike: a classmethod on arch)
    """

    arch_name: str = ""
    arch: dict
    published_formats: str = ""     # what read_published opens, with example keys (for messages)
    reference_size: tuple[int, int] = (256, 256)
    size_multiple: int = 1          # inputs' H and W must be multiples of this
    # Outputs depend on a sampled code (MUNIT's style): sub-networks are compared with the
    # teacher under the same codes (`scoring_inputs`), never with paired ground truth.
    multimodal: bool = False
    # Compression stage -> training task of this family, where the generic ones do not fit.
    # Names of forward()'s inputs (example_inputs order), e.g. as ONNX input names.
    input_names: tuple[str, ...] = ("input",)
    compression_tasks: dict[str, str] = {}
    # forward()'s first input is an image in [-1, 1] (False: e.g. SPADE's one-hot label map):
    # exports verify on `example_inputs` instead of smooth random images, and int8 calibration
    # on photos does not apply.
    image_input: bool = True
    # What the first input holds, recorded in exported files (gancompress.input_range).
    input_description: str = "[-1, 1]: pixel / 127.5 - 1 (RGB, or gray for 1 channel)"

    # -- constructor arguments ------------------------------------------------------------------
    @classmethod
    def arch_args(cls, args: Mapping[str, Any]) -> dict[str, Any]:
        """Check `args` against the constructor's signature (unknown names -> UserError)."""
        import inspect

        params = inspect.signature(cls.__init__).parameters
        known = [p for p in params if p != "self"]
        unknown = [k for k in args if k not in known]
        if unknown:
            raise UserError(f"unknown argument(s) {', '.join(map(repr, unknown))} for a "
                            f"{cls.arch_name} generator; valid: {', '.join(known)}")
        return dict(args)

    # -- widths and config strings --------------------------------------------------------------
    @property
    def max_widths(self) -> Widths:
        return dict(self.arch["widths"])

    def check_widths(self, widths: Mapping[str, int]) -> Widths:
        """Validate a (possibly partial) widths mapping; return it complete (missing = widest)."""
        full = self.max_widths
        for group, value in widths.items():
            if group not in full:
                raise UserError(f"unknown width group {group!r}; this {self.arch_name} generator has "
                                f"groups {', '.join(full)}")
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= full[group]:
                raise UserError(f"width {value!r} for group {group!r} must be an integer in "
                                f"1..{full[group]}")
        full.update(widths)
        return full

    def widths_from_config(self, config: str | Sequence[int]) -> Widths:
        """The published config string (or its numbers) -> widths per group."""
        raise NotImplementedError

    def config_from_widths(self, widths: Mapping[str, int]) -> str:
        """Widths per group -> the published config string."""
        raise NotImplementedError

    def config_length(self) -> int:
        return len(parse_config_numbers(self.config_from_widths(self.max_widths)))

    def search_spaces(self) -> dict[str, list[list[int]]]:
        """Named search spaces of this family: choices per config position, widest first."""
        return {}

    def default_space(self) -> str:
        """The search space a compression uses when compress.space is not set: the first of
        `search_spaces()` unless the family names another."""
        return next(iter(self.search_spaces()), "")

    # -- inputs ---------------------------------------------------------------------------------
    @property
    def in_channels(self) -> int:
        return int(self.arch["in_channels"])

    @property
    def out_channels(self) -> int:
        return int(self.arch["out_channels"])

    def check_size(self, size: Sequence[int]) -> tuple[int, int]:
        """(H, W) of an input, checked against the family's size rule."""
        h, w = (int(size[0]), int(size[-1]))
        m = self.size_multiple
        if h < m or w < m or h % m or w % m:
            raise UserError(f"input size {h}x{w} does not suit a {self.arch_name} generator: "
                            f"height and width must each be a positive multiple of {m}")
        return h, w

    def example_inputs(self, size: Sequence[int] | None = None, batch: int = 1,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        """Inputs of forward() at `size` (H, W; default the reference size), values in [-1, 1]."""
        h, w = self.check_size(size or self.reference_size)
        device = next(self.parameters()).device
        x = torch.rand(batch, self.in_channels, h, w, generator=generator) * 2 - 1
        return (x.to(device),)

    def input_picture(self, x: torch.Tensor) -> torch.Tensor:
        """What a person sees of a batch of inputs (B, C, H, W): (B, 1 or 3, H, W) in [-1, 1],
        for sample grids and reports. Image generators: the input itself."""
        return x

    def profile_inputs(self, size: Sequence[int] | None = None, batch: int = 1
                       ) -> tuple[torch.Tensor, ...]:
        """Inputs of the published MAC / latency count (default: example_inputs; MUNIT counts
        forward(x) with its style encoder, not a translation with a given style)."""
        return self.example_inputs(size, batch)

    def mac_variants(self, size: Sequence[int] | None = None) -> dict[str, tuple[torch.Tensor, ...]]:
        """Further published counts of the same model, name -> forward() inputs (profile prints
        them, e.g. MUNIT "without_style_encoder")."""
        return {}

    def scoring_inputs(self, source: torch.Tensor, index: int) -> tuple[torch.Tensor, ...]:
        """forward() inputs for held-out batch `index` when sub-networks are scored against the
        teacher: the same for every model of the family given the same (source, index)."""
        return (source,)

    def input_size(self, size: Sequence[int] | None = None, batch: int = 1) -> tuple[int, ...]:
        """Shape of the first input (B, C, H, W) at `size`."""
        return tuple(self.example_inputs(size, batch)[0].shape)

    # -- input files ----------------------------------------------------------------------------
    def label_map_args(self) -> dict[str, Any] | None:
        """How a label-map dataset must be read for this model (data.segmaps.LabelMapDataset
        arguments: label_nc, no_instance), or None when the model takes images."""
        return None

    @classmethod
    def read_input(cls, arch: Mapping[str, Any], path: Any, size: Sequence[int] | None,
                   instances: Any = None) -> torch.Tensor:
        """One input file -> forward()'s first input (C, H, W) at `size` (H, W): an image,
        resized bicubically, in [-1, 1]. `instances` (a folder) is for label-map families."""
        from gancompress.imaging import read_image

        if instances is not None:
            raise UserError(f"--instances applies to label-map generators (SPADE); this "
                            f"{cls.arch_name} generator takes images")
        return read_image(path, int(arch.get("in_channels", 3)),
                          None if size is None else (int(size[0]), int(size[-1])))

    @classmethod
    def check_input_files(cls, arch: Mapping[str, Any], paths: Sequence[Any],
                          size: Sequence[int] | None, instances: Any = None) -> None:
        """Every input file is usable, checked before anything is written (one UserError)."""
        from gancompress.imaging import check_images

        if instances is not None:
            cls.read_input(arch, paths[0], size, instances)  # the --instances message
        check_images(list(paths), int(arch.get("in_channels", 3)))

    # -- distillation ---------------------------------------------------------------------------
    @property
    def feature_widths(self) -> list[str]:
        """Width group of each distillation tap (forward(..., return_features=True))."""
        raise NotImplementedError

    # -- students -------------------------------------------------------------------------------
    def student_arch(self, conv: str | None = None, widths: Mapping[str, int] | None = None
                     ) -> dict[str, Any]:
        """Constructor arguments of a student of this family: the teacher's, with `conv`
        (dense / separable) and `widths`, and no dropout."""
        arch = {**self.arch}
        if conv is not None and "conv" in arch:
            arch["conv"] = conv
        if "dropout" in arch:
            arch["dropout"] = 0.0
        if widths is not None:
            arch["widths"] = dict(widths)
        return arch

    # -- published checkpoints ------------------------------------------------------------------
    @classmethod
    def read_published(cls, obj: Any, name: str, **hints: Any
                       ) -> tuple[ElasticGenerator, str] | None:
        """(model, format description) from a loaded published checkpoint object of this family
        (`tensor_dict(obj)` unwraps the usual containers), or None when it is not this family's.
        Raise UserError when it is this family's but unusable (say what is missing)."""
        return None

    # -- deployment -----------------------------------------------------------------------------
    def prepare_deploy(self) -> nn.Module:
        """Module to export (e.g. with spectral norm folded); rewrites in deploy/ are generic."""
        return self


def config_number(widths: Mapping[str, int], group: str, multiplier: int) -> int:
    """The config-string number of width group `group` (its width / `multiplier`); UserError
    when the group is missing or its width is not a multiple (no config-string form)."""
    if group not in widths:
        raise UserError(f"widths lack group {group!r}")
    if widths[group] % multiplier:
        raise UserError(f"width {widths[group]} of group {group!r} is not a multiple of "
                        f"{multiplier}, so it has no config-string form")
    return widths[group] // multiplier


def parse_config_numbers(config: str | Sequence[int]) -> list[int]:
    """'16_16_32' (or a sequence) -> [16, 16, 32]; every entry a positive integer."""
    if not isinstance(config, str):
        return [int(v) for v in config]
    values = []
    for pos, part in enumerate(config.strip().split("_")):
        if not part.isdigit() or int(part) < 1:
            raise UserError(f"config string {config!r}: position {pos} is {part!r}, expected a "
                            f"positive integer")
        values.append(int(part))
    return values


@contextlib.contextmanager
def using_widths(model: nn.Module, widths: Mapping[str, int] | None) -> Iterator[nn.Module]:
    """Run `model` as the sub-network with these per-group widths inside the block.

    `None` or an empty mapping means the widest network. The previous widths are restored on exit,
    also when the block raises, so no step can leave the supernet narrowed by accident.
    """
    if widths and isinstance(model, ElasticGenerator):
        widths = model.check_widths(widths)
    modules = [m for _, m in elastic_modules(model)]
    saved = [(m, m.widths_state()) for m in modules]
    try:
        for m in modules:
            m.set_widths(widths or None)
        yield model
    finally:
        for m, previous in saved:
            m.restore_widths(previous)


def current_widths(model: ElasticGenerator) -> Widths:
    """The widths the model runs with now (widest for groups that are not narrowed)."""
    widths = model.max_widths
    for _, m in elastic_layers(model):
        if m.active is not None:
            widths[m.group] = m.active
    return widths


def crop_state(model: nn.Module, widths: Mapping[str, int], target: nn.Module
               ) -> dict[str, torch.Tensor]:
    """`model`'s tensors cut to sub-network `widths`, keyed and shaped as `target`'s state dict.

    Each declared part keeps its first k channels (k = widths[group]), so a concatenated input
    keeps the right columns of each part.
    """
    source, axes = model.state_dict(), channel_axes(model)
    out = {}
    for key, ref in target.state_dict().items():
        if key not in source:
            raise UserError(f"cannot crop: tensor {key} of the sub-network is not in the source")
        tensor = source[key]
        for dim, parts in axes.get(key, []):
            index = part_index(parts, widths)
            if index is not None:
                tensor = tensor.index_select(dim, index.to(tensor.device))
        if tuple(tensor.shape) != tuple(ref.shape):
            raise UserError(f"cannot crop tensor {key}: {tuple(tensor.shape)} after cropping, "
                            f"expected {tuple(ref.shape)} (a layer without width declarations?)")
        out[key] = tensor.clone()
    return out


def compact(model: ElasticGenerator, widths: Mapping[str, int]) -> ElasticGenerator:
    """A standalone generator of the same class at `widths`, with the supernet's leading weights.

    Invariants (tested for every registered generator): compact(g, w)(x) == g@w(x) and
    macs(compact(g, w)) == macs(g@w).
    """
    widths = model.check_widths(widths)
    small = type(model)(**{**model.arch, "widths": widths})
    small.load_state_dict(crop_state(model, widths, small))
    small.train(model.training)
    return small.to(next(model.parameters()).device)


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            and m.track_running_stats]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[Any], max_batches: int = 50) -> int:
    """Re-estimate BatchNorm running statistics on training inputs at the current widths.

    Each batch is a tensor or a tuple of forward() inputs. Returns the batches used.
    """
    bns = batchnorms(model)
    if not bns:
        return 0
    was_training = model.training
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    model.train()
    used = 0
    try:
        for batch in batches:
            if used >= max_batches:
                break
            model(*batch) if isinstance(batch, (tuple, list)) else model(batch)
            used += 1
    finally:
        for bn, m in zip(bns, momenta):
            bn.momentum = m
        model.train(was_training)
    return used


@contextlib.contextmanager
def sub_network(model: nn.Module, widths: Mapping[str, int] | None,
                calibration: Iterable[Any] | None = None, max_batches: int = 50
                ) -> Iterator[nn.Module]:
    """THE way to evaluate a sub-network: widths set, eval mode, and - when the model has
    BatchNorm - running statistics re-calibrated on `calibration` training batches first
    (statistics accumulated while a supernet sampled many widths match no single sub-network;
    REFERENCE.md sec. 4). The model's statistics, widths and mode are restored on exit.

    A BatchNorm model without calibration batches is an error: its score would be wrong.
    """
    bns = batchnorms(model)
    if bns and calibration is None:
        raise ValueError("this generator has BatchNorm: pass calibration batches (training "
                         "inputs) to score a sub-network")
    saved = [{k: v.clone() for k, v in bn.state_dict().items()} for bn in bns]
    was_training = model.training
    try:
        with using_widths(model, widths):
            if bns:
                recalibrate_bn(model, calibration, max_batches)
            model.eval()
            yield model
    finally:
        for bn, state in zip(bns, saved):
            bn.load_state_dict(state)
        model.train(was_training)


def calibrated_compact(model: ElasticGenerator, widths: Mapping[str, int],
                       calibration: Iterable[Any] | None = None, max_batches: int = 50
                       ) -> ElasticGenerator:
    """compact(model, widths) with BatchNorm statistics re-calibrated for that sub-network."""
    small = compact(model, widths)
    if batchnorms(small):
        if calibration is None:
            raise ValueError("this generator has BatchNorm: pass calibration batches")
        recalibrate_bn(small, calibration, max_batches)
    return small.eval()


def load_state_checked(model: torch.nn.Module, state: Mapping[str, torch.Tensor], name: str) -> None:
    """A generator's strict load (weights.load_state_strict) with messages that name the tensor
    and both shapes."""
    load_state_strict(model, state, name,
                      advice="The file does not match the architecture it describes.")


def tensor_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    """The tensor dict inside common wrappers ({'state_dict': ...}, {'netG': ...}), 'module.' stripped."""
    if not isinstance(obj, Mapping):
        return None
    for key in ("state_dict", "netG", "generator", "model"):
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not all(isinstance(v, torch.Tensor) for v in obj.values()):
        return None
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}
