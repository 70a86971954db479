"""MUNIT (Huang et al. 2018): multimodal unpaired translation, one elastic class for every variant.

One `MunitGenerator` is one *translator* from domain A to domain B (docs/families.md sec. 6):
its content encoder reads A images; its style encoder, AdaIN decoder and MLP belong to B.

    full      MunitGenerator(ngf=64)                      NVlabs AdaINGen / gan-compression
                                                          AdaINGenerator: 15,026,187 params
    mobile    MunitGenerator(ngf=64, conv="separable")    separable res-block and up convs
    supernet  the mobile model trained with sampled widths (elastic.using_widths)
    compact   MunitGenerator(conv="separable", widths="16_16_16_24_56_16_40_40_32_24")

    g(x)              the reference forward: decode(encode(x), style_of(x))
    g(x, style)       translate x with a style code (B, style_dim, 1, 1), e.g. torch.randn
    g.encode(x)       content code (B, trunk, H/4, W/4)
    g.style_of(img)   style code of a B-domain image (B, style_dim, 1, 1)
    g.decode(c, s)    image from a content code and a style code

Layout (names mirror the published keys, so reading a file is a near-identity mapping):
    enc_style.model    conv 7x7 (style1) -> conv 4x4 s2 (style2) -> conv 4x4 s2 (style4)
                       -> 2 x conv 4x4 s2 (style4) -> global average pool -> conv 1x1 -> style_dim
                       (no norm, ReLU; always dense)
    enc_content.model  conv 7x7 (stem) + IN -> conv 4x4 s2 (down1) + IN -> conv 4x4 s2 (trunk)
                       + IN -> n_res residual blocks (IN), trunk -> hidden -> trunk
    dec.model          n_res residual blocks with AdaIN -> [nearest x2, conv 5x5 + LayerNorm] x 2
                       (up1, up2) -> conv 7x7 -> out, tanh
    mlp.model          linear style_dim -> mlp_dim -> mlp_dim -> AdaIN parameters: for each AdaIN
                       layer in decoder order, its means (bias) then its stds (weight)
Mobile / sub-networks use SeparableConv2d (depthwise, IN, pointwise) in the residual blocks
and the up convs; stems, down convs, the style encoder and the last conv stay dense.

Width groups and the published 10-number config string c0_..._c9 (sec. 6.3):
    style1/style2/style4 = c0, 2*c0, 4*c0   stem = c1        down1 = 2*c2   trunk = 4*c3
    cres1/cres2 = 4*c4, 4*c5 (hidden width of the first / second half of the content blocks)
    dres1/dres2 = 4*c6, 4*c7 (same for the decoder blocks: their first AdaIN width)
    up1 = 2*c8   up2 = c9
The MLP's last layer declares one output part per AdaIN mean / std block, each following its
layer's group, so a narrowed decoder receives exactly the leading rows of every block (what the
published supernet and export.py's MLP transfer do).
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
    Axes,
    ElasticConv2d,
    ElasticGenerator,
    ElasticLinear,
    ElasticModule,
    SeparableConv2d,
    Widths,
    as_parts,
    decode_positions,
    encode_positions,
    load_state_checked,
    norm_layer,
    tensor_dict,
)

GROUPS = ("style1", "style2", "style4", "stem", "down1", "trunk", "cres1", "cres2", "dres1",
          "dres2", "up1", "up2")
# config position -> the groups it sets, with channels = multiplier * number
POSITIONS: tuple[tuple[tuple[str, int], ...], ...] = (
    (("style1", 1), ("style2", 2), ("style4", 4)), (("stem", 1),), (("down1", 2),),
    (("trunk", 4),), (("cres1", 4),), (("cres2", 4),), (("dres1", 4),), (("dres2", 4),),
    (("up1", 2),), (("up2", 1),))

# Published search space (sec. 6.3): the same 7 choices at each of the 10 positions.
SPACES: dict[str, list[list[int]]] = {"channels-64": [[64, 56, 48, 40, 32, 24, 16]] * 10}

ACTIVATIONS = ("relu", "lrelu", "tanh", "none")
PADDINGS = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d, "zero": nn.ZeroPad2d}


def default_widths(ngf: int) -> Widths:
    return {g: m * ngf for pos in POSITIONS for g, m in pos}


def decode_config(config: str | Sequence[int]) -> Widths:
    return decode_positions(config, POSITIONS, "MUNIT")


def encode_config(widths: Mapping[str, int]) -> str:
    return encode_positions(widths, POSITIONS)


def _activation(kind: str) -> nn.Module:
    if kind == "relu":
        return nn.ReLU(inplace=False)
    if kind == "lrelu":
        return nn.LeakyReLU(0.2, inplace=False)
    if kind == "tanh":
        return nn.Tanh()
    return nn.Identity()


# ----------------------------------------------------------------------------------------------
# Layers


class LayerNorm(ElasticModule, nn.Module):
    """MUNIT's LayerNorm: per sample over (C, H, W), (x - mean) / (std + eps) with the unbiased
    std, then a per-channel gamma / beta (gamma initialised uniform(0, 1), as published)."""

    def __init__(self, channels: int, *, group: str | None, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.empty(channels).uniform_())
        self.beta = nn.Parameter(torch.zeros(channels))
        self.in_parts = as_parts(group, channels)

    def channel_axes(self) -> Axes:
        return {"gamma": [(0, self.in_parts)], "beta": [(0, self.in_parts)]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        mean = flat.mean(1).view(-1, 1, 1, 1)
        std = flat.std(1).view(-1, 1, 1, 1)
        x = (x - mean) / (std + self.eps)
        c = x.shape[1]
        return x * self.gamma[:c].view(1, c, 1, 1) + self.beta[:c].view(1, c, 1, 1)

    @staticmethod
    def mac_rule(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
        """(published, true) MACs: its mul plus one global mean per sample (see PUBLISHED
        COUNTING below); true: normalisation and scale per element."""
        return y.numel() + y.shape[0], 2 * y.numel()


class AdaIN(nn.Module):
    """Adaptive instance norm: instance statistics (biased variance, eps 1e-5) replaced by a
    per-sample mean and std produced by the MLP. Holds no weights."""

    def __init__(self, eps: float = 1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        return F.instance_norm(x, eps=self.eps) * std.view(b, c, 1, 1) + mean.view(b, c, 1, 1)

    @staticmethod
    def mac_rule(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
        """Published: a functional batch norm counts 0, plus one per sample (PUBLISHED COUNTING
        below); true: normalisation and scale per element."""
        return y.shape[0], 2 * y.numel()


class GlobalPool(nn.AdaptiveAvgPool2d):
    """The style encoder's global average pool (its own type, so that its MAC rule is
    MUNIT's and no rule is set for torch's AdaptiveAvgPool2d in other models)."""

    def __init__(self):
        super().__init__(1)

    @staticmethod
    def mac_rule(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
        """Published: numel of its output; true: one add per input element."""
        return y.numel(), x.numel()


class AdainParams:
    """The MLP output consumed front to back: each AdaIN layer takes its width of means, then
    of stds (the ElasticLinear emits exactly the active width of every block)."""

    def __init__(self, params: torch.Tensor):
        self.params, self.offset = params, 0

    def take(self, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = self.offset
        self.offset += 2 * channels
        if self.offset > self.params.shape[1]:
            raise RuntimeError(f"the MLP emits {self.params.shape[1]} AdaIN parameters, the "
                               f"decoder needs more (at offset {start} + 2 x {channels})")
        return (self.params[:, start:start + channels],
                self.params[:, start + channels:self.offset])

    def finish(self) -> None:
        if self.offset != self.params.shape[1]:
            raise RuntimeError(f"the decoder used {self.offset} of the MLP's "
                               f"{self.params.shape[1]} AdaIN parameters")


class ConvBlock(nn.Module):
    """pad -> conv (bias) -> norm -> activation: MUNIT's Conv2dBlock."""

    def __init__(self, conv: nn.Module, pad: int, pad_type: str, norm: nn.Module | None,
                 activ: str):
        super().__init__()
        self.pad = PADDINGS[pad_type](pad) if pad else nn.Identity()
        self.conv = conv
        self.norm = norm if norm is not None else nn.Identity()
        self.activation = _activation(activ)

    def forward(self, x: torch.Tensor, adain: AdainParams | None = None) -> torch.Tensor:
        x = self.conv(self.pad(x))
        if isinstance(self.norm, AdaIN):
            x = self.norm(x, *adain.take(x.shape[1]))
        else:
            x = self.norm(x)
        return self.activation(x)


