"""L1-norm channel pruning (the original pipeline's student initialisation; docs/reference.md sec. 1).

Rank the output channels of every width group by the L1 norm of their filters, permute the
parent so the most important channels come first (a function-preserving reordering), then crop
with `compact()`: the pruned model equals the parent with the other channels removed. Which
dimension of which tensor carries which group comes from the elastic layers' own declarations
(`models.elastic.channel_axes`), so this works for every family with no per-family table.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping

import torch

from gancompress.models.elastic import ElasticGenerator, channel_axes, compact


def channel_importance(model: ElasticGenerator) -> dict[str, torch.Tensor]:
    """Per group, the L1 norm of each output channel's filter, summed over the group's producers.

    Every conv that writes a group's channels votes (for the ResNet trunk: the 2nd downsampling
    conv and the last conv of every residual block); each layer's norms are divided by their
    mean so that layers of different scale count equally. Input axes and 1-d tensors do not vote.
    """
    state = model.state_dict()
    scores: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        axes = getattr(module, "channel_axes", None)
        if axes is None or getattr(module, "depthwise", False):
            continue
        weight = getattr(module, "weight", None)
        if weight is None or weight.dim() != 4:
            continue
        out_dim = 1 if isinstance(module, torch.nn.ConvTranspose2d) else 0
        key = f"{name}.weight" if name else "weight"
        for dim, parts in axes().get("weight", []):
            if dim != out_dim:
                continue
            tensor = state[key].detach().abs().transpose(0, dim).flatten(1).sum(1).double()
            offset = 0
            for group, width in parts:
                if group is not None:
                    norms = tensor[offset: offset + width]
                    norms = norms / norms.mean().clamp_min(1e-12)
                    scores[group] = scores[group] + norms if group in scores else norms
                offset += width
    return scores


def permute_channels(model: ElasticGenerator, orders: Mapping[str, torch.Tensor]
                     ) -> ElasticGenerator:
    """Copy of `model` with each group's channels reordered (new channel j = old orders[g][j]).

    Function-preserving: producers and consumers of a group are permuted together.
    """
    axes = channel_axes(model)
    new_state = {}
    for key, tensor in model.state_dict().items():
        for dim, parts in axes.get(key, []):
            index, offset = [], 0
            for group, width in parts:
                order = orders.get(group) if group is not None else None
                local = order.tolist() if order is not None else range(width)
                index.extend(offset + int(i) for i in local)
                offset += width
            tensor = tensor.index_select(dim, torch.tensor(index, device=tensor.device))
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
