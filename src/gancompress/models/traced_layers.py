"""Elastic layers for automatically converted generators (models/traced.py).

The family layers of models/elastic.py, extended where a user's model needs more: output parts
on convs (a conv whose output is split, e.g. into a gate and a value), input parts on depthwise
convs and norms (a norm after a concatenation), padding modes, LayerNorm over channels, and
`SlicedTensors`, the mixin that narrows a user module's own parameters and buffers (U-GAT-IT's
AdaLIN rho, a blur filter) when its forward reads them.

`build_layer(module, spec)` returns the elastic twin of a handled layer with the same state;
`narrow_in_place(model, widths)` gives every elastic tensor its sub-network shape (what a compact
model is built from).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancompress.models.channel_groups import LayerSpec
from gancompress.models.elastic import (
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticConvTranspose2d,
    ElasticInstanceNorm2d,
    ElasticLinear,
    ElasticModule,
    as_parts,
    elastic_modules,
    part_index,
)


def _rows(weight: torch.Tensor, layer: ElasticModule, dim: int) -> torch.Tensor:
    """The weight's output slice at the active widths (out parts or first `active`)."""
    if layer.out_index is not None:
        return weight.index_select(dim, layer.out_index.to(weight.device))
    if layer.active and layer.active != weight.shape[dim]:
        return weight.narrow(dim, 0, layer.active)
    return weight


def _channels(t: torch.Tensor | None, layer: ElasticModule, c: int) -> torch.Tensor | None:
    """A per-input-channel tensor at the active input parts (c channels)."""
    if t is None:
        return None
    if layer.in_index is not None:
        return t.index_select(0, layer.in_index.to(t.device))
    return t[:c] if t.shape[0] != c else t


class TracedConv2d(ElasticConv2d):
    """ElasticConv2d with output parts, multi-part depthwise inputs and any padding mode."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c_in = x.shape[1]
        if self.depthwise:
            weight = _channels(self.weight, self, c_in)
            bias = _channels(self.bias, self, c_in)
            groups = c_in
        else:
            weight = self._input_weight(_rows(self.weight, self, 0), 1, c_in)
            bias = None if self.bias is None else _rows(self.bias, self, 0)
            groups = 1
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return F.conv2d(x, weight, bias, self.stride, 0, self.dilation, groups)
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, groups)


class TracedConvTranspose2d(ElasticConvTranspose2d):
    """ElasticConvTranspose2d with output parts and depthwise (groups == channels) use."""

    depthwise = False

    def channel_axes(self):
        if self.depthwise:
            axes = {"weight": [(0, self.in_parts)]}
            if self.bias is not None:
                axes["bias"] = [(0, self.in_parts)]
            return axes
        return super().channel_axes()

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:  # noqa: D401
        c_in = x.shape[1]
        if self.depthwise:
            weight, bias, groups = _channels(self.weight, self, c_in), \
                _channels(self.bias, self, c_in), c_in
        else:
            weight = self._input_weight(_rows(self.weight, self, 1), 0, c_in)
            bias = None if self.bias is None else _rows(self.bias, self, 0)
            groups = 1
        return F.conv_transpose2d(x, weight, bias, self.stride, self.padding, self.output_padding,
                                  groups, self.dilation)


class TracedLinear(ElasticLinear):
    """A user's linear layer (metrics/cost.py counts the input width that runs)."""


class TracedBatchNorm2d(ElasticBatchNorm2d):
    """ElasticBatchNorm2d that also reads a concatenated input (several parts)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_index is None:
            return super().forward(x)
        index = self.in_index.to(x.device)
        pick = (lambda t: None if t is None else t.index_select(0, index))
        mean, var = pick(self.running_mean), pick(self.running_var)
        y = F.batch_norm(x, mean, var, pick(self.weight), pick(self.bias),
                         self.training or not self.track_running_stats, self._momentum(), self.eps)
        if self.training and mean is not None:
            with torch.no_grad():  # write the updated statistics back to their channels
                self.running_mean.index_copy_(0, index, mean)
                self.running_var.index_copy_(0, index, var)
        return y


class TracedInstanceNorm2d(ElasticInstanceNorm2d):
    """ElasticInstanceNorm2d that also reads a concatenated input (several parts)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_index is None:
            return super().forward(x)
        c = x.shape[1]
        return F.instance_norm(
            x, _channels(self.running_mean, self, c), _channels(self.running_var, self, c),
            _channels(self.weight, self, c), _channels(self.bias, self, c),
            self.training or not self.track_running_stats, self.momentum or 0.0, self.eps)