def _conv(cin: int, cout: int, k: int, group: str | None, in_group: str | None, separable: bool,
          stride: int = 1) -> nn.Module:
    if separable:
        return SeparableConv2d(cin, cout, k, group=group, in_group=in_group)
    return ElasticConv2d(cin, cout, k, group=group, in_group=in_group, stride=stride)


class ResBlock(nn.Module):
    """x + [conv 3x3, norm, act, conv 3x3, norm](x); trunk -> hidden -> trunk."""

    def __init__(self, trunk: int, hidden: int, hidden_group: str, separable: bool, adain: bool,
                 activ: str, pad_type: str):
        super().__init__()

        def norm(c: int, g: str) -> nn.Module:
            return AdaIN() if adain else norm_layer("instance", c, g)

        self.model = nn.ModuleList([
            ConvBlock(_conv(trunk, hidden, 3, hidden_group, "trunk", separable), 1, pad_type,
                      norm(hidden, hidden_group), activ),
            ConvBlock(_conv(hidden, trunk, 3, "trunk", hidden_group, separable), 1, pad_type,
                      norm(trunk, "trunk"), "none")])

    def forward(self, x: torch.Tensor, adain: AdainParams | None = None) -> torch.Tensor:
        return x + self.model[1](self.model[0](x, adain), adain)


