"""Discriminators: the PatchGAN of pix2pix / CycleGAN (REFERENCE.md sec. 3).

PatchGAN ("NLayerDiscriminator"), n_layers = 3 gives the 70x70 receptive field:
    conv 4x4 s2 in->ndf, LeakyReLU 0.2                                   (no norm on the first)
    for n in 1..n_layers-1: conv 4x4 s2 ndf*min(2^(n-1),8) -> ndf*min(2^n,8), norm, LeakyReLU 0.2
    conv 4x4 s1 -> ndf*min(2^n_layers, 8), norm, LeakyReLU 0.2
    conv 4x4 s1 -> 1                                                      (one logit per patch)
Convs use padding 1; the normalised convs carry a bias only with InstanceNorm or no norm
(BatchNorm has its own shift). For a 1x3x256x256 input and n_layers=3 the output is 1x1x30x30.
pix2pix feeds concat(source, image) (in_channels = C_in + C_out); CycleGAN the image alone.
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


DISCRIMINATORS: dict[str, type[nn.Module]] = {
    "patch": PatchDiscriminator,
}


def build_discriminator(name: str, **kwargs) -> nn.Module:
    if name not in DISCRIMINATORS:
        raise UserError(f"unknown discriminator {name!r}; known: {', '.join(DISCRIMINATORS)}")
    return DISCRIMINATORS[name](**kwargs)