class TracedLayerNorm(ElasticModule, nn.LayerNorm):
    """LayerNorm over the last (channel) dimension at any width."""

    def __init__(self, channels: int, *, group: Any = None, **kwargs):
        super().__init__(channels, **kwargs)
        self.in_parts = as_parts(group, channels)

    def channel_axes(self):
        return {n: [(0, self.in_parts)] for n in ("weight", "bias") if getattr(self, n) is not None}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[-1]
        return F.layer_norm(x, (c,), _channels(self.weight, self, c), _channels(self.bias, self, c),
                            self.eps)


class TracedGroupNorm(ElasticModule, nn.GroupNorm):
    """GroupNorm with one group (layer norm over C, H, W) or one group per channel (instance
    norm): both stay the same normalisation at any width."""

    def __init__(self, num_groups: int, channels: int, *, group: Any = None, **kwargs):
        super().__init__(num_groups, channels, **kwargs)
        self.per_channel = num_groups == channels
        self.in_parts = as_parts(group, channels)

    def channel_axes(self):
        return {n: [(0, self.in_parts)] for n in ("weight", "bias") if getattr(self, n) is not None}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        return F.group_norm(x, c if self.per_channel else 1, _channels(self.weight, self, c),
                            _channels(self.bias, self, c), self.eps)


class SlicedTensors(ElasticModule):
    """Mixin put in front of a user module's class: its own parameters / buffers listed in
    `_sliced` (name -> [(dim, parts)]) are read at the active widths by the user's forward."""

    _sliced: dict[str, list[tuple[int, Any]]]
    _slice_index: dict[str, list[tuple[int, torch.Tensor]]]

    def set_widths(self, widths: Mapping[str, int] | None) -> None:
        self.__dict__["_slice_index"] = {
            name: [(d, i) for d, parts in axes if (i := part_index(parts, widths)) is not None]
            for name, axes in self._sliced.items()}

    def widths_state(self) -> tuple:
        return (self.__dict__.get("_slice_index"),)

    def restore_widths(self, state: tuple) -> None:
        self.__dict__["_slice_index"] = state[0]

    def channel_axes(self):
        return {name: list(axes) for name, axes in self._sliced.items()}

    def __getattr__(self, name: str):
        value = super().__getattr__(name)
        index = self.__dict__.get("_slice_index") or {}
        for dim, idx in index.get(name, ()):
            value = value.index_select(dim, idx.to(value.device))
        return value


_SLICED_CLASSES: dict[type, type] = {}


def slice_tensors(module: nn.Module, axes: Mapping[str, list[tuple[int, Any]]]) -> None:
    """Make `module` read these tensors at the active widths (its class gains SlicedTensors)."""
    cls = type(module)
    if not isinstance(module, SlicedTensors):
        if cls not in _SLICED_CLASSES:
            _SLICED_CLASSES[cls] = type(cls.__name__, (SlicedTensors, cls),
                                        {"__module__": cls.__module__})
        module.__class__ = _SLICED_CLASSES[cls]
        module.__dict__["_sliced"] = {}
    for name, entries in axes.items():
        module.__dict__["_sliced"][name] = [(d, as_parts(p, module_tensor(module, name).shape[d]))
                                            for d, p in entries]
    module.__dict__["_slice_index"] = {}


def module_tensor(module: nn.Module, name: str) -> torch.Tensor:
    return module._parameters.get(name) if name in module._parameters else module._buffers[name]


def build_layer(m: nn.Module, spec: LayerSpec) -> nn.Module:
    """The elastic twin of handled layer `m` (same hyper-parameters and state: `m`'s tensors
    themselves, so `m` must not be used afterwards). Built on the meta device: no allocation
    and no random init of weights that are replaced at once (seconds for a large generator)."""
    with torch.device("meta"):
        new = _twin(m, spec)
    if isinstance(new, ElasticModule) and spec.in_parts is None:
        new.in_parts = as_parts(None, new.in_parts[0][1] if new.in_parts else 0)
    new.load_state_dict(m.state_dict(), assign=True)
    new.train(m.training)
    return new


