"""The U-Net generator of pix2pix (`unet_256`, `unet_128`, any depth), one elastic class for every
variant: full (dense), mobile (conv="separable"), supernet (trained with sampled widths) and compact.

Layout (docs/families.md sec. 2), levels i = 0 .. num_downs-1, ngf = 64 shown:
    width(i) = min(2**i, 8) * ngf                      64, 128, 256, 512, 512, ...
    down(0)   conv 4x4 s2 in->w0                                    (no activation, no norm)
    down(i)   LeakyReLU(0.2), conv 4x4 s2 w(i-1)->w(i), norm        (innermost: no norm)
    up(n-1)   ReLU, convT 4x4 s2 w(n-1)->w(n-2), norm               (innermost: no skip input)
    up(i)     ReLU, convT 4x4 s2 cat[down(i), up(i+1)] = 2w(i) -> w(i-1), norm, dropout if
              4 <= i <= n-2 (the ngf*8 middle blocks)
    up(0)     ReLU, convT 4x4 s2 2w0 -> out (always with bias), tanh
Conv bias iff InstanceNorm (BatchNorm has its own shift), except up(0) which always has one.
The input side must be a multiple of 2**num_downs (the bottleneck of unet_256 at 256 px is 1x1).

Width groups: one per level, `level{i}` = the channels of down(i)'s output *and* of up(i+1)'s
output, the two halves of the skip concatenation that up(i) reads; up(i) declares both parts.
Config string: one number per level, c_i, with width(i) = min(2**i, 8) * c_i, so the full
unet_256 at ngf 64 is `64_64_64_64_64_64_64_64` (the ResNet convention: numbers in ngf units).
No U-Net search space was published; the presets here follow the ResNet ones (channels-48,
channels-32, channels-64) over every level.

Mobile variant (conv="separable"; levels 1 .. n-2: the image-side convs and the innermost level,
whose InstanceNorm would see a 1x1 map at the reference size, stay dense): the down conv is
depthwise 4x4 s2 -> InstanceNorm -> pointwise 1x1; the up conv is pointwise 1x1 (reading both
skip parts) -> InstanceNorm -> depthwise transposed 4x4 s2, so the costly 1x1 runs at the low
resolution.

Distillation taps: the decoder outputs up(1) .. up(4) (groups level0 .. level3, resolutions H/2
.. H/16).

Published checkpoints: pytorch-CycleGAN-and-pix2pix `latest_net_G.pth` (nested keys
`model.model.1.model.3....`): depth, ngf, widths, norm and in/out channels are read from keys and
shapes; dropout leaves no key (hint `dropout=`; default: the pix2pix default, on with batch norm).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancompress.errors import UserError
from gancompress.models.elastic import (
    ElasticConv2d,
    ElasticConvTranspose2d,
    ElasticGenerator,
    ElasticModule,
    SeparableConv2d,
    Widths,
    as_parts,
    decode_positions,
    load_state_checked,
    norm_layer,
    tensor_dict,
)

MIN_DOWNS = 5  # the reference builds 4 outer levels + the innermost; deeper nets add ngf*8 levels
TAP_LEVELS = (1, 2, 3, 4)  # up(j) outputs used for distillation (group level{j-1})


def group_name(level: int) -> str:
    return f"level{level}"


def multiplier(level: int) -> int:
    """width(level) = multiplier(level) * ngf (the reference's ngf, 2ngf, 4ngf, 8ngf, 8ngf...)."""
    return min(2 ** level, 8)


def config_positions(num_downs: int) -> tuple[tuple[tuple[str, int], ...], ...]:
    """The config string: one number per level, width = multiplier(level) * number."""
    return tuple(((group_name(i), multiplier(i)),) for i in range(num_downs))


def default_widths(ngf: int, num_downs: int) -> Widths:
    return {group_name(i): multiplier(i) * ngf for i in range(num_downs)}


def has_dropout(level: int, num_downs: int) -> bool:
    """Only the ngf*8 middle blocks (levels 4 .. num_downs-2) of the reference get dropout."""
    return 4 <= level <= num_downs - 2


class DepthwiseConvTranspose2d(ElasticModule, nn.ConvTranspose2d):
    """Depthwise transposed conv (one k x k filter per channel); its width follows its input."""

    depthwise = True  # L1 pruning: a per-channel filter does not vote on channel importance

    def __init__(self, channels: int, kernel_size: int, *, in_group: str | None = None, **kwargs):
        super().__init__(channels, channels, kernel_size, groups=channels, **kwargs)
        self.in_parts = as_parts(in_group, channels)

    def channel_axes(self):
        axes = {"weight": [(0, self.in_parts)]}
        if self.bias is not None:
            axes["bias"] = [(0, self.in_parts)]
        return axes

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        c = x.shape[1]
        bias = None if self.bias is None else self.bias[:c]
        return F.conv_transpose2d(x, self.weight[:c], bias, self.stride, self.padding,
                                  self.output_padding, c, self.dilation)

    @staticmethod
    def mac_rule(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
        # Published convention for transposed convs: numel(out) * (in channels per group) *
        # k*k, i.e. k*k per output element here; true count: each input element meets k*k taps.
        k = m.kernel_size[0] * m.kernel_size[1]
        return y.numel() * k, x.numel() * k


class SeparableConvTranspose2d(nn.Module):
    """Mobile up-conv: pointwise 1x1 (reads the skip parts) -> InstanceNorm -> depthwise convT."""

    def __init__(self, in_channels: int, out_channels: int, *, group: str, in_parts: Any,
                 bias: bool):
        super().__init__()
        self.pointwise = ElasticConv2d(in_channels, out_channels, 1, group=group,
                                       in_parts=in_parts, bias=bias)
        self.norm = norm_layer("instance", out_channels, group)
        self.depthwise = DepthwiseConvTranspose2d(out_channels, 4, in_group=group, stride=2,
                                                  padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.depthwise(self.norm(self.pointwise(x)))


class Down(nn.Module):
    """One encoder step: [LeakyReLU(0.2)], conv 4x4 s2, [norm]."""

    def __init__(self, conv: nn.Module, norm: nn.Module, act: bool):
        super().__init__()
        self.act = nn.LeakyReLU(0.2) if act else nn.Identity()
        self.conv = conv
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(self.act(x)))


class Up(nn.Module):
    """One decoder step: ReLU, convT 4x4 s2, [norm], [dropout] (tanh for the outermost)."""

    def __init__(self, conv: nn.Module, norm: nn.Module, dropout: float, outermost: bool):
        super().__init__()
        self.act = nn.ReLU()
        self.conv = conv
        self.norm = norm
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.outermost = outermost

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.norm(self.conv(self.act(x))))
        return torch.tanh(h) if self.outermost else h


class UnetGenerator(ElasticGenerator):
    """Elastic pix2pix U-Net (see the module docstring for layout, width groups and config)."""

    arch_name = "unet"
    config_label = "U-Net (one number per level)"
    published_formats = ("pytorch-CycleGAN-and-pix2pix U-Net generators (unet_256 / unet_128; "
                         "keys like 'model.model.0.weight', 'model.model.1.model.3.model.1.weight')")
    reference_size = (256, 256)

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
                 num_downs: int = 8, conv: str = "dense", norm: str = "batch",
                 dropout: float = 0.0, widths: Mapping[str, int] | str | None = None):
        super().__init__()
        if conv not in ("dense", "separable"):
            raise UserError(f"conv must be 'dense' or 'separable', got {conv!r}")
        if norm not in ("batch", "instance"):
            raise UserError(f"a U-Net's norm must be 'batch' or 'instance', got {norm!r}")
        if not isinstance(num_downs, int) or num_downs < MIN_DOWNS:
            raise UserError(f"num_downs must be an integer >= {MIN_DOWNS} (unet_128 = 7, unet_256 "
                            f"= 8), got {num_downs!r}")
        n = num_downs
        self.num_downs = n
        self.size_multiple = 2 ** n
        full = default_widths(ngf, n)
        if isinstance(widths, str):
            widths = self._decode(widths, n)
        if widths:
            unknown = set(widths) - set(full)
            if unknown:
                raise UserError(f"unknown width groups {sorted(unknown)}; a U-Net with num_downs="
                                f"{n} has {list(full)}")
            full.update({g: int(w) for g, w in widths.items()})
        self.arch = dict(in_channels=in_channels, out_channels=out_channels, ngf=ngf,
                         num_downs=n, conv=conv, norm=norm, dropout=float(dropout), widths=full)
        w = [full[group_name(i)] for i in range(n)]
        g = [group_name(i) for i in range(n)]
        bias = norm == "instance"
        downs = [Down(ElasticConv2d(in_channels, w[0], 4, group=g[0], stride=2, padding=1,
                                    bias=bias), nn.Identity(), act=False)]
        for i in range(1, n):
            innermost = i == n - 1
            if conv == "separable" and not innermost:
                layer = SeparableConv2d(w[i - 1], w[i], 4, group=g[i], in_group=g[i - 1],
                                        bias=bias, padding=1, stride=2)
            else:
                layer = ElasticConv2d(w[i - 1], w[i], 4, group=g[i], in_group=g[i - 1], stride=2,
                                      padding=1, bias=bias)
            downs.append(Down(layer, nn.Identity() if innermost else norm_layer(norm, w[i], g[i]),
                              act=True))
        ups = []
        for i in range(n):
            # up(i) reads cat([down(i) output, up(i+1) output]): both halves are group level{i}
            # (the innermost reads only its down output).
            parts = [(g[i], w[i])] if i == n - 1 else [(g[i], w[i]), (g[i], w[i])]
            c_in = sum(c for _, c in parts)
            if i == 0:
                layer = ElasticConvTranspose2d(c_in, out_channels, 4, in_parts=parts, stride=2,
                                               padding=1, bias=True)
                ups.append(Up(layer, nn.Identity(), 0.0, outermost=True))
                continue
            if conv == "separable" and i < n - 1:
                layer = SeparableConvTranspose2d(c_in, w[i - 1], group=g[i - 1], in_parts=parts,
                                                 bias=bias)
            else:
                layer = ElasticConvTranspose2d(c_in, w[i - 1], 4, group=g[i - 1], in_parts=parts,
                                               stride=2, padding=1, bias=bias)
            p = dropout if has_dropout(i, n) else 0.0
            ups.append(Up(layer, norm_layer(norm, w[i - 1], g[i - 1]), p, outermost=False))
        self.downs = nn.ModuleList(downs)
        self.ups = nn.ModuleList(ups)

    # -- the family contract --------------------------------------------------------------------
    @staticmethod
    def _decode(config: str | Sequence[int], num_downs: int) -> Widths:
        return decode_positions(config, config_positions(num_downs), UnetGenerator.config_label)

    def config_layout(self) -> tuple[tuple[tuple[str, int], ...], ...]:
        return config_positions(self.num_downs)  # the default codec reads these

    def search_spaces(self) -> dict[str, list[list[int]]]:
        n = self.num_downs
        return {"channels-64": [[64, 56, 48, 40, 32, 24, 16] for _ in range(n)],
                "channels-48": [[48, 40, 32, 24, 16] for _ in range(n)],
                "channels-32": [[32, 24, 16] for _ in range(n)]}

    @property
    def feature_widths(self) -> list[str]:
        return [group_name(j - 1) for j in TAP_LEVELS]

    def check_size(self, size: Sequence[int]) -> tuple[int, int]:
        h, w = (int(size[0]), int(size[-1]))
        m = self.size_multiple
        if h < m or w < m or h % m or w % m:
            raise UserError(f"input size {h}x{w} does not suit this U-Net: it halves the input "
                            f"num_downs={self.num_downs} times, so height and width must be "
                            f"multiples of 2^{self.num_downs} = {m}; resize or crop the input "
                            f"(e.g. to {max(m, h // m * m)}x{max(m, w // m * m)}) or use a "
                            f"U-Net with fewer levels")
        return h, w

    @classmethod
    def read_published(cls, obj: Any, name: str, **hints: Any
                       ) -> tuple[UnetGenerator, str] | None:
        state = tensor_dict(obj)
        if state is None or "model.model.0.weight" not in state:
            return None
        return read_published_unet(state, name, dropout=hints.get("dropout"))

    def forward(self, x: torch.Tensor, return_features: bool = False):
        """(B, in, H, W) in [-1, 1] -> (B, out, H, W) in [-1, 1]; H, W multiples of 2^num_downs.

        With return_features=True also returns the decoder taps up(1) .. up(4).
        """
        if all(isinstance(s, int) for s in x.shape[-2:]):  # symbolic while exporting
            self.check_size(x.shape[-2:])
        skips = []
        h = x
        for down in self.downs:
            h = down(h)
            skips.append(h)
        features = []
        h = self.ups[-1](skips[-1])
        for i in range(self.num_downs - 2, -1, -1):
            if i + 1 in TAP_LEVELS:
                features.append(h)
            h = self.ups[i](torch.cat([skips[i], h], 1))
        features.reverse()  # shallowest (highest resolution) first
        return (h, features) if return_features else h