class ResBlocks(nn.Module):
    def __init__(self, blocks: Sequence[ResBlock]):
        super().__init__()
        self.model = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, adain: AdainParams | None = None) -> torch.Tensor:
        for block in self.model:
            x = block(x, adain)
        return x


class StyleEncoder(nn.Module):
    def __init__(self, in_channels: int, w: Mapping[str, int], style_dim: int, activ: str,
                 pad_type: str):
        super().__init__()
        specs = [("style1", None, 7, 1, 3, in_channels), ("style2", "style1", 4, 2, 1, w["style1"]),
                 ("style4", "style2", 4, 2, 1, w["style2"]), ("style4", "style4", 4, 2, 1, w["style4"]),
                 ("style4", "style4", 4, 2, 1, w["style4"])]
        layers: list[nn.Module] = [
            ConvBlock(ElasticConv2d(cin, w[g], k, group=g, in_group=ig, stride=s), p, pad_type,
                      None, activ) for g, ig, k, s, p, cin in specs]
        layers += [GlobalPool(),
                   ElasticConv2d(w["style4"], style_dim, 1, in_group="style4")]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ContentEncoder(nn.Module):
    def __init__(self, in_channels: int, w: Mapping[str, int], n_res: int, separable: bool,
                 activ: str, pad_type: str):
        super().__init__()

        def block(cin: int, g: str, ig: str | None, k: int, s: int, p: int) -> ConvBlock:
            return ConvBlock(ElasticConv2d(cin, w[g], k, group=g, in_group=ig, stride=s), p,
                             pad_type, norm_layer("instance", w[g], g), activ)

        self.model = nn.Sequential(
            block(in_channels, "stem", None, 7, 1, 3), block(w["stem"], "down1", "stem", 4, 2, 1),
            block(w["down1"], "trunk", "down1", 4, 2, 1),
            ResBlocks([ResBlock(w["trunk"], w[half_group("cres", i, n_res)],
                                half_group("cres", i, n_res), separable, False, activ, pad_type)
                       for i in range(n_res)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Decoder(nn.Module):
    def __init__(self, out_channels: int, w: Mapping[str, int], n_res: int, separable: bool,
                 activ: str, pad_type: str):
        super().__init__()
        self.model = nn.ModuleList([
            ResBlocks([ResBlock(w["trunk"], w[half_group("dres", i, n_res)],
                                half_group("dres", i, n_res), separable, True, activ, pad_type)
                       for i in range(n_res)]),
            nn.Upsample(scale_factor=2, mode="nearest"),
            ConvBlock(_conv(w["trunk"], w["up1"], 5, "up1", "trunk", separable), 2, pad_type,
                      LayerNorm(w["up1"], group="up1"), activ),
            nn.Upsample(scale_factor=2, mode="nearest"),
            ConvBlock(_conv(w["up1"], w["up2"], 5, "up2", "up1", separable), 2, pad_type,
                      LayerNorm(w["up2"], group="up2"), activ),
            ConvBlock(ElasticConv2d(w["up2"], out_channels, 7, in_group="up2"), 3, pad_type, None,
                      "tanh")])

    def adain_parts(self) -> list[tuple[str, int]]:
        """(group, width) of every AdaIN layer, in the order the MLP emits their parameters."""
        parts = []
        for block in self.model[0].model:
            for conv_block in block.model:
                conv = conv_block.conv
                layer = conv.pointwise if isinstance(conv, SeparableConv2d) else conv
                parts.append((layer.group, layer.out_channels))
        return parts

    def forward(self, content: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        adain = AdainParams(params)
        x = self.model[0](content, adain)
        adain.finish()
        for layer in self.model[1:]:
            x = layer(x)
        return x


class MLP(nn.Module):
    def __init__(self, style_dim: int, mlp_dim: int, out_parts: Sequence[tuple[str, int]],
                 activ: str):
        super().__init__()
        n_out = sum(w for _, w in out_parts)
        self.model = nn.Sequential(
            _Linear(MlpLinear(style_dim, mlp_dim), activ),
            _Linear(MlpLinear(mlp_dim, mlp_dim), activ),
            _Linear(MlpLinear(mlp_dim, n_out, out_parts=out_parts), "none"))

    def forward(self, style: torch.Tensor) -> torch.Tensor:
        return self.model(style.reshape(style.shape[0], -1))


class _Linear(nn.Module):
    """fc -> activation (MUNIT's LinearBlock without norm)."""

    def __init__(self, fc: ElasticLinear, activ: str):
        super().__init__()
        self.fc = fc
        self.activation = _activation(activ)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.fc(x))


def half_group(prefix: str, index: int, n_res: int) -> str:
    """Hidden-width group of residual block `index`: first or second half of the blocks."""
    return f"{prefix}{1 if index < n_res // 2 else 2}"


class MlpLinear(ElasticLinear):
    """A linear layer of the AdaIN MLP (its own type only so that its MACs can follow the
    published counting rule below)."""

    @staticmethod
    def mac_rule(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
        """Published: 0 (PUBLISHED COUNTING below); true: a dense layer."""
        return 0, y.numel() * x.shape[-1]


# PUBLISHED COUNTING. Published counting (sec. 1.1; torchprofile 0.0.1 on the reference modules): LayerNorm counts
# its mul (numel of the output), AdaIN (a functional batch norm) counts 0, the style encoder's
# global pool the numel of its output, and the MLP's linear layers 0 (a traced aten::linear has
# no handler there). The published totals are then still 10 higher for every width tried (full
# and released configs, with and without the style encoder): one per sample for each of the
# decoder's 10 normalisation layers (8 AdaIN, 2 LayerNorm; the LayerNorm's is its global mean,
# a one-element aten::mean per sample). Counting those reproduces sec. 1.1 exactly.
# True counts: the real multiply-accumulates (AdaIN: scale per element + normalisation).
# Each layer declares its rule as `mac_rule` (LayerNorm, AdaIN, GlobalPool, MlpLinear), which
# metrics/cost.py reads.


# ----------------------------------------------------------------------------------------------
# The generator


class MunitGenerator(ElasticGenerator):
    """Elastic MUNIT translator A -> B (see the module docstring)."""

    arch_name = "munit"
    config_positions, config_label = POSITIONS, "MUNIT"
    published_formats = ("NVlabs MUNIT gen_XXXXXXXX.pt ({'a': ..., 'b': ...} with keys like "
                         "'enc_content.model.0.conv.weight', 'mlp.model.2.fc.weight') and "
                         "gan-compression full / supernet / compressed MUNIT latest_net_G.pth")
    reference_size = (256, 256)
    size_multiple = 16  # the style encoder halves the size four times
    multimodal = True
    input_names = ("input", "style")
    scoring_seed = 233  # seed of the fixed styles sub-networks are scored with

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
                 style_dim: int = 8, mlp_dim: int = 256, n_downsample: int = 2, n_res: int = 4,
                 activ: str = "relu", pad_type: str = "reflect", conv: str = "dense",
                 widths: Mapping[str, int] | str | None = None):
        super().__init__()
        if conv not in ("dense", "separable"):
            raise UserError(f"conv must be 'dense' or 'separable', got {conv!r}")
        if n_downsample != 2:
            raise UserError(f"the MUNIT config string describes a content encoder with 2 "
                            f"down-sampling convs; n_downsample = {n_downsample} is not supported")
        if n_res < 2 or n_res % 2:
            raise UserError(f"n_res must be even and >= 2 (two hidden-width halves), got {n_res}")
        if activ not in ACTIVATIONS:
            raise UserError(f"activ must be one of {', '.join(ACTIVATIONS)}, got {activ!r}")
        if pad_type not in PADDINGS:
            raise UserError(f"pad_type must be one of {', '.join(PADDINGS)}, got {pad_type!r}")
        if isinstance(widths, str):
            widths = decode_config(widths)
        full = default_widths(ngf)
        if widths:
            unknown = set(widths) - set(GROUPS)
            if unknown:
                raise UserError(f"unknown width groups {sorted(unknown)}; expected {list(GROUPS)}")
            full.update({g: int(v) for g, v in widths.items()})
        self.arch = dict(in_channels=in_channels, out_channels=out_channels, ngf=ngf,
                         style_dim=style_dim, mlp_dim=mlp_dim, n_downsample=n_downsample,
                         n_res=n_res, activ=activ, pad_type=pad_type, conv=conv, widths=full)
        separable = conv == "separable"
        self.enc_style = StyleEncoder(out_channels, full, style_dim, activ, pad_type)
        self.enc_content = ContentEncoder(in_channels, full, n_res, separable, activ, pad_type)
        self.dec = Decoder(out_channels, full, n_res, separable, activ, pad_type)
        mean_std = [part for part in self.dec.adain_parts() for _ in range(2)]
        self.mlp = MLP(style_dim, mlp_dim, mean_std, activ)

    # -- translation ----------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Content code of an A-domain image: (B, trunk, H/4, W/4)."""
        return self.enc_content(x)

    def style_of(self, image: torch.Tensor) -> torch.Tensor:
        """Style code of a B-domain image: (B, style_dim, 1, 1)."""
        return self.enc_style(image)

    def decode(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """B-domain image from a content code and a style code (B, style_dim[, 1, 1])."""
        return self.dec(content, self.mlp(style))

    def random_style(self, batch: int = 1, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
        """Style codes drawn from the prior N(0, I): (batch, style_dim, 1, 1)."""
        device = next(self.parameters()).device
        style = torch.randn(batch, self.arch["style_dim"], 1, 1, generator=generator)
        return style.to(device)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None,
                return_features: bool = False):
        """Translate x (B, in, H, W) in [-1, 1] with `style` (B, style_dim, 1, 1), or with x's
        own style code when none is given (the published forward). H, W multiples of 16.

        With return_features=True also returns [content code] (the distillation tap)."""
        content = self.encode(x)
        if style is None:
            style = self.style_of(x)
        out = self.decode(content, style)
        return (out, [content]) if return_features else out

    # -- the family contract ----------------------------------------------------------------------
    def search_spaces(self) -> dict[str, list[list[int]]]:
        return {name: [list(c) for c in choices] for name, choices in SPACES.items()}

    @property
    def feature_widths(self) -> list[str]:
        return ["trunk"]

    def example_inputs(self, size: Sequence[int] | None = None, batch: int = 1,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        """(image in [-1, 1], style code ~ N(0, I)): the inputs of a translation."""
        (x,) = super().example_inputs(size, batch, generator)
        return x, self.random_style(batch, generator)

    def profile_inputs(self, size: Sequence[int] | None = None, batch: int = 1
                       ) -> tuple[torch.Tensor, ...]:
        """The published MAC count is forward(x): the style encoder included (sec. 1.1). When
        the domains differ in channels x has no style of the B domain to read: with a style."""
        if self.arch["in_channels"] != self.arch["out_channels"]:
            return self.example_inputs(size, batch)
        return self.example_inputs(size, batch)[:1]

    def scoring_inputs(self, source: torch.Tensor, index: int) -> tuple[torch.Tensor, ...]:
        """The source with random styles fixed by (scoring_seed, index): teacher and candidates
        translate each held-out image with the same style (the search's random-style protocol,
        scored by L1 to the teacher or FID)."""
        gen = torch.Generator().manual_seed(self.scoring_seed + index)
        return source, self.random_style(len(source), gen)

    def mac_variants(self, size: Sequence[int] | None = None) -> dict[str, tuple[torch.Tensor, ...]]:
        return {"without_style_encoder": self.example_inputs(size)}

    @classmethod
    def read_published(cls, obj: Any, name: str, **hints: Any
                       ) -> tuple[MunitGenerator, str] | None:
        return read_published_munit(obj, name, **hints)


# ----------------------------------------------------------------------------------------------
# Published checkpoints (sec. 6.2)

_SEPARABLE = {"conv.conv.0.": "conv.depthwise.", "conv.conv.2.": "conv.pointwise."}
_DROPPED = ("running_mean", "running_var", "num_batches_tracked")
_HINTS = ("direction", "activ", "pad_type")


def _is_munit(state: Mapping[str, Any] | None) -> bool:
    return state is not None and "enc_content.model.0.conv.weight" in state \
        and "mlp.model.0.fc.weight" in state


def read_published_munit(obj: Any, name: str, **hints: Any) -> tuple[MunitGenerator, str] | None:
    """NVlabs {'a','b'} files (a -> b: content of a, style / decoder / MLP of b; direction="BtoA"
    the other way) and gan-compression single generators (full, supernet, compressed)."""
    if isinstance(obj, Mapping) and {"a", "b"} <= set(obj) and all(
            _is_munit(tensor_dict(obj[k])) for k in ("a", "b")):
        direction = hints.get("direction", "AtoB")
        if direction not in ("AtoB", "BtoA"):
            raise UserError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}")
        src, dst = ("a", "b") if direction == "AtoB" else ("b", "a")
        a, b = tensor_dict(obj[src]), tensor_dict(obj[dst])
        state = {**{k: v for k, v in b.items() if not k.startswith("enc_content.")},
                 **{k: v for k, v in a.items() if k.startswith("enc_content.")}}
        fmt = f"NVlabs MUNIT generators ({src} -> {dst}: content of '{src}', style and decoder of '{dst}')"
    else:
        state = tensor_dict(obj)
        if not _is_munit(state):
            return None
        fmt = "gan-compression MUNIT"
    unknown = set(hints) - set(_HINTS)
    if unknown:
        raise UserError(f"{name}: unknown hint(s) {sorted(unknown)} for a MUNIT checkpoint; "
                        f"known: {', '.join(_HINTS)}")
    # NVlabs AdaIN layers carry unused running stats; PyTorch 0.3 files also IN stats.
    state = {k: v for k, v in state.items() if not k.endswith(_DROPPED)}
    separable = any(".conv.conv.0." in k for k in state)
    mapped = {}
    for key, tensor in state.items():
        for old, new in _SEPARABLE.items():
            key = key.replace(old, new)
        mapped[key] = tensor

    def out_of(prefix: str) -> int:
        key = f"{prefix}.conv.pointwise.weight" if separable and f"{prefix}.conv.pointwise.weight" \
            in mapped else f"{prefix}.conv.weight"
        if key not in mapped:
            raise UserError(f"{name}: a MUNIT generator needs tensor {key}")
        return int(mapped[key].shape[0])

    blocks = sorted({int(m.group(1)) for k in mapped
                     if (m := re.match(r"enc_content\.model\.3\.model\.(\d+)\.", k))})
    n_res = len(blocks)
    if n_res < 2 or n_res % 2 or "enc_content.model.4.conv.weight" in mapped:
        raise UserError(f"{name}: MUNIT content encoders with {n_res} residual blocks or more than "
                        f"2 down-sampling convs are not supported (published: 2 downs, 4 blocks)")
    widths = {"style1": out_of("enc_style.model.0"), "style2": out_of("enc_style.model.1"),
              "style4": out_of("enc_style.model.2"), "stem": out_of("enc_content.model.0"),
              "down1": out_of("enc_content.model.1"), "trunk": out_of("enc_content.model.2"),
              "up1": out_of("dec.model.2"), "up2": out_of("dec.model.4")}
    for prefix in ("enc_content.model.3", "dec.model.0"):
        for i in range(n_res):
            group = half_group("cres" if prefix.startswith("enc") else "dres", i, n_res)
            width = out_of(f"{prefix}.model.{i}.model.0")
            if widths.setdefault(group, width) != width:
                raise UserError(f"{name}: residual blocks of group {group} have different hidden "
                                f"widths ({widths[group]} and {width}); the MUNIT config string "
                                f"shares one width per half of the blocks")
    for i in (3, 4):
        if out_of(f"enc_style.model.{i}") != widths["style4"]:
            raise UserError(f"{name}: style encoder conv {i} is not as wide as conv 2")
    model = MunitGenerator(
        in_channels=int(mapped["enc_content.model.0.conv.weight"].shape[1]),
        out_channels=out_of("dec.model.5"), ngf=widths["stem"],
        style_dim=int(mapped["enc_style.model.6.weight"].shape[0]),
        mlp_dim=int(mapped["mlp.model.0.fc.weight"].shape[0]), n_downsample=2, n_res=n_res,
        activ=hints.get("activ", "relu"), pad_type=hints.get("pad_type", "reflect"),
        conv="separable" if separable else "dense", widths={g: widths[g] for g in GROUPS})
    kind = "mobile / supernet / compressed" if separable else "full"
    load_state_checked(model, mapped, name)
    return model, f"{fmt} ({kind})"

