"""Discriminators: the PatchGAN of pix2pix / CycleGAN (docs/reference.md sec. 3) and the multi-scale
image discriminator of MUNIT (docs/families.md sec. 6.5).

PatchGAN ("NLayerDiscriminator"), n_layers = 3 gives the 70x70 receptive field:
    conv 4x4 s2 in->ndf, LeakyReLU 0.2                                   (no norm on the first)
    for n in 1..n_layers-1: conv 4x4 s2 ndf*min(2^(n-1),8) -> ndf*min(2^n,8), norm, LeakyReLU 0.2
    conv 4x4 s1 -> ndf*min(2^n_layers, 8), norm, LeakyReLU 0.2
    conv 4x4 s1 -> 1                                                      (one logit per patch)
Convs use padding 1; the normalised convs carry a bias only with InstanceNorm or no norm
(BatchNorm has its own shift). For a 1x3x256x256 input and n_layers=3 the output is 1x1x30x30.
pix2pix feeds concat(source, image) (in_channels = C_in + C_out); CycleGAN the image alone.

Multiscale ("multiscale", GauGAN): 2 scales x 4 layers with spectral norm + InstanceNorm, every
stage's output returned for feature matching (see MultiscaleDiscriminator).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from gancompress.errors import UserError


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise UserError(f"unknown discriminator norm {kind!r}; use 'instance', 'batch' or 'none'")


class PatchDiscriminator(nn.Module):
    """PatchGAN: classifies each overlapping patch as real or fake; returns (B, 1, h, w) logits."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3,
                 norm: str = "instance"):
        super().__init__()
        if n_layers < 1:
            raise UserError(f"a PatchGAN needs n_layers >= 1, got {n_layers}")
        self.arch = dict(in_channels=in_channels, ndf=ndf, n_layers=n_layers, norm=norm)
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for n in range(1, n_layers):
            out = ndf * min(2 ** n, 8)
            layers += [nn.Conv2d(width, out, 4, 2, 1, bias=bias), _norm(norm, out),
                       nn.LeakyReLU(0.2, True)]
            width = out
        out = ndf * min(2 ** n_layers, 8)
        layers += [nn.Conv2d(width, out, 4, 1, 1, bias=bias), _norm(norm, out),
                   nn.LeakyReLU(0.2, True), nn.Conv2d(out, 1, 4, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class _PadConv(nn.Module):
    """pad -> conv (bias) -> LeakyReLU 0.2: one stage of a MUNIT discriminator scale."""

    def __init__(self, cin: int, cout: int, pad_type: str):
        super().__init__()
        self.pad = nn.ReflectionPad2d(1) if pad_type == "reflect" else nn.ZeroPad2d(1)
        self.conv = nn.Conv2d(cin, cout, 4, 2)
        self.activation = nn.LeakyReLU(0.2, inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.conv(self.pad(x)))


class MsImageDiscriminator(nn.Module):
    """MUNIT's multi-scale image discriminator (NVlabs MsImageDis = gan-compression "ms_image").

    `num_scales` copies of: conv 4x4 s2 in->ndf, then n_layers-1 convs 4x4 s2 doubling the
    width (no norm, LeakyReLU 0.2), then a 1x1 conv -> 1 logit map; each scale sees the input
    average-pooled (3x3, stride 2, pad 1, padding not counted) once more than the previous.
    Returns the list of logit maps (16x16, 8x8, 4x4 at 256 px). 8,271,171 params at ndf 64.
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 4, norm: str = "none",
                 num_scales: int = 3, pad_type: str = "reflect"):
        super().__init__()
        if norm != "none":
            raise UserError(f"the multi-scale image discriminator has no norm layers (published "
                            f"edges2shoes setting); got norm {norm!r}: use model.disc_norm=none")
        if n_layers < 1 or num_scales < 1:
            raise UserError(f"ms_image needs n_layers >= 1 and num_scales >= 1, got {n_layers} "
                            f"and {num_scales}")
        if pad_type not in ("reflect", "zero"):
            raise UserError(f"ms_image pad_type must be 'reflect' or 'zero', got {pad_type!r}")
        self.arch = dict(in_channels=in_channels, ndf=ndf, n_layers=n_layers, norm=norm,
                         num_scales=num_scales, pad_type=pad_type)

        def scale() -> nn.Sequential:
            layers: list[nn.Module] = [_PadConv(in_channels, ndf, pad_type)]
            width = ndf
            for _ in range(n_layers - 1):
                layers.append(_PadConv(width, width * 2, pad_type))
                width *= 2
            layers.append(nn.Conv2d(width, 1, 1))
            return nn.Sequential(*layers)

        self.cnns = nn.ModuleList(scale() for _ in range(num_scales))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for i, cnn in enumerate(self.cnns):
            if i:
                x = self.downsample(x)
            outputs.append(cnn(x))
        return outputs


class SpadeNLayerDiscriminator(nn.Module):
    """One scale of GauGAN's discriminator (docs/families.md sec. 5.1), kernel 4, padding 2:
    model0 conv s2 + LReLU; model1..n-1 spectral-norm conv (no bias) + InstanceNorm + LReLU,
    widths doubling to 512, stride 1 in the last; model_n conv -> 1. Returns every stage's output
    (the last is the logit map; the others feed the feature-matching loss). Keys match NVlabs /
    gan-compression `latest_net_D.pth` (`model1.0.0.weight_orig`, ...)."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 4):
        super().__init__()
        self.n_layers = n_layers
        self.add_module("model0", nn.Sequential(nn.Conv2d(in_channels, ndf, 4, 2, 2),
                                                nn.LeakyReLU(0.2, False)))
        width = ndf
        for n in range(1, n_layers):
            out = min(width * 2, 512)
            conv = nn.utils.spectral_norm(nn.Conv2d(width, out, 4, 1 if n == n_layers - 1 else 2,
                                                    2, bias=False))
            self.add_module(f"model{n}", nn.Sequential(
                nn.Sequential(conv, nn.InstanceNorm2d(out, affine=False)), nn.LeakyReLU(0.2, False)))
            width = out
        self.add_module(f"model{n_layers}", nn.Sequential(nn.Conv2d(width, 1, 4, 1, 2)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for n in range(self.n_layers + 1):
            x = getattr(self, f"model{n}")(x)
            outputs.append(x)
        return outputs


class MultiscaleDiscriminator(nn.Module):
    """GauGAN's D: `num_D` NLayer discriminators, scale k sees the input average-pooled k times
    (3x3, stride 2, padding 1, padding excluded). Input: concat(label map, image).
    Returns one list of stage outputs per scale."""

    def __init__(self, in_channels: int = 39, ndf: int = 64, n_layers: int = 4, num_D: int = 2,
                 norm: str = "spectralinstance"):
        super().__init__()
        if norm != "spectralinstance":
            raise UserError(f"the multiscale discriminator uses norm 'spectralinstance', got {norm!r}")
        self.arch = dict(in_channels=in_channels, ndf=ndf, n_layers=n_layers, num_D=num_D, norm=norm)
        for i in range(num_D):
            self.add_module(f"discriminator_{i}", SpadeNLayerDiscriminator(in_channels, ndf, n_layers))
        self.num_D = num_D

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        results = []
        for i in range(self.num_D):
            results.append(getattr(self, f"discriminator_{i}")(x))
            if i + 1 < self.num_D:
                x = nn.functional.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
        return results


DISCRIMINATORS: dict[str, type[nn.Module]] = {
    "patch": PatchDiscriminator,
    "ms_image": MsImageDiscriminator,
    "multiscale": MultiscaleDiscriminator,
}


def build_discriminator(name: str, **kwargs) -> nn.Module:
    if name not in DISCRIMINATORS:
        raise UserError(f"unknown discriminator {name!r}; known: {', '.join(DISCRIMINATORS)}")
    return DISCRIMINATORS[name](**kwargs)