def _twin(m: nn.Module, spec: LayerSpec) -> nn.Module:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        depthwise = spec.kind == "depthwise"
        kw = dict(stride=m.stride, padding=m.padding, dilation=m.dilation, bias=m.bias is not None)
        if isinstance(m, nn.Conv2d):
            new = TracedConv2d(m.in_channels, m.out_channels, m.kernel_size, in_parts=spec.in_parts,
                               depthwise=depthwise, padding_mode=m.padding_mode, **kw)
        else:
            new = TracedConvTranspose2d(m.in_channels, m.out_channels, m.kernel_size,
                                        in_parts=spec.in_parts, output_padding=m.output_padding,
                                        groups=m.groups, **kw)
            new.depthwise = depthwise
        if not depthwise:
            _set_out(new, spec.out_parts, m.out_channels)
    elif isinstance(m, nn.Linear):
        new = TracedLinear(m.in_features, m.out_features, in_parts=spec.in_parts,
                           bias=m.bias is not None)
        _set_out(new, spec.out_parts, m.out_features)
    elif isinstance(m, nn.BatchNorm2d):
        new = TracedBatchNorm2d(m.num_features, group=spec.in_parts, eps=m.eps, momentum=m.momentum,
                                affine=m.affine, track_running_stats=m.track_running_stats)
    elif isinstance(m, nn.InstanceNorm2d):
        new = TracedInstanceNorm2d(m.num_features, group=spec.in_parts, eps=m.eps,
                                   momentum=m.momentum, affine=m.affine,
                                   track_running_stats=m.track_running_stats)
    elif isinstance(m, nn.GroupNorm):
        new = TracedGroupNorm(m.num_groups, m.num_channels, group=spec.in_parts, eps=m.eps,
                              affine=m.affine)
    elif isinstance(m, nn.LayerNorm):
        new = TracedLayerNorm(m.normalized_shape[0], group=spec.in_parts, eps=m.eps,
                              elementwise_affine=m.elementwise_affine)
    else:  # not reached: analysis only hands over the types above
        raise TypeError(type(m))
    return new


def _set_out(layer: ElasticModule, parts: Any, channels: int) -> None:
    if parts is None:
        layer.group = None
    elif len(parts) == 1:
        layer.group = parts[0][0]
    else:
        layer.group = None
        layer.out_parts = as_parts(parts, channels)


# -- physical narrowing (compact models) ------------------------------------------------------

def _narrow_parts(parts, widths):
    return tuple((g, widths[g] if g is not None and g in widths else w) for g, w in parts)


@torch.no_grad()
def narrow_in_place(model: nn.Module, widths: Mapping[str, int]) -> None:
    """Cut every elastic tensor to `widths` and update the layers' sizes and declarations, so
    the model *is* the sub-network (its state dict is crop_state's target)."""
    for _, m in list(elastic_modules(model)):
        for name, entries in m.channel_axes().items():
            tensor = module_tensor(m, name)
            for dim, parts in entries:
                index = part_index(parts, widths)
                if index is not None:
                    tensor = tensor.index_select(dim, index)
            if name in m._parameters:
                m._parameters[name] = nn.Parameter(tensor.clone(),
                                                   requires_grad=m._parameters[name].requires_grad)
            else:
                m._buffers[name] = tensor.clone()
        if isinstance(m, SlicedTensors):
            m.__dict__["_sliced"] = {n: [(d, _narrow_parts(p, widths)) for d, p in axes]
                                     for n, axes in m._sliced.items()}
            continue
        m.in_parts = _narrow_parts(m.in_parts, widths)
        c_in = sum(w for _, w in m.in_parts)
        if m.out_parts is not None:
            m.out_parts = _narrow_parts(m.out_parts, widths)
        c_out = sum(w for _, w in m.out_parts) if m.out_parts is not None else \
            widths.get(m.group) if m.group is not None else None
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            m.in_channels = c_in
            if getattr(m, "depthwise", False):
                m.out_channels = m.groups = c_in
            elif c_out is not None:
                m.out_channels = c_out
        elif isinstance(m, nn.Linear):
            m.in_features = c_in
            if c_out is not None:
                m.out_features = c_out
        elif isinstance(m, nn.LayerNorm):
            m.normalized_shape = (c_in,)
        elif isinstance(m, nn.GroupNorm):
            m.num_channels = c_in
            m.num_groups = c_in if m.per_channel else 1
        elif hasattr(m, "num_features"):
            m.num_features = c_in
