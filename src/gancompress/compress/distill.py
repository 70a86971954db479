"""Distillation pieces: feature mappings and losses, and L1-norm channel pruning.

Feature distillation (GAN Compression sec. 3.2; REFERENCE.md sec. 2): the student's intermediate
features (input of the residual blocks, outputs of blocks 3, 6, 9; `forward(return_features=True)`)
are mapped to the teacher's width by learned 1x1 convs (bias, init N(0, 0.02)) and matched to the
teacher's features by mean-squared error; the losses are summed and weighted by lambda_distill.
The mappings are *elastic* convs: when the supernet runs a narrower trunk, a mapping uses the
first k input channels of its weight, as every other layer does.

Reconstruction (sec. 3.1): paired data -> L1 to the ground truth; unpaired data -> L1 to the
teacher's output (which turns unpaired learning into paired learning).
L1-norm channel pruning lives in prune.py.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancompress.errors import UserError
from gancompress.models.elastic import ElasticConv2d, ElasticGenerator

# ----------------------------------------------------------------------------------------------
# Feature distillation


class FeatureMappings(nn.Module):
    """One 1x1 conv per distilled feature: student width -> teacher width (REFERENCE.md sec. 2).

    The input side is elastic, so the same mapping serves every sub-network of a supernet.
    """

    def __init__(self, student_channels: Sequence[int], teacher_channels: Sequence[int]):
        super().__init__()
        if len(student_channels) != len(teacher_channels):
            raise UserError(f"student has {len(student_channels)} distillation features, teacher "
                            f"{len(teacher_channels)}; they must be the same architecture family")
        self.convs = nn.ModuleList(ElasticConv2d(s, t, 1, bias=True)
                                   for s, t in zip(student_channels, teacher_channels))
        for conv in self.convs:  # published init: N(0, 0.02) weights, zero bias
            nn.init.normal_(conv.weight, 0.0, 0.02)
            nn.init.zeros_(conv.bias)

    @classmethod
    def between(cls, student: ElasticGenerator, teacher: ElasticGenerator) -> FeatureMappings:
        s_widths, t_widths = student.max_widths, teacher.max_widths
        return cls([s_widths[g] for g in student.feature_widths],
                   [t_widths[g] for g in teacher.feature_widths])

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [conv(f) for conv, f in zip(self.convs, features)]


def distillation_loss(student_features: Sequence[torch.Tensor],
                      teacher_features: Sequence[torch.Tensor],
                      mappings: FeatureMappings) -> torch.Tensor:
    """Sum over taps of MSE(mapping_i(student_i), teacher_i); multiply by lambda_distill outside.

    Teacher features are detached: the teacher is frozen.
    """
    if len(student_features) != len(teacher_features):
        raise ValueError(f"{len(student_features)} student features vs {len(teacher_features)} "
                         f"teacher features")
    total = student_features[0].new_zeros(())
    for mapped, target in zip(mappings(student_features), teacher_features):
        if mapped.shape != target.shape:
            raise ValueError(f"mapped student feature {tuple(mapped.shape)} does not match teacher "
                             f"feature {tuple(target.shape)}")
        total = total + F.mse_loss(mapped, target.detach())
    return total


def reconstruction_loss(fake: torch.Tensor, target: torch.Tensor | None,
                        teacher_fake: torch.Tensor | None, paired: bool) -> torch.Tensor:
    """L1 to the ground truth (paired data) or to the teacher's output (unpaired data)."""
    reference = target if paired else teacher_fake
    if reference is None:
        raise ValueError("paired reconstruction needs a target; unpaired needs the teacher output")
    return F.l1_loss(fake, reference.detach())


def freeze(model: nn.Module) -> nn.Module:
    """Teacher mode: eval (dropout off, BatchNorm running statistics), no gradients."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
