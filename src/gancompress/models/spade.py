"""The GauGAN (SPADE) generator, one elastic class for every variant.

    full      SpadeGenerator(ngf=64)                      93,048,003 params (Cityscapes, 36 ch)
    mobile    SpadeGenerator(ngf=64, conv="separable")    separable SPADE gamma/beta convs
    supernet  the mobile model trained with sampled widths (elastic.using_widths)
    compact   SpadeGenerator(conv="separable", widths="32_32_48_32_32_32_32_24", ngf=48)

Layout (docs/reference.md sec. 4, docs/families.md sec. 3), input (B, in_channels, H, W) =
one-hot labels + instance-edge channel, n = 5 ('normal') or 6 ('more') upsamplings:
    fc          conv 3x3 on the label map resized (nearest) to H/2^n x W/2^n -> 16*ngf
    head_0      SPADE residual block 16ngf -> 16ngf, then x2 (nearest)
    G_middle_0  16ngf -> 16ngf, then x2 only for 'more'
    G_middle_1  16ngf -> 16ngf
    up_0..up_3  x2 then a block: 16ngf -> 8ngf -> 4ngf -> 2ngf -> ngf (learned 1x1 shortcut)
    conv_img    LeakyReLU 0.2, conv 3x3 ngf -> 3, tanh
SPADE block: shortcut + conv_1(lrelu(SPADE(conv_0(lrelu(SPADE(x)))))), middle width
min(fin, fout). SPADE(x, seg) = BN_noaffine(x) * (1 + gamma(h)) + beta(h), h = ReLU(conv3x3(seg
resized to x)); hidden width 128 in NVlabs SPADE, 2*ngf in gan-compression (`spade_hidden`).
Spectral norm wraps every block's conv_0 / conv_1 / conv_s while training the full model
(`spectral=True`, keys weight_orig/_u/_v as NVlabs writes them); `prepare_deploy()` folds it
with the stored u, v (the eval-mode weight), which is how students and exports see a teacher.

Width groups and the published 8-number config string c0_..._c7:
    trunk=16*c0 (fc and the output of head_0 / G_middle_*: they are added together),
    head_0 / G_middle_0 / G_middle_1 = 16*c1..16*c3 (middle width of those blocks),
    up_0..up_3 = 8*c4, 4*c5, 2*c6, c7 (block outputs), and <block>_hidden = 2*c of that block
    (the SPADE hidden width of all its modulations).
Module names follow the reference code, so published files map almost key for key.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancompress.errors import UserError
from gancompress.labelmaps import random_label_map, read_label_input, semantic_input
from gancompress.models.elastic import (
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticGenerator,
    SeparableConv2d,
    Widths,
    decode_positions,
    encode_positions,
    load_state_checked,
    tensor_dict,
)

UPSAMPLING = {"normal": 5, "more": 6}  # number of x2 upsamplings ('most' = 7 is not supported)
BLOCKS = ("head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3")
CHANNEL_GROUPS = ("trunk",) + BLOCKS  # one per config position
MULTIPLIER = {"trunk": 16, "head_0": 16, "G_middle_0": 16, "G_middle_1": 16, "up_0": 8,
              "up_1": 4, "up_2": 2, "up_3": 1}
HIDDEN_MULTIPLIER = 2
TAPS = ("head_0", "G_middle_1", "up_1")  # distilled features: outputs of these blocks


def hidden_group(block: str) -> str:
    return f"{block}_hidden"


GROUPS = CHANNEL_GROUPS + tuple(hidden_group(b) for b in BLOCKS)
# Config position of each channel group; a block's hidden width is 2x its number (NVlabs models
# use 128 for every ngf, so other hidden widths have no config-string form).
POSITIONS = tuple(((g, MULTIPLIER[g]),) + (((hidden_group(g), HIDDEN_MULTIPLIER),)
                                           if g in BLOCKS else ()) for g in CHANNEL_GROUPS)


def default_widths(ngf: int, spade_hidden: int = 0) -> Widths:
    widths = {g: MULTIPLIER[g] * ngf for g in CHANNEL_GROUPS}
    widths.update({hidden_group(b): spade_hidden or HIDDEN_MULTIPLIER * ngf for b in BLOCKS})
    return widths


def decode_config(config: str | Sequence[int]) -> Widths:
    """'c0_..._c7' -> channel widths per group (hidden widths 2*c of each block)."""
    return decode_positions(config, POSITIONS, "SPADE")


def encode_config(widths: Mapping[str, int]) -> str:
    """Channel widths per group -> the published 8-number config string."""
    for b in BLOCKS:  # the published quirk, said in SPADE's words before the generic check
        c = widths.get(b, 0) // MULTIPLIER[b]
        hidden = widths.get(hidden_group(b), HIDDEN_MULTIPLIER * c)
        if b in widths and widths[b] % MULTIPLIER[b] == 0 and hidden != HIDDEN_MULTIPLIER * c:
            raise UserError(f"SPADE hidden width {hidden} of block {b} is not "
                            f"{HIDDEN_MULTIPLIER}x its config number {c} (NVlabs models use 128 "
                            f"for every ngf), so these widths have no config-string form")
    return encode_positions(widths, POSITIONS)


# Published SPADE search spaces (docs/reference.md sec. 4): choices per config position, widest first.
SPACES: dict[str, list[list[int]]] = {
    "channels-48": [[48, 40, 32]] * 5 + [[48, 40, 32, 24]] * 3,
    "channels-64": [[64, 48, 40, 32]] * 5 + [[64, 48, 40, 32, 24]] * 3,
}


class Modulation(nn.Module):
    """normalized * (1 + gamma) + beta: a module so the MAC count can see its multiply."""

    def forward(self, normalized: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor
                ) -> torch.Tensor:
        return normalized * (1 + gamma) + beta

    @staticmethod
    def mac_rule(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
        # the published count (torchprofile) counts the aten::mul as numel(output); adds count 0
        return y.numel(), y.numel()


class SPADE(nn.Module):
    """Spatially-adaptive denormalisation of `channels` features (group `group`)."""

    def __init__(self, channels: int, group: str, semantic_nc: int, hidden: int, hid_group: str,
                 conv: str):
        super().__init__()
        self.param_free_norm = ElasticBatchNorm2d(channels, group=group, affine=False)
        self.mlp_shared = nn.Sequential(
            ElasticConv2d(semantic_nc, hidden, 3, padding=1, group=hid_group), nn.ReLU())
        if conv == "separable":
            self.mlp_gamma = SeparableConv2d(hidden, channels, 3, group=group, in_group=hid_group,
                                             padding=1)
            self.mlp_beta = SeparableConv2d(hidden, channels, 3, group=group, in_group=hid_group,
                                            padding=1)
        else:
            self.mlp_gamma = ElasticConv2d(hidden, channels, 3, padding=1, group=group,
                                           in_group=hid_group)
            self.mlp_beta = ElasticConv2d(hidden, channels, 3, padding=1, group=group,
                                          in_group=hid_group)
        self.modulate = Modulation()

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        normalized = self.param_free_norm(x)
        if seg.shape[-2:] != x.shape[-2:]:
            seg = F.interpolate(seg, size=x.shape[-2:], mode="nearest")
        h = self.mlp_shared(seg)
        return self.modulate(normalized, self.mlp_gamma(h), self.mlp_beta(h))


class SpadeBlock(nn.Module):
    """SPADE residual block: fin (group in_g) -> middle (mid_g) -> fout (out_g)."""

    def __init__(self, fin: int, fout: int, fmiddle: int, in_g: str, mid_g: str, out_g: str,
                 shortcut: bool, semantic_nc: int, hidden: int, hid_g: str, conv: str,
                 spectral: bool):
        super().__init__()
        self.learned_shortcut = shortcut
        self.conv_0 = ElasticConv2d(fin, fmiddle, 3, padding=1, group=mid_g, in_group=in_g)
        self.conv_1 = ElasticConv2d(fmiddle, fout, 3, padding=1, group=out_g, in_group=mid_g)
        if shortcut:
            self.conv_s = ElasticConv2d(fin, fout, 1, bias=False, group=out_g, in_group=in_g)
        if spectral:
            for name in ("conv_0", "conv_1") + (("conv_s",) if shortcut else ()):
                nn.utils.spectral_norm(getattr(self, name))
        self.norm_0 = SPADE(fin, in_g, semantic_nc, hidden, hid_g, conv)
        self.norm_1 = SPADE(fmiddle, mid_g, semantic_nc, hidden, hid_g, conv)
        if shortcut:
            self.norm_s = SPADE(fin, in_g, semantic_nc, hidden, hid_g, conv)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return x_s + dx


class SpadeGenerator(ElasticGenerator):
    """Elastic SPADE generator (see the module docstring for layout and width groups)."""

    arch_name = "spade"
    config_positions, config_label = POSITIONS, "SPADE"
    config_from_widths = staticmethod(encode_config)  # the default codec, with SPADE's message
    published_formats = ("NVlabs SPADE / gan-compression GauGAN generators (keys like 'fc.weight', "
                         "'head_0.conv_0.weight_orig' or '.weight', "
                         "'head_0.norm_0.mlp_shared.0.weight')")
    reference_size = (256, 512)
    image_input = False
    input_description = ("one-hot label map (label_nc [+ dontcare] channels of 0/1) followed by "
                         "the instance-edge channel (0/1) when the model has one")

    def __init__(self, in_channels: int = 36, out_channels: int = 3, ngf: int = 64,
                 conv: str = "dense", upsampling: str = "more", spade_hidden: int = 0,
                 spectral: bool = False, instance_edge: bool = True, dontcare: bool = False,
                 widths: Mapping[str, int] | str | None = None):
        """in_channels = label channels (label_nc + dontcare) + 1 instance-edge channel
        (`instance_edge`); `dontcare`: the last label channel is the dataset's dontcare id 255
        (contain_dontcare_label; a record of how inputs are read, the network is the same);
        spade_hidden 0 = 2*ngf (gan-compression), NVlabs uses 128."""
        super().__init__()
        if conv not in ("dense", "separable"):
            raise UserError(f"conv must be 'dense' or 'separable', got {conv!r}")
        if upsampling not in UPSAMPLING:
            raise UserError(f"upsampling must be one of {', '.join(UPSAMPLING)} (the reference "
                            f"num_upsampling_layers), got {upsampling!r}")
        if in_channels < 1 + int(instance_edge) + int(dontcare):
            raise UserError(f"in_channels {in_channels} leaves no label channel")
        if isinstance(widths, str):
            widths = decode_config(widths)
        full = default_widths(ngf, spade_hidden)
        if widths:
            unknown = set(widths) - set(GROUPS)
            if unknown:
                raise UserError(f"unknown width groups {sorted(unknown)}; expected {list(GROUPS)}")
            full.update({g: int(w) for g, w in widths.items()})
        self.arch = dict(in_channels=in_channels, out_channels=out_channels, ngf=ngf, conv=conv,
                         upsampling=upsampling, spade_hidden=int(spade_hidden),
                         spectral=bool(spectral), instance_edge=bool(instance_edge),
                         dontcare=bool(dontcare), widths=full)
        w, nc = full, in_channels
        self.fc = ElasticConv2d(nc, w["trunk"], 3, padding=1, group="trunk")
        previous = "trunk"
        for block in BLOCKS:
            hidden, hid_g = w[hidden_group(block)], hidden_group(block)
            if block.startswith("up_"):  # channel change: middle = output, learned shortcut
                args = (w[previous], w[block], w[block], previous, block, block, True)
                previous = block
            else:  # trunk -> middle -> trunk, identity shortcut
                args = (w["trunk"], w["trunk"], w[block], "trunk", block, "trunk", False)
            setattr(self, block, SpadeBlock(*args, nc, hidden, hid_g, conv, spectral))
        self.conv_img = ElasticConv2d(w["up_3"], out_channels, 3, padding=1, in_group="up_3")

    # -- the family contract --------------------------------------------------------------------
    @property
    def size_multiple(self) -> int:  # type: ignore[override]
        return 2 ** UPSAMPLING[self.arch["upsampling"]]

    @property
    def label_channels(self) -> int:
        """One-hot channels (label_nc + dontcare) in front of the instance-edge channel."""
        return self.in_channels - int(self.arch["instance_edge"])

    def input_picture(self, x: torch.Tensor) -> torch.Tensor:
        """The label map of a one-hot (+ edge) input, a colour per id."""
        from gancompress.imaging import colour_ids
        return torch.stack([colour_ids(ids) for ids in x[:, :self.label_channels].argmax(1)])

    def search_spaces(self) -> dict[str, list[list[int]]]:
        return {name: [list(c) for c in choices] for name, choices in SPACES.items()}

    @property
    def feature_widths(self) -> list[str]:
        return ["trunk", "trunk", "up_1"]

    def example_inputs(self, size: Sequence[int] | None = None, batch: int = 1,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        """A blocky random label map as one-hot (+ instance edges): (B, in_channels, H, W)."""
        h, w = self.check_size(size or self.reference_size)
        label, instance = random_label_map(batch, self.label_channels, (h, w),
                                           generator=generator)
        x = semantic_input(label, instance, self.label_channels,
                           no_instance=not self.arch["instance_edge"])
        return (x.to(next(self.parameters()).device),)

    def label_map_args(self) -> dict[str, Any]:
        dontcare = bool(self.arch.get("dontcare", False))
        return {"label_nc": self.label_channels - int(dontcare), "contain_dontcare": dontcare,
                "no_instance": not self.arch["instance_edge"]}

    @classmethod
    def read_input(cls, arch: Mapping[str, Any], path: Any, size: Sequence[int] | None,
                   instances: Any = None) -> torch.Tensor:
        """A label PNG (class ids, or Cityscapes colours) and its instance map (from
        `instances`, else next to it) -> one-hot (+ edges), resized NEAREST to `size`."""
        edges, dontcare = bool(arch.get("instance_edge", True)), bool(arch.get("dontcare", False))
        return read_label_input(path, int(arch["in_channels"]) - int(edges) - int(dontcare), edges,
                                None if size is None else (int(size[0]), int(size[-1])),
                                instances, contain_dontcare=dontcare)

    @classmethod
    def check_input_files(cls, arch: Mapping[str, Any], paths: Sequence[Any],
                          size: Sequence[int] | None, instances: Any = None) -> None:
        bad = []
        for path in paths:
            try:
                cls.read_input(arch, path, size, instances)
            except UserError as err:
                bad.append(str(err))
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise UserError(f"{len(bad)} of {len(paths)} label map(s) cannot be used, so nothing "
                            f"was written: {bad[0]}{more}")

    def student_arch(self, conv: str | None = None, widths: Mapping[str, int] | None = None
                     ) -> dict[str, Any]:
        """A student is trained without spectral norm (gan-compression's distill/supernet
        stages) and with the gan-compression hidden width 2*c."""
        arch = super().student_arch(conv, widths)
        arch["spectral"] = False
        if widths is None:
            arch["spade_hidden"] = 0
            arch["widths"] = default_widths(arch["ngf"])
        return arch

    def prepare_deploy(self) -> SpadeGenerator:
        """The model with spectral norm folded (W = W_orig / sigma, stored u, v): same outputs in
        eval mode; self when it has none."""
        if not self.arch["spectral"]:
            return self
        plain = type(self)(**{**self.arch, "spectral": False})
        plain.load_state_dict(fold_spectral_norm(self.state_dict()))
        return plain.to(next(self.parameters()).device).train(self.training)

    # -- forward --------------------------------------------------------------------------------
    def forward(self, seg: torch.Tensor, return_features: bool = False):
        """(B, in_channels, H, W) one-hot + edges -> (B, out, H, W) in [-1, 1]; H and W multiples of
        2^5 ('normal') or 2^6 ('more'). The latent grid is H/2^n x W/2^n (follows the input).

        With return_features=True also returns the outputs of head_0, G_middle_1 and up_1."""
        n = UPSAMPLING[self.arch["upsampling"]]
        h, w = int(seg.shape[-2]), int(seg.shape[-1])
        if h % (1 << n) or w % (1 << n) or h < (1 << n) or w < (1 << n):
            raise UserError(f"a SPADE generator with {self.arch['upsampling']!r} upsampling takes "
                            f"label maps whose height and width are multiples of {1 << n}, got "
                            f"{h}x{w}; resize the label map (nearest)")
        features = []
        x = self.fc(F.interpolate(seg, size=(h >> n, w >> n), mode="nearest"))
        x = self.head_0(x, seg)
        features.append(x)
        x = self.G_middle_0(_up(x), seg)
        if self.arch["upsampling"] == "more":
            x = _up(x)
        x = self.G_middle_1(x, seg)
        features.append(x)
        for block in ("up_0", "up_1", "up_2", "up_3"):
            x = getattr(self, block)(_up(x), seg)
            if block == "up_1":
                features.append(x)
        out = torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))
        return (out, features) if return_features else out

    # -- published checkpoints ------------------------------------------------------------------
    @classmethod
    def read_published(cls, obj: Any, name: str, **hints: Any
                       ) -> tuple[SpadeGenerator, str] | None:
        state = tensor_dict(obj)
        if state is None or "fc.weight" not in state or not any(
                k.startswith("head_0.norm_0.mlp_shared.") for k in state):
            return None
        return read_published_spade(state, name, **hints)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


# ----------------------------------------------------------------------------------------------
# Spectral norm and published checkpoints (docs/families.md sec. 3)

def fold_spectral_norm(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """weight_orig/_u/_v -> weight = W_orig / (u . (W_orig.reshape(out, -1) @ v)): the weight that
    torch's spectral norm (and NVlabs SPADE at test time) uses in eval mode."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key.endswith(("weight_u", "weight_v")):
            continue
        if key.endswith("weight_orig"):
            base = key[: -len("_orig")]
            u, v = state.get(base + "_u"), state.get(base + "_v")
            if u is None or v is None:
                raise UserError(f"spectral-norm tensor {key} comes without {base}_u / {base}_v")
            w = tensor.detach().float()
            sigma = torch.dot(u.float(), torch.mv(w.reshape(w.shape[0], -1), v.float()))
            out[base] = (w / sigma).to(tensor.dtype)
        else:
            out[key] = tensor
    return out


