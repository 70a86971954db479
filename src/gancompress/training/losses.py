"""Losses: adversarial (lsgan | vanilla | hinge), GAN feature matching, reconstruction.

Adversarial losses (docs/reference.md sec. 3); `logits` are discriminator outputs of any shape (a
PatchGAN map (B, 1, h, w)), or a list of them for multi-scale discriminators (averaged), or a list
per scale of every stage's output, the logit map last (GauGAN's D, for feature matching):
    lsgan    D: MSE(D(real), 1) and MSE(D(fake), 0)          G: MSE(D(fake), 1)
    vanilla  D: BCE(D(real), 1) and BCE(D(fake), 0) (logits)  G: BCE(D(fake), 1)
    hinge    D: mean(relu(1 - D(real))) and mean(relu(1 + D(fake)))   G: -mean(D(fake))
pix2pix and CycleGAN train D on 0.5 * (real term + fake term): `disc_loss` returns that.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from gancompress.errors import UserError

GAN_MODES = ("lsgan", "vanilla", "hinge")

Logits = torch.Tensor | Sequence[torch.Tensor]


def _check(mode: str) -> None:
    if mode not in GAN_MODES:
        raise UserError(f"unknown GAN loss {mode!r}; use one of {', '.join(GAN_MODES)}")


def logit_maps(out: Any) -> list[torch.Tensor]:
    """The logit maps of a discriminator output: a tensor, a list of them (one per scale), or
    one list of stage outputs per scale (its last entry is the scale's logit map)."""
    if isinstance(out, torch.Tensor):
        return [out]
    return [o[-1] if isinstance(o, (list, tuple)) else o for o in out]


def stage_features(out: Any) -> list[list[torch.Tensor]]:
    """Per scale, the intermediate stage outputs (all but the logit map) of a discriminator that
    returns them (GauGAN's); [] for one that returns logit maps only."""
    if isinstance(out, torch.Tensor) or not all(isinstance(o, (list, tuple)) for o in out):
        return []
    return [list(o[:-1]) for o in out]


def feature_matching(real: Any, fake: Any) -> torch.Tensor | None:
    """GAN feature matching (pix2pixHD / SPADE): sum over scales and intermediate stages of
    L1(D_ij(fake), D_ij(real)), divided by the number of scales; None when D has no stages."""
    real_stages, fake_stages = stage_features(real), stage_features(fake)
    if not real_stages:
        return None
    total = sum(F.l1_loss(f.float(), r.detach().float())
                for rs, fs in zip(real_stages, fake_stages) for r, f in zip(rs, fs))
    return total / len(real_stages)


def _mean_over(logits: Logits, fn) -> torch.Tensor:
    maps = logit_maps(logits)
    return sum(fn(x.float()) for x in maps) / len(maps)


def adversarial(mode: str, logits: Logits, real: bool, for_disc: bool = True) -> torch.Tensor:
    """One term of a GAN loss: `logits` judged as real (True) or fake (False).

    for_disc matters only for hinge: the generator's term is -mean(D(fake)), not a margin.
    """
    _check(mode)
    if mode == "lsgan":
        return _mean_over(logits, lambda x: F.mse_loss(x, torch.full_like(x, float(real))))
    if mode == "vanilla":
        return _mean_over(logits, lambda x: F.binary_cross_entropy_with_logits(
            x, torch.full_like(x, float(real))))
    if not for_disc:
        return _mean_over(logits, lambda x: -x.mean())
    return _mean_over(logits, lambda x: F.relu(1 - x).mean() if real else F.relu(1 + x).mean())


def disc_loss(mode: str, real_logits: Logits, fake_logits: Logits) -> torch.Tensor:
    """Discriminator loss 0.5 * (real term + fake term) (pix2pix / CycleGAN convention)."""
    return 0.5 * (adversarial(mode, real_logits, True) + adversarial(mode, fake_logits, False))


def gen_loss(mode: str, fake_logits: Logits) -> torch.Tensor:
    """Generator's adversarial loss: make D call the fakes real."""
    return adversarial(mode, fake_logits, True, for_disc=False)


def reconstruction(output: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Mean absolute (l1) or squared (l2) error."""
    if kind == "l1":
        return F.l1_loss(output.float(), target.float())
    if kind == "l2":
        return F.mse_loss(output.float(), target.float())
    raise UserError(f"unknown reconstruction loss {kind!r}; use 'l1' or 'l2'")
