"""Discriminators: the PatchGAN of pix2pix / CycleGAN (REFERENCE.md sec. 3).

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


class SpadeNLayerDiscriminator(nn.Module):
    """One scale of GauGAN's discriminator (REFERENCE-FAMILIES.md sec. 5.1), kernel 4, padding 2:
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
    "multiscale": MultiscaleDiscriminator,
}


def build_discriminator(name: str, **kwargs) -> nn.Module:
    if name not in DISCRIMINATORS:
        raise UserError(f"unknown discriminator {name!r}; known: {', '.join(DISCRIMINATORS)}")
    return DISCRIMINATORS[name](**kwargs)