# ----------------------------------------------------------------------------------------------
# Published checkpoints (docs/families.md sec. 2)

# model.model.1(.model.3)*k.model.<index>.<tensor>: a level-(k+1) block's layer
_NESTED = re.compile(r"^model\.model\.1((?:\.model\.3)*)\.model\.(\d+)\.(\w+)$")
_OUTER = re.compile(r"^model\.model\.([03])\.(\w+)$")


def read_published_unet(state: dict[str, torch.Tensor], name: str, dropout: float | None = None
                        ) -> tuple[UnetGenerator, str] | None:
    """Map pytorch-CycleGAN-and-pix2pix UnetGenerator keys onto UnetGenerator's modules."""
    entries = []  # (level, index in the block's Sequential, tensor name, key)
    for key in state:
        if m := _NESTED.match(key):
            entries.append((m.group(1).count(".model.3") + 1, int(m.group(2)), m.group(3), key))
        elif m := _OUTER.match(key):
            entries.append((0, int(m.group(1)), m.group(2), key))
        else:
            return None  # not U-Net keys: another family's reader may know them
    n = max(level for level, *_ in entries) + 1
    if n < MIN_DOWNS or "model.model.3.weight" not in state:
        return None
    batch = any(level == 1 and index == 2 and t == "weight" for level, index, t, _ in entries)
    if not batch:  # InstanceNorm running statistics written by the 2018 code: not used
        entries = [e for e in entries
                   if e[2] not in ("running_mean", "running_var", "num_batches_tracked")]
    innermost = n - 1
    names = {}
    for level, index, tensor, key in entries:
        if level == 0:
            layer = {0: "downs.0.conv", 3: "ups.0.conv"}[index]
        elif level == innermost:
            layer = {1: f"downs.{level}.conv", 3: f"ups.{level}.conv",
                     4: f"ups.{level}.norm"}.get(index)
        else:
            layer = {1: f"downs.{level}.conv", 2: f"downs.{level}.norm", 5: f"ups.{level}.conv",
                     6: f"ups.{level}.norm"}.get(index)
        if layer is None:
            raise UserError(f"{name}: unexpected tensor {key} for a {n}-level U-Net generator")
        names[f"{layer}.{tensor}"] = state[key]
    first = names["downs.0.conv.weight"]
    widths = {group_name(i): int(names[f"downs.{i}.conv.weight"].shape[0]) for i in range(n)}
    ngf = int(first.shape[0])
    norm = "batch" if batch else "instance"
    if dropout is None:
        dropout = 0.5 if batch else 0.0
    model = UnetGenerator(in_channels=int(first.shape[1]),
                          out_channels=int(names["ups.0.conv.weight"].shape[1]), ngf=ngf,
                          num_downs=n, conv="dense", norm=norm, dropout=float(dropout),
                          widths=widths)
    load_state_checked(model, names, name)
    fmt = (f"pytorch-CycleGAN-and-pix2pix U-Net ({n} levels, {norm} norm; dropout "
           f"{'assumed on' if dropout else 'off'}: files do not record it)")
    return model, fmt
