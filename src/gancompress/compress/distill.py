"""Distillation pieces: feature mappings and the feature losses (MSE after a mapping, kernel
alignment), and freezing the teacher.

Feature distillation (GAN Compression sec. 3.2; docs/reference.md sec. 2): the student's intermediate
features (input of the residual blocks, outputs of blocks 3, 6, 9; `forward(return_features=True)`)
are mapped to the teacher's width by learned 1x1 convs (bias, init N(0, 0.02)) and matched to the
teacher's features by mean-squared error; the losses are summed and weighted by lambda_distill.
The mappings are *elastic* convs: when the supernet runs a narrower trunk, a mapping uses the
first k input channels of its weight, as every other layer does.

Kernel-alignment distillation (CAT, Jin et al. CVPR 2021; compress.distill_loss=ka): instead
of mapping the student's features to the teacher's width and matching them, the similarity
structure between spatial positions is matched: for one image, X (HW x C_s) and Y (HW x C_t),
    KA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F * ||Y^T Y||_F)
(1 = the same Gram matrix up to scale); the loss is sum over taps of mean over the batch of
1 - KA. It needs no mapping layers and holds for any pair of widths.

The reconstruction terms (sec. 3.1: L1 to the ground truth on paired data, to the teacher's
output on unpaired data) are in compress/tasks.py; L1-norm channel pruning lives in prune.py.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gancompress.errors import UserError
from gancompress.models.elastic import ElasticConv2d, ElasticGenerator

# ----------------------------------------------------------------------------------------------
# Feature distillation


class FeatureMappings(nn.Module):
    """One 1x1 conv per distilled (student tap, teacher tap) pair: student width -> teacher
    width (docs/reference.md sec. 2).

    Same family: tap i of the student with tap i of the teacher. A student of another family
    (a ResNet student of a U-Net teacher) is paired by resolution (`matching_taps`); with no
    tap at a common resolution it learns from the outputs alone. The input side is elastic, so
    the same mapping serves every sub-network of a supernet.
    """

    def __init__(self, student_channels: Sequence[int], teacher_channels: Sequence[int],
                 pairs: Sequence[tuple[int, int]] | None = None):
        super().__init__()
        if pairs is None:
            if len(student_channels) != len(teacher_channels):
                raise UserError(f"student has {len(student_channels)} distillation features, "
                                f"teacher {len(teacher_channels)}; they must be the same "
                                f"architecture family")
            pairs = [(i, i) for i in range(len(student_channels))]
        self.pairs = [(int(s), int(t)) for s, t in pairs]
        self.convs = nn.ModuleList(ElasticConv2d(student_channels[s], teacher_channels[t], 1,
                                                 bias=True) for s, t in self.pairs)
        for conv in self.convs:  # published init: N(0, 0.02) weights, zero bias
            nn.init.normal_(conv.weight, 0.0, 0.02)
            nn.init.zeros_(conv.bias)

    @classmethod
    def between(cls, student: ElasticGenerator, teacher: ElasticGenerator) -> FeatureMappings:
        s_widths, t_widths = student.max_widths, teacher.max_widths
        s_channels = [s_widths[g] for g in student.feature_widths]
        t_channels = [t_widths[g] for g in teacher.feature_widths]
        if student.arch_name == teacher.arch_name:
            return cls(s_channels, t_channels)
        return cls(s_channels, t_channels, matching_taps(student, teacher))

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [conv(features[s]) for conv, (s, _) in zip(self.convs, self.pairs)]


@torch.no_grad()
def tap_scales(model: ElasticGenerator, size: int) -> list[tuple[int, int]]:
    """(H, W) of each distillation tap for a size x size input, in eval mode."""
    was_training = model.training
    model.eval()
    try:
        _, features = model(*model.example_inputs((size, size)), return_features=True)
    finally:
        model.train(was_training)
    return [tuple(f.shape[-2:]) for f in features]


def matching_taps(student: ElasticGenerator, teacher: ElasticGenerator
                  ) -> list[tuple[int, int]]:
    """(student tap, teacher tap) pairs at the same resolution, for models of two families:
    each teacher tap takes the deepest unused student tap of its resolution (the one nearest
    the decoder). Probed once at the smallest input both families accept."""
    size = math.lcm(student.size_multiple, teacher.size_multiple)
    size *= max(1, math.ceil(16 / size))
    s_scales, t_scales = tap_scales(student, size), tap_scales(teacher, size)
    used: set[int] = set()
    pairs = []
    for t, scale in enumerate(t_scales):
        free = [s for s, other in enumerate(s_scales) if other == scale and s not in used]
        if free:
            used.add(free[-1])
            pairs.append((free[-1], t))
    return pairs


def distillation_loss(student_features: Sequence[torch.Tensor],
                      teacher_features: Sequence[torch.Tensor],
                      mappings: FeatureMappings) -> torch.Tensor:
    """Sum over tap pairs of MSE(mapping(student_s), teacher_t); multiply by lambda_distill
    outside. Teacher features are detached: the teacher is frozen."""
    if any(s >= len(student_features) or t >= len(teacher_features) for s, t in mappings.pairs):
        raise ValueError(f"{len(student_features)} student features and "
                         f"{len(teacher_features)} teacher features do not have the taps "
                         f"{mappings.pairs}")
    total = student_features[0].new_zeros(())
    for mapped, (_, t) in zip(mappings(student_features), mappings.pairs):
        target = teacher_features[t]
        if mapped.shape != target.shape:
            raise ValueError(f"mapped student feature {tuple(mapped.shape)} does not match teacher "
                             f"feature {tuple(target.shape)}")
        total = total + F.mse_loss(mapped, target.detach())
    return total


def kernel_alignment(student: torch.Tensor, teacher: torch.Tensor, eps: float = 1e-12
                     ) -> torch.Tensor:
    """(B,) kernel alignment of each image's features: (B, C_s, H, W) and (B, C_t, H, W), the
    rows of X and Y being the H*W positions (CAT's distillation objective)."""
    if student.shape[0] != teacher.shape[0] or student.shape[2:] != teacher.shape[2:]:
        raise ValueError(f"kernel alignment needs features of one batch and resolution, got "
                         f"{tuple(student.shape)} and {tuple(teacher.shape)}")
    x = student.flatten(2)  # (B, C_s, HW): X^T
    y = teacher.flatten(2)
    cross = torch.linalg.matrix_norm(y @ x.transpose(1, 2)) ** 2          # ||Y^T X||_F^2
    norms = (torch.linalg.matrix_norm(x @ x.transpose(1, 2))
             * torch.linalg.matrix_norm(y @ y.transpose(1, 2)))
    return cross / norms.clamp_min(eps)


def alignment_loss(student_features: Sequence[torch.Tensor],
                   teacher_features: Sequence[torch.Tensor],
                   pairs: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Sum over (student tap, teacher tap) pairs of mean over the batch of 1 - KA; multiply by
    lambda_distill outside. Teacher features are detached."""
    total = student_features[0].new_zeros(())
    for s, t in pairs:
        ka = kernel_alignment(student_features[s].float(), teacher_features[t].detach().float())
        total = total + (1 - ka).mean()
    return total


def freeze(model: nn.Module) -> nn.Module:
    """Teacher mode: eval (dropout off, BatchNorm running statistics), no gradients."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
