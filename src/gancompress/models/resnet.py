"""The ResNet generator of pix2pix / CycleGAN, one elastic class for every variant.

    full      ResnetGenerator(ngf=64)                       dense convs, 11,378,179 params
    mobile    ResnetGenerator(ngf=64, conv="separable")     separable convs in the residual blocks
    supernet  the mobile (or full) model trained with sampled widths (elastic.using_widths)
    compact   ResnetGenerator(conv="separable", widths=decode_config("16_16_32_..."))

Layout (REFERENCE.md sec. 2), shapes for a 1x3x256x256 input and ngf=64:
    stem   reflect-pad 3, conv 7x7 3->ngf, norm, ReLU                     (B, 64, 256, 256)
    down1  conv 3x3 s2 ngf->2ngf, norm, ReLU                               (B, 128, 128, 128)
    down2  conv 3x3 s2 2ngf->4ngf, norm, ReLU                              (B, 256, 64, 64)
    blocks n_blocks x [pad, conv, norm, ReLU, (dropout), pad, conv, norm] + skip, trunk width
    up1    convT 3x3 s2 4ngf->2ngf, norm, ReLU                             (B, 128, 128, 128)
    up2    convT 3x3 s2 2ngf->ngf, norm, ReLU                              (B, 64, 256, 256)
    head   reflect-pad 3, conv 7x7 ngf->out, tanh                          (B, 3, 256, 256)

Width groups and the published 8-number config string c0_..._c7:
    stem=c0, down1=2*c1, trunk=4*c2 (down2 output and every block output: they are added
    together, so they must share one width), res1/res2/res3=4*c3/4*c4/4*c5 (hidden width of the
    first, middle and last third of the blocks), up1=2*c6, up2=c7.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn as nn

from gancompress.errors import UserError
from gancompress.models.elastic import (
    ElasticConv2d,
    ElasticConvTranspose2d,
    ElasticGenerator,
    SeparableConv2d,
    Widths,
    norm_layer,
)

GROUPS = ("stem", "down1", "trunk", "res1", "res2", "res3", "up1", "up2")
# channels = MULTIPLIER[group] * (number in the config string)
MULTIPLIER = {"stem": 1, "down1": 2, "trunk": 4, "res1": 4, "res2": 4, "res3": 4, "up1": 2, "up2": 1}


def default_widths(ngf: int) -> Widths:
    return {g: MULTIPLIER[g] * ngf for g in GROUPS}


def block_group(index: int, n_blocks: int) -> str:
    """Hidden-width group of residual block `index`: thirds of the trunk (blocks 1-3, 4-6, 7-9)."""
    return f"res{index * 3 // n_blocks + 1}"


def decode_config(config: str | Sequence[int]) -> Widths:
    """'c0_c1_..._c7' (or the older 6-number form) -> channel widths per group."""
    values = _parse_numbers(config)
    if len(values) == 6:  # older form: one hidden width for all blocks; c4, c5 = the two convT
        c0, c1, c2, c3, c4, c5 = values
        values = [c0, c1, c2, c3, c3, c3, c4, c5]
    if len(values) != 8:
        raise UserError(f"a ResNet config string has 8 numbers (or 6 in the older form), got "
                        f"{len(values)}: {config!r}")
    return {g: MULTIPLIER[g] * c for g, c in zip(GROUPS, values)}


def encode_config(widths: Mapping[str, int]) -> str:
    """Channel widths per group -> the published 8-number config string."""
    parts = []
    for g in GROUPS:
        if g not in widths:
            raise UserError(f"widths lack group {g!r}")
        if widths[g] % MULTIPLIER[g]:
            raise UserError(f"width {widths[g]} of group {g!r} is not a multiple of "
                            f"{MULTIPLIER[g]}, so it has no config-string form")
        parts.append(str(widths[g] // MULTIPLIER[g]))
    return "_".join(parts)


def _parse_numbers(config: str | Sequence[int]) -> list[int]:
    if not isinstance(config, str):
        return [int(v) for v in config]
    values = []
    for pos, part in enumerate(config.strip().split("_")):
        if not part.isdigit() or int(part) < 1:
            raise UserError(f"config string {config!r}: position {pos} is {part!r}, expected a "
                            f"positive integer")
        values.append(int(part))
    return values


class ConvNormAct(nn.Module):
    """[reflect-pad] conv or convT, norm, ReLU: one stage of the encoder / decoder."""

    def __init__(self, conv: nn.Module, channels: int, norm: str, pad: int = 0):
        super().__init__()
        self.pad = nn.ReflectionPad2d(pad) if pad else nn.Identity()
        self.conv = conv
        self.norm = norm_layer(norm, channels)
        self.act = nn.ReLU(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(self.pad(x))))


class ResidualBlock(nn.Module):
    """x + [pad, conv, norm, ReLU, dropout, pad, conv, norm](x); width: trunk -> hidden -> trunk."""

    def __init__(self, trunk: int, hidden: int, hidden_group: str, conv: str, norm: str,
                 dropout: float, bias: bool):
        super().__init__()
        self.pad1 = nn.ReflectionPad2d(1)
        self.pad2 = nn.ReflectionPad2d(1)
        if conv == "separable":
            self.conv1 = SeparableConv2d(trunk, hidden, 3, group=hidden_group)
            self.conv2 = SeparableConv2d(hidden, trunk, 3, group="trunk")
        else:
            self.conv1 = ElasticConv2d(trunk, hidden, 3, group=hidden_group, bias=bias)
            self.conv2 = ElasticConv2d(hidden, trunk, 3, group="trunk", bias=bias)
        self.norm1 = norm_layer(norm, hidden)
        self.norm2 = norm_layer(norm, trunk)
        self.act = nn.ReLU(True)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.act(self.norm1(self.conv1(self.pad1(x)))))
        return x + self.norm2(self.conv2(self.pad2(h)))


class ResnetGenerator(ElasticGenerator):
    """Elastic ResNet generator (see the module docstring for layout and width groups)."""

    arch_name = "resnet"

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_blocks: int = 9,
                 conv: str = "dense", norm: str = "instance", dropout: float = 0.0,
                 widths: Mapping[str, int] | str | None = None):
        super().__init__()
        if conv not in ("dense", "separable"):
            raise UserError(f"conv must be 'dense' or 'separable', got {conv!r}")
        if n_blocks < 3:
            raise UserError(f"n_blocks must be >= 3 (three hidden-width groups), got {n_blocks}")
        if isinstance(widths, str):
            widths = decode_config(widths)
        full = default_widths(ngf)
        if widths:
            unknown = set(widths) - set(GROUPS)
            if unknown:
                raise UserError(f"unknown width groups {sorted(unknown)}; expected {list(GROUPS)}")
            full.update({g: int(w) for g, w in widths.items()})
        self.arch = dict(in_channels=in_channels, out_channels=out_channels, ngf=ngf,
                         n_blocks=n_blocks, conv=conv, norm=norm, dropout=float(dropout),
                         widths=full)
        w = full
        bias = norm == "instance"  # conv bias iff InstanceNorm (BatchNorm has its own shift)
        self.stem = ConvNormAct(ElasticConv2d(in_channels, w["stem"], 7, group="stem", bias=bias),
                                w["stem"], norm, pad=3)
        self.down1 = ConvNormAct(ElasticConv2d(w["stem"], w["down1"], 3, group="down1", stride=2,
                                               padding=1, bias=bias), w["down1"], norm)
        self.down2 = ConvNormAct(ElasticConv2d(w["down1"], w["trunk"], 3, group="trunk", stride=2,
                                               padding=1, bias=bias), w["trunk"], norm)
        self.blocks = nn.ModuleList(
            ResidualBlock(w["trunk"], w[block_group(i, n_blocks)], block_group(i, n_blocks), conv,
                          norm, dropout, bias) for i in range(n_blocks))
        self.up1 = ConvNormAct(ElasticConvTranspose2d(w["trunk"], w["up1"], 3, group="up1", stride=2,
                                                      padding=1, output_padding=1, bias=bias),
                               w["up1"], norm)
        self.up2 = ConvNormAct(ElasticConvTranspose2d(w["up1"], w["up2"], 3, group="up2", stride=2,
                                                      padding=1, output_padding=1, bias=bias),
                               w["up2"], norm)
        self.head_pad = nn.ReflectionPad2d(3)
        self.head = ElasticConv2d(w["up2"], out_channels, 7)
        # Distillation taps (paper sec. 3.2; REFERENCE.md sec. 2): the input of the residual
        # blocks and the outputs of the blocks that end each third (3, 6, 9 for 9 blocks).
        self.tap_after = tuple(n_blocks * k // 3 - 1 for k in (1, 2, 3))

    @property
    def feature_widths(self) -> list[str]:
        """Width group of each distillation feature (all taps are in the residual trunk)."""
        return ["trunk"] * 4

    def forward(self, x: torch.Tensor, return_features: bool = False):
        """(B, in, H, W) in [-1, 1] -> (B, out, H, W) in [-1, 1]; H, W multiples of 4.

        With return_features=True also returns the 4 trunk features (B, trunk, H/4, W/4).
        """
        x = x.clamp(-1, 1)  # the published full and compressed generators clamp their input
        h = self.down2(self.down1(self.stem(x)))
        features = [h]
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i in self.tap_after:
                features.append(h)
        out = torch.tanh(self.head(self.head_pad(self.up2(self.up1(h)))))
        return (out, features) if return_features else out
