"""The ResNet generator of pix2pix / CycleGAN, one elastic class for every variant.

    full      ResnetGenerator(ngf=64)                       dense convs, 11,378,179 params
    mobile    ResnetGenerator(ngf=64, conv="separable")     separable convs in the residual blocks
    supernet  the mobile (or full) model trained with sampled widths (elastic.using_widths)
    compact   ResnetGenerator(conv="separable", widths=decode_config("16_16_32_..."))
    fast      ResnetGenerator(conv="dense", norm="batch", pad="zero", widths=...): a student for
              CPU runtimes (issue 23): norms that fold into the convs at export (batch, scale),
              zero padding that is the conv's own (no pad op in the graph), dense convs where
              depthwise ones run slowly, widths multiples of `width_multiple` (space fast-16)

Student options (compress.student_norm / student_pad / student_conv; `student_config`):
    norm     instance (published) | batch | scale (learned per-channel scale + shift, no
             statistics) | none; the norm inside separable convs follows it (`separable_norm`;
             a model built with another norm keeps the published InstanceNorm there)
    pad      reflect (published: reflection pads before the 7x7 and 3x3 convs) | zero (the
             convs' own zero padding)
    conv     dense | separable | one kind per residual third, e.g.
             "res1=dense,res2=separable,res3=dense" (all three named; the stem, down and up
             convs are always dense, as published)

Layout (docs/reference.md sec. 2), shapes for a 1x3x256x256 input and ngf=64:
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

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from gancompress.errors import UserError
from gancompress.models.elastic import (
    ElasticConv2d,
    ElasticConvTranspose2d,
    ElasticGenerator,
    SeparableConv2d,
    Widths,
    decode_positions,
    encode_positions,
    NORMS,
    aligned_choices,
    load_state_checked,
    norm_layer,
    parse_config_numbers,
    tensor_dict,
)

GROUPS = ("stem", "down1", "trunk", "res1", "res2", "res3", "up1", "up2")
# channels = MULTIPLIER[group] * (number in the config string)
MULTIPLIER = {"stem": 1, "down1": 2, "trunk": 4, "res1": 4, "res2": 4, "res3": 4, "up1": 2, "up2": 1}
POSITIONS = tuple(((g, MULTIPLIER[g]),) for g in GROUPS)  # one group per config position
RES_GROUPS = ("res1", "res2", "res3")
CONVS = ("dense", "separable")
PADS = ("reflect", "zero")
WIDTH_MULTIPLE = 16  # runtime-friendly channel block (see ElasticGenerator.width_multiple)


def parse_conv(conv: str) -> dict[str, str]:
    """'dense' | 'separable' | 'res1=dense,res2=separable,res3=dense' -> conv kind per residual
    third (UserError for anything else)."""
    text = conv.strip() if isinstance(conv, str) else conv
    if text in CONVS:
        return dict.fromkeys(RES_GROUPS, text)
    usage = (f"conv must be 'dense', 'separable' or one kind per residual third such as "
             f"'res1=dense,res2=separable,res3=dense', got {conv!r}")
    if not isinstance(text, str):
        raise UserError(usage)
    kinds: dict[str, str] = {}
    for item in text.split(","):
        group, sep, kind = (part.strip() for part in item.partition("="))
        if not sep or group not in RES_GROUPS or kind not in CONVS or group in kinds:
            raise UserError(usage)
        kinds[group] = kind
    if set(kinds) != set(RES_GROUPS):
        raise UserError(f"{usage} (name all of {', '.join(RES_GROUPS)})")
    return kinds


def conv_name(kinds: Mapping[str, str]) -> str:
    """The canonical spelling of conv kinds per residual third (one word when all agree)."""
    values = {kinds[g] for g in RES_GROUPS}
    if len(values) == 1:
        return values.pop()
    return ",".join(f"{g}={kinds[g]}" for g in RES_GROUPS)


def default_widths(ngf: int) -> Widths:
    return {g: MULTIPLIER[g] * ngf for g in GROUPS}


def block_group(index: int, n_blocks: int) -> str:
    """Hidden-width group of residual block `index`: thirds of the trunk (blocks 1-3, 4-6, 7-9)."""
    return f"res{index * 3 // n_blocks + 1}"


def decode_config(config: str | Sequence[int]) -> Widths:
    """'c0_c1_..._c7' (or the older 6-number form) -> channel widths per group."""
    values = parse_config_numbers(config)
    if len(values) == 6:  # older form: one hidden width for all blocks; c4, c5 = the two convT
        c0, c1, c2, c3, c4, c5 = values
        values = [c0, c1, c2, c3, c3, c3, c4, c5]
    if len(values) != 8:
        raise UserError(f"a ResNet config string has 8 numbers (or 6 in the older form), got "
                        f"{len(values)}: {config!r}")
    return decode_positions(values, POSITIONS, "ResNet")


def encode_config(widths: Mapping[str, int]) -> str:
    """Channel widths per group -> the published 8-number config string."""
    return encode_positions(widths, POSITIONS)


# Published ResNet search spaces (docs/reference.md sec. 2): choices per config position, widest first.
SPACES: dict[str, list[list[int]]] = {
    "channels-48": [[48, 32]] * 2 + [[48, 40, 32]] * 4 + [[48, 32, 24, 16]] * 2,
    "channels-32": [[32, 24, 16]] * 8,
    "channels-64-cycleGAN": [[64, 48, 32, 24, 16]] * 8,
    "channels-64-pix2pix": [[64, 56, 48, 40, 32, 24, 16]] * 8,
}
# fast-16: the pix2pix space and 8 (dense students reach 1/20 of the teacher's MACs), every
# width a multiple of WIDTH_MULTIPLE (family.aligned_choices: stem / up2 16..64 channels,
# down1 / up1 16..128 in steps of 16, trunk and hidden widths 32..256 in steps of 32)
SPACES[f"fast-{WIDTH_MULTIPLE}"] = aligned_choices([[64, 56, 48, 40, 32, 24, 16, 8]] * 8,
                                                   POSITIONS, WIDTH_MULTIPLE)


class ConvNormAct(nn.Module):
    """[reflect-pad] conv or convT, norm, ReLU: one stage of the encoder / decoder."""

    def __init__(self, conv: nn.Module, channels: int, norm: str, pad: int = 0):
        super().__init__()
        self.pad = nn.ReflectionPad2d(pad) if pad else nn.Identity()  # zero: the conv's own
        self.conv = conv
        self.norm = norm_layer(norm, channels, conv.group)
        self.act = nn.ReLU(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(self.pad(x))))


class ResidualBlock(nn.Module):
    """x + [pad, conv, norm, ReLU, dropout, pad, conv, norm](x); width: trunk -> hidden -> trunk."""

    def __init__(self, trunk: int, hidden: int, hidden_group: str, conv: str, norm: str,
                 dropout: float, bias: bool, pad: str = "reflect",
                 separable_norm: str = "instance"):
        super().__init__()
        zero = int(pad == "zero")  # zero padding is the convs' own: no pad op in the graph
        self.pad1 = nn.Identity() if zero else nn.ReflectionPad2d(1)
        self.pad2 = nn.Identity() if zero else nn.ReflectionPad2d(1)
        if conv == "separable":
            self.conv1 = SeparableConv2d(trunk, hidden, 3, group=hidden_group, in_group="trunk",
                                         norm=separable_norm, padding=zero)
            self.conv2 = SeparableConv2d(hidden, trunk, 3, group="trunk", in_group=hidden_group,
                                         norm=separable_norm, padding=zero)
        else:
            self.conv1 = ElasticConv2d(trunk, hidden, 3, group=hidden_group, in_group="trunk",
                                       bias=bias, padding=zero)
            self.conv2 = ElasticConv2d(hidden, trunk, 3, group="trunk", in_group=hidden_group,
                                       bias=bias, padding=zero)
        self.norm1 = norm_layer(norm, hidden, hidden_group)
        self.norm2 = norm_layer(norm, trunk, "trunk")
        self.act = nn.ReLU(True)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.act(self.norm1(self.conv1(self.pad1(x)))))
        return x + self.norm2(self.conv2(self.pad2(h)))


class ResnetGenerator(ElasticGenerator):
    """Elastic ResNet generator (see the module docstring for layout and width groups)."""

    arch_name = "resnet"
    config_positions, config_label = POSITIONS, "ResNet"
    published_formats = ("pytorch-CycleGAN-and-pix2pix / gan-compression ResNet generators (keys "
                         "like 'model.1.weight', 'model.10.conv_block.1.weight')")
    reference_size = (256, 256)
    size_multiple = 4
    width_multiple = WIDTH_MULTIPLE
    student_options = {"norm": (NORMS, ("norm", "separable_norm")), "pad": (PADS, ("pad",))}

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_blocks: int = 9,
                 conv: str = "dense", norm: str = "instance", dropout: float = 0.0,
                 widths: Mapping[str, int] | str | None = None, pad: str = "reflect",
                 separable_norm: str = "instance"):
        super().__init__()
        kinds = parse_conv(conv)
        for what, value, allowed in (("norm", norm, NORMS), ("pad", pad, PADS),
                                     ("separable_norm", separable_norm, NORMS)):
            if value not in allowed:
                raise UserError(f"{what} must be one of {', '.join(map(repr, allowed))}, got "
                                f"{value!r}")
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
                         n_blocks=n_blocks, conv=conv_name(kinds), norm=norm,
                         dropout=float(dropout), widths=full, pad=pad,
                         separable_norm=separable_norm)
        w = full
        # conv bias iff InstanceNorm, as published (BatchNorm and scale have their own shift;
        # "none" keeps the published rule: no bias)
        bias = norm == "instance"
        zero = pad == "zero"
        self.stem = ConvNormAct(ElasticConv2d(in_channels, w["stem"], 7, group="stem", bias=bias,
                                              padding=3 if zero else 0),
                                w["stem"], norm, pad=0 if zero else 3)
        self.down1 = ConvNormAct(ElasticConv2d(w["stem"], w["down1"], 3, group="down1",
                                               in_group="stem", stride=2, padding=1, bias=bias),
                                 w["down1"], norm)
        self.down2 = ConvNormAct(ElasticConv2d(w["down1"], w["trunk"], 3, group="trunk",
                                               in_group="down1", stride=2, padding=1, bias=bias),
                                 w["trunk"], norm)
        self.blocks = nn.ModuleList(
            ResidualBlock(w["trunk"], w[block_group(i, n_blocks)], block_group(i, n_blocks),
                          kinds[block_group(i, n_blocks)], norm, dropout, bias, pad,
                          separable_norm) for i in range(n_blocks))
        self.up1 = ConvNormAct(ElasticConvTranspose2d(w["trunk"], w["up1"], 3, group="up1",
                                                      in_group="trunk", stride=2, padding=1,
                                                      output_padding=1, bias=bias),
                               w["up1"], norm)
        self.up2 = ConvNormAct(ElasticConvTranspose2d(w["up1"], w["up2"], 3, group="up2",
                                                      in_group="up1", stride=2, padding=1,
                                                      output_padding=1, bias=bias),
                               w["up2"], norm)
        self.head_pad = nn.Identity() if zero else nn.ReflectionPad2d(3)
        self.head = ElasticConv2d(w["up2"], out_channels, 7, in_group="up2",
                                  padding=3 if zero else 0)
        # Distillation taps (paper sec. 3.2; docs/reference.md sec. 2): the input of the residual
        # blocks and the outputs of the blocks that end each third (3, 6, 9 for 9 blocks).
        self.tap_after = tuple(n_blocks * k // 3 - 1 for k in (1, 2, 3))

    # -- the family contract --------------------------------------------------------------------
    def widths_from_config(self, config: str | Sequence[int]) -> Widths:
        return decode_config(config)  # the default codec, after the older 6-number form

    def search_spaces(self) -> dict[str, list[list[int]]]:
        return {name: [list(c) for c in choices] for name, choices in SPACES.items()}

    def default_space(self) -> str:
        return "channels-64-pix2pix"  # the published pix2pix space (docs/reference.md sec. 2)

    @property
    def feature_widths(self) -> list[str]:
        """Width group of each distillation feature (all taps are in the residual trunk)."""
        return ["trunk"] * 4

    @classmethod
    def read_published(cls, obj: Any, name: str, **hints: Any
                       ) -> tuple[ResnetGenerator, str] | None:
        state = tensor_dict(obj)
        if state is None or not any(k.startswith("model.") for k in state):
            return None
        return read_published_resnet(state, name)

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


# ----------------------------------------------------------------------------------------------
# Published checkpoints (docs/reference.md sec. 7)

_BLOCK = re.compile(r"^model\.(\d+)\.conv_block\.(\d+)\.(.+)$")
_LAYER = re.compile(r"^model\.(\d+)\.(.+)$")


def read_published_resnet(state: dict[str, torch.Tensor], name: str) -> tuple[ResnetGenerator, str] | None:
    """Map pix2pix/CycleGAN/gan-compression ResNet keys onto ResnetGenerator's named modules."""
    blocks = sorted({int(m.group(1)) for k in state if (m := _BLOCK.match(k))})
    if not blocks or blocks != list(range(10, 10 + len(blocks))) or "model.1.weight" not in state:
        return None  # not a ResNet generator's keys: another family's reader may know them
    n_blocks = len(blocks)
    separable = "model.10.conv_block.1.conv.0.weight" in state
    batch = "model.2.running_mean" in state and "model.2.weight" in state
    if not batch:  # stray InstanceNorm running stats written by old PyTorch versions
        state = {k: v for k, v in state.items()
                 if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    if separable:
        conv2, fmt = 6, "gan-compression mobile/compressed ResNet"
    elif "model.10.conv_block.5.weight" in state:
        conv2, fmt = 5, "pytorch-CycleGAN-and-pix2pix ResNet (no dropout)"
    else:
        conv2 = 6
        fmt = ("pytorch-CycleGAN-and-pix2pix ResNet (dropout)" if batch
               else "gan-compression full ResNet")
    after = 10 + n_blocks  # up1 conv, up1 norm, relu, up2 conv, up2 norm, relu, pad, head conv
    layer_names = {1: "stem.conv", 2: "stem.norm", 4: "down1.conv", 5: "down1.norm",
                   7: "down2.conv", 8: "down2.norm", after: "up1.conv", after + 1: "up1.norm",
                   after + 3: "up2.conv", after + 4: "up2.norm", after + 7: "head"}
    sub_names = {1: "conv1", 2: "norm1", conv2: "conv2", conv2 + 1: "norm2"}
    sep_names = {"conv.0.": "depthwise.", "conv.1.": "norm.", "conv.2.": "pointwise."}
    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if m := _BLOCK.match(key):
            block, idx, rest = int(m.group(1)) - 10, int(m.group(2)), m.group(3)
            if idx not in sub_names:
                raise UserError(f"{name}: unexpected tensor {key} in a residual block")
            if separable and idx in (1, conv2):
                for old, new in sep_names.items():
                    if rest.startswith(old):
                        rest = new + rest[len(old):]
                        break
            mapped[f"blocks.{block}.{sub_names[idx]}.{rest}"] = tensor
        elif (m := _LAYER.match(key)) and int(m.group(1)) in layer_names:
            mapped[f"{layer_names[int(m.group(1))]}.{m.group(2)}"] = tensor
        else:
            raise UserError(f"{name}: unexpected tensor {key} for a {n_blocks}-block ResNet generator")

    hidden_key = "conv1.pointwise.weight" if separable else "conv1.weight"
    widths = {"stem": mapped["stem.conv.weight"].shape[0],
              "down1": mapped["down1.conv.weight"].shape[0],
              "trunk": mapped["down2.conv.weight"].shape[0],
              "up1": mapped["up1.conv.weight"].shape[1],
              "up2": mapped["up2.conv.weight"].shape[1]}
    for i in range(n_blocks):
        group, width = block_group(i, n_blocks), mapped[f"blocks.{i}.{hidden_key}"].shape[0]
        if widths.setdefault(group, width) != width:
            raise UserError(f"{name}: residual blocks of group {group} have different hidden widths "
                            f"({widths[group]} and {width}); gancompress shares one width per third "
                            f"of the blocks, as the published config strings do")
    widths = {g: int(widths[g]) for g in GROUPS}
    dropout = 0.5 if conv2 == 6 and batch and not separable else 0.0
    model = ResnetGenerator(in_channels=int(mapped["stem.conv.weight"].shape[1]),
                            out_channels=int(mapped["head.weight"].shape[0]), ngf=widths["stem"],
                            n_blocks=n_blocks, conv="separable" if separable else "dense",
                            norm="batch" if batch else "instance", dropout=dropout, widths=widths)
    load_state_checked(model, mapped, name)
    return model, fmt