_SEPARABLE = re.compile(r"\.(mlp_gamma|mlp_beta)\.conv\.(0|2)\.")
_BN_BUFFER = re.compile(r"\.param_free_norm\.(running_mean|running_var)$")


def read_published_spade(state: dict[str, torch.Tensor], name: str, **hints: Any
                         ) -> tuple[SpadeGenerator, str]:
    """NVlabs SPADE and gan-compression full / mobile / supernet / compressed GauGAN generators.

    Hints (named as the reference options; not stored in these files):
        num_upsampling_layers   'normal' or 'more' (required: the latent grid is not in the file)
    """
    nvlabs = any(k.endswith("weight_orig") for k in state)
    if any(k.startswith("up_4.") for k in state):
        raise UserError(f"{name}: a SPADE generator with num_upsampling_layers='most' (up_4); "
                        f"gancompress supports 'normal' and 'more'")
    upsampling = hints.get("num_upsampling_layers", hints.get("upsampling"))
    if upsampling is None:
        raise UserError(
            f"{name} is a SPADE generator, and its number of upsampling layers is not stored in "
            f"the file: say it, e.g. load_generator(path, num_upsampling_layers=\"more\") "
            f"(Cityscapes) or \"normal\" (COCO-Stuff, ADE20K); on the command line "
            f"`gancompress convert {name} --hint num_upsampling_layers=more --out g.pth` once")
    if upsampling not in UPSAMPLING:
        raise UserError(f"num_upsampling_layers={upsampling!r}: use 'normal' or 'more'")
    state = {k: v.contiguous() for k, v in state.items()}  # exported files hold strided views
    if nvlabs:
        state = fold_spectral_norm(state)
    separable = any(_SEPARABLE.search(k) for k in state)
    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        key = _SEPARABLE.sub(lambda m: f".{m.group(1)}.{'depthwise' if m.group(2) == '0' else 'pointwise'}.",
                             key)
        mapped[key] = tensor

    def out_width(key: str) -> int:
        if key not in mapped:
            raise UserError(f"{name}: tensor {key} missing from a SPADE generator file")
        return int(mapped[key].shape[0])

    gamma = "mlp_gamma.pointwise.weight" if separable else "mlp_gamma.weight"
    widths = {"trunk": out_width("fc.weight")}
    for block in BLOCKS:
        widths[block] = out_width(f"{block}.conv_0.weight")
        widths[hidden_group(block)] = out_width(f"{block}.norm_0.mlp_shared.0.weight")
    # ngf: the param-free BN of head_0 keeps the supernet length (16*ngf) in exported files
    ngf_bn = int(mapped["head_0.norm_0.param_free_norm.running_mean"].shape[0]) // 16
    ngf = max(ngf_bn, widths["trunk"] // 16)
    # slice full-length BN statistics to the channels the layer normalises (eval: identical)
    for key in list(mapped):
        if _BN_BUFFER.search(key):
            prefix = key[: key.index(".param_free_norm.")]
            channels = int(mapped[f"{prefix}.{gamma}"].shape[0])
            mapped[key] = mapped[key][:channels].clone()
    # NVlabs: one hidden width (128) for every block; gan-compression: 2*c of each block
    spade_hidden = max(widths[hidden_group(b)] for b in BLOCKS) if nvlabs else 0
    if widths == default_widths(ngf, spade_hidden):
        widths_arg: Any = None
    else:
        widths_arg = widths
    model = SpadeGenerator(in_channels=int(mapped["fc.weight"].shape[1]),
                           out_channels=int(mapped["conv_img.weight"].shape[0]), ngf=ngf,
                           conv="separable" if separable else "dense", upsampling=upsampling,
                           spade_hidden=spade_hidden, widths=widths_arg)
    load_state_checked(model, mapped, name)
    compressed = widths_arg is not None
    if nvlabs:
        fmt = "NVlabs SPADE (spectral norm folded with the stored u, v)"
    elif compressed:
        fmt = f"gan-compression compressed GauGAN ({encode_config(widths)})" if _encodable(widths) \
            else "gan-compression compressed GauGAN"
    elif separable:
        fmt = "gan-compression mobile / supernet GauGAN"
    else:
        fmt = "gan-compression full GauGAN"
    return model, fmt


def _encodable(widths: Mapping[str, int]) -> bool:
    try:
        encode_config(widths)
        return True
    except UserError:
        return False
