"""Distillation pieces: feature mappings and losses, and L1-norm channel pruning.

Feature distillation (GAN Compression sec. 3.2; REFERENCE.md sec. 2): the student's intermediate
features (input of the residual blocks, outputs of blocks 3, 6, 9; `forward(return_features=True)`)
are mapped to the teacher's width by learned 1x1 convs (bias, init N(0, 0.02)) and matched to the
teacher's features by mean-squared error; the losses are summed and weighted by lambda_distill.
The mappings are *elastic* convs: when the supernet runs a narrower trunk, a mapping uses the
first k input channels of its weight, as every other layer does.

Reconstruction (sec. 3.1): paired data -> L1 to the ground truth; unpaired data -> L1 to the
teacher's output (which turns unpaired learning into paired learning).

L1-norm channel pruning (the original pipeline's student initialisation): rank the output
channels of every width group by the L1 norm of their filters, permute the parent so the most
important channels come first (a function-preserving reordering), then crop with `compact()`.
The pruned model therefore equals the parent with the other channels removed.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancompress.errors import UserError
from gancompress.models.elastic import ElasticConv2d, ElasticGenerator, compact

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


# ----------------------------------------------------------------------------------------------
# Channel bookkeeping and L1-norm pruning

# An axis entry: (tensor dimension, width group, role). role "out": the tensor *produces* that
# group's channels along the dimension (a filter per channel); "in": it consumes them.
Axis = tuple[int, str, str]


def resnet_channel_axes(model: ElasticGenerator) -> dict[str, list[Axis]]:
    """Which dimension of which tensor of a ResnetGenerator carries which width group.

    Layout in models/resnet.py: conv weights are (out, in, k, k), conv-transpose weights
    (in, out, k, k), depthwise weights (C, 1, k, k) with C the *input* group.
    """
    state = model.state_dict()
    axes: dict[str, list[Axis]] = {}

    def add(key: str, dim: int, group: str, role: str) -> None:
        if key in state:
            axes.setdefault(key, []).append((dim, group, role))

    def conv(prefix: str, out_group: str | None, in_group: str | None, transpose: bool = False):
        o, i = (1, 0) if transpose else (0, 1)
        if out_group:
            add(f"{prefix}.weight", o, out_group, "out")
            add(f"{prefix}.bias", 0, out_group, "out")
        if in_group:
            add(f"{prefix}.weight", i, in_group, "in")

    def norm(prefix: str, group: str) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            add(f"{prefix}.{name}", 0, group, "out")

    def separable(prefix: str, out_group: str, in_group: str) -> None:
        add(f"{prefix}.depthwise.weight", 0, in_group, "in")
        add(f"{prefix}.depthwise.bias", 0, in_group, "in")
        norm(f"{prefix}.norm", in_group)
        conv(f"{prefix}.pointwise", out_group, in_group)

    from gancompress.models.resnet import block_group

    conv("stem.conv", "stem", None)
    norm("stem.norm", "stem")
    conv("down1.conv", "down1", "stem")
    norm("down1.norm", "down1")
    conv("down2.conv", "trunk", "down1")
    norm("down2.norm", "trunk")
    n_blocks = model.arch["n_blocks"]
    for b in range(n_blocks):
        hidden, p = block_group(b, n_blocks), f"blocks.{b}"
        if model.arch["conv"] == "separable":
            separable(f"{p}.conv1", hidden, "trunk")
            separable(f"{p}.conv2", "trunk", hidden)
        else:
            conv(f"{p}.conv1", hidden, "trunk")
            conv(f"{p}.conv2", "trunk", hidden)
        norm(f"{p}.norm1", hidden)
        norm(f"{p}.norm2", "trunk")
    conv("up1.conv", "up1", "trunk", transpose=True)
    norm("up1.norm", "up1")
    conv("up2.conv", "up2", "up1", transpose=True)
    norm("up2.norm", "up2")
    conv("head", None, "up2")
    return axes


CHANNEL_AXES = {"resnet": resnet_channel_axes}


def channel_axes(model: ElasticGenerator) -> dict[str, list[Axis]]:
    if model.arch_name not in CHANNEL_AXES:
        raise UserError(f"L1-norm channel pruning is not available for {model.arch_name} "
                        f"generators (known: {', '.join(CHANNEL_AXES)}); use the fast pipeline")
    return CHANNEL_AXES[model.arch_name](model)


def channel_importance(model: ElasticGenerator) -> dict[str, torch.Tensor]:
    """Per group, the L1 norm of each output channel's filter, summed over the group's producers.

    Every layer that writes a group's channels votes (for the trunk: the 2nd downsampling conv
    and the last conv of every residual block); each layer's norms are divided by their mean so
    that layers of different scale count equally.
    """
    state = model.state_dict()
    scores: dict[str, torch.Tensor] = {}
    for key, entries in channel_axes(model).items():
        tensor = state[key]
        if tensor.dim() != 4:
            continue  # filters only: biases and norm parameters do not vote
        for dim, group, role in entries:
            if role != "out":
                continue
            norms = tensor.detach().abs().transpose(0, dim).flatten(1).sum(1).double()
            norms = norms / norms.mean().clamp_min(1e-12)
            scores[group] = scores[group] + norms if group in scores else norms
    return scores


def permute_channels(model: ElasticGenerator, orders: Mapping[str, torch.Tensor]
                     ) -> ElasticGenerator:
    """Copy of `model` with each group's channels reordered (new channel j = old orders[g][j]).

    Function-preserving: producers and consumers of a group are permuted together.
    """
    state = model.state_dict()
    new_state = {}
    for key, tensor in state.items():
        for dim, group, _role in channel_axes(model).get(key, []):
            if group in orders:
                tensor = tensor.index_select(dim, orders[group].to(tensor.device))
        new_state[key] = tensor.clone()
    out = copy.deepcopy(model)
    out.load_state_dict(new_state)
    return out


def l1_prune(parent: ElasticGenerator, widths: Mapping[str, int]
             ) -> tuple[ElasticGenerator, dict[str, list[int]]]:
    """Narrower copy of `parent` keeping, per group, the channels with the largest L1 norm.

    Returns (pruned model, kept channel indices of the parent per group, most important first).
    """
    widths = parent.check_widths(widths)
    importance = channel_importance(parent)
    orders = {g: torch.argsort(s, descending=True, stable=True) for g, s in importance.items()}
    kept = {g: orders[g][: widths[g]].tolist() for g in orders}
    return compact(permute_channels(parent, orders), widths), kept
