"""Elastic width: one set of layers that serves the full model, the supernet and every sub-network.

An elastic layer holds its widest weights and, when narrowed, runs with the *first k* output
channels (GAN Compression sec. 3.3, weight sharing as in once-for-all). Its input width always
follows the tensor it receives, so only layers that *produce* channels need to be told a width.
Those layers carry a `group` name; coupled layers (e.g. every conv that writes into the residual
trunk) share one group, so the coupling is declared where the model is built.

The active widths are the only hidden state. They are set through `using_widths(model, widths)`
(a context manager that always restores the previous state) and nowhere else.

`compact(model, widths)` builds the same generator class at those widths and copies the leading
block of every tensor, giving a standalone model with `compact(g, w)(x) == g@w(x)`.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancompress.errors import UserError

Widths = dict[str, int]


class ElasticConv2d(nn.Conv2d):
    """Conv2d that runs with its first `active` output channels and any input width <= in_channels.

    A depthwise conv (groups == in == out channels) keeps one filter per input channel, so its
    output width follows the input and it needs no group.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, group: str | None = None,
                 depthwise: bool = False, **kwargs):
        if depthwise:
            kwargs["groups"] = in_channels
            out_channels = in_channels
        super().__init__(in_channels, out_channels, kernel_size, **kwargs)
        self.group = None if depthwise else group
        self.depthwise = depthwise
        self.active: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c_in = x.shape[1]
        if self.depthwise:
            weight = self.weight[:c_in]
            bias = None if self.bias is None else self.bias[:c_in]
            return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, c_in)
        c_out = self.active or self.out_channels
        if c_in == self.in_channels and c_out == self.out_channels:
            weight, bias = self.weight, self.bias
        else:
            weight = self.weight[:c_out, : c_in // self.groups]
            bias = None if self.bias is None else self.bias[:c_out]
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)


class ElasticConvTranspose2d(nn.ConvTranspose2d):
    """ConvTranspose2d (weight shape: in, out, kh, kw) narrowed to its first `active` outputs."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, group: str | None = None,
                 **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, **kwargs)
        self.group = group
        self.active: int | None = None

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:  # noqa: D401
        c_in = x.shape[1]
        c_out = self.active or self.out_channels
        weight = self.weight[:c_in, :c_out]
        bias = None if self.bias is None else self.bias[:c_out]
        return F.conv_transpose2d(x, weight, bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation)


class ElasticBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose affine parameters and running statistics are sliced to the input width.

    Training a narrow sub-network updates only the leading slice of the running statistics; a
    sub-network's statistics should be re-calibrated before it is scored (see `recalibrate_bn`).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        use_batch_stats = self.training or not self.track_running_stats
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average, as nn.BatchNorm2d does
                momentum = 1.0 / float(self.num_batches_tracked)
        return F.batch_norm(
            x,
            None if self.running_mean is None else self.running_mean[:c],
            None if self.running_var is None else self.running_var[:c],
            None if self.weight is None else self.weight[:c],
            None if self.bias is None else self.bias[:c],
            use_batch_stats, momentum, self.eps)


class ElasticInstanceNorm2d(nn.InstanceNorm2d):
    """InstanceNorm (affine or not) at any input width <= num_features."""

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


def norm_layer(kind: str, channels: int) -> nn.Module:
    """The published conventions: InstanceNorm without affine or running stats; affine BatchNorm."""
    if kind == "instance":
        return ElasticInstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return ElasticBatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise UserError(f"unknown norm {kind!r}; use 'instance', 'batch' or 'none'")


class SeparableConv2d(nn.Module):
    """MobileNet-style conv of the mobile generators: depthwise kxk (bias) -> norm -> pointwise 1x1.

    The norm between the two convs is InstanceNorm without affine in the published mobile ResNet
    generator (REFERENCE.md sec. 2). The pointwise conv sets the output width (its `group`).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *, group: str | None,
                 norm: str = "instance", bias: bool = True):
        super().__init__()
        self.depthwise = ElasticConv2d(in_channels, in_channels, kernel_size, depthwise=True,
                                       padding=0, bias=True)
        self.norm = norm_layer(norm, in_channels)
        self.pointwise = ElasticConv2d(in_channels, out_channels, 1, group=group, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.norm(self.depthwise(x)))


def elastic_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Every (name, module) whose output width is governed by a width group."""
    for name, module in model.named_modules():
        if getattr(module, "group", None) is not None and hasattr(module, "active"):
            yield name, module


class ElasticGenerator(nn.Module):
    """Base of every generator built from elastic layers.

    Subclasses store their constructor arguments in `self.arch` (JSON-serialisable, with the
    per-group maximum widths under "widths") so that `compact` and checkpoints can rebuild them.
    """

    arch_name: str = ""
    arch: dict

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


@contextlib.contextmanager
def using_widths(model: nn.Module, widths: Mapping[str, int] | None) -> Iterator[nn.Module]:
    """Run `model` as the sub-network with these per-group widths inside the block.

    `None` or an empty mapping means the widest network. The previous widths are restored on exit,
    also when the block raises, so no step can leave the supernet narrowed by accident.
    """
    if widths and isinstance(model, ElasticGenerator):
        widths = model.check_widths(widths)
    layers = list(elastic_layers(model))
    saved = [(m, m.active) for _, m in layers]
    try:
        for _, m in layers:
            if widths and m.group in widths:
                m.active = widths[m.group]
            else:
                m.active = None
        yield model
    finally:
        for m, previous in saved:
            m.active = previous


def current_widths(model: ElasticGenerator) -> Widths:
    """The widths the model runs with now (widest for groups that are not narrowed)."""
    widths = model.max_widths
    for _, m in elastic_layers(model):
        if m.active is not None:
            widths[m.group] = m.active
    return widths


def crop_state_dict(source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]
                    ) -> dict[str, torch.Tensor]:
    """Copy of `source` with every tensor cropped to the leading block of `target`'s shape."""
    out = {}
    for key, ref in target.items():
        if key not in source:
            raise KeyError(key)
        tensor = source[key]
        if tensor.dim() != ref.dim() or any(s < r for s, r in zip(tensor.shape, ref.shape)):
            raise UserError(f"cannot crop tensor {key}: source shape {tuple(tensor.shape)} is "
                            f"smaller than target shape {tuple(ref.shape)}")
        out[key] = tensor[tuple(slice(0, r) for r in ref.shape)].clone()
    return out


def compact(model: ElasticGenerator, widths: Mapping[str, int]) -> ElasticGenerator:
    """A standalone generator of the same class at `widths`, with the supernet's leading weights.

    Invariants (tested for every registered generator): compact(g, w)(x) == g@w(x) and
    macs(compact(g, w)) == macs(g@w).
    """
    widths = model.check_widths(widths)
    arch = {**model.arch, "widths": widths}
    small = type(model)(**arch)
    small.load_state_dict(crop_state_dict(model.state_dict(), small.state_dict()))
    small.train(model.training)
    return small.to(next(model.parameters()).device)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches, widths: Mapping[str, int] | None = None,
                   max_batches: int = 50) -> None:
    """Re-estimate BatchNorm running statistics for a sub-network on training inputs.

    Needed for BatchNorm generators (pix2pix --norm batch, SPADE): statistics accumulated while
    the supernet sampled many widths do not match any single sub-network.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    was_training = model.training
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    model.train()
    with using_widths(model, widths):
        for i, batch in enumerate(batches):
            if i >= max_batches:
                break
            model(batch)
    for bn in bns:
        bn.momentum = 0.1
    model.train(was_training)
