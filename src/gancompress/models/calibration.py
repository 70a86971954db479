"""Calibration: BatchNorm statistics of a sub-network, and the one way to evaluate one.

`sub_network(model, widths, calibration)` sets the widths, re-calibrates BatchNorm statistics on
training batches (statistics accumulated while a supernet sampled many widths match no single
sub-network; docs/reference.md sec. 4) and restores everything afterwards; `calibrated_compact` is the
standalone version of the same sub-network.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
import torch.nn as nn

from gancompress.models.family import ElasticGenerator, compact, using_widths

def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            and m.track_running_stats]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[Any], max_batches: int = 50) -> int:
    """Re-estimate BatchNorm running statistics on training inputs at the current widths.

    Each batch is a tensor or a tuple of forward() inputs. Returns the batches used.
    """
    bns = batchnorms(model)
    if not bns:
        return 0
    was_training = model.training
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    model.train()
    used = 0
    try:
        for batch in batches:
            if used >= max_batches:
                break
            model(*batch) if isinstance(batch, (tuple, list)) else model(batch)
            used += 1
    finally:
        for bn, m in zip(bns, momenta):
            bn.momentum = m
        model.train(was_training)
    return used


@contextlib.contextmanager
def sub_network(model: nn.Module, widths: Mapping[str, int] | None,
                calibration: Iterable[Any] | None = None, max_batches: int = 50
                ) -> Iterator[nn.Module]:
    """THE way to evaluate a sub-network: widths set, eval mode, and - when the model has
    BatchNorm - running statistics re-calibrated on `calibration` training batches first
    (statistics accumulated while a supernet sampled many widths match no single sub-network;
    docs/reference.md sec. 4). The model's statistics, widths and mode are restored on exit.

    A BatchNorm model without calibration batches is an error: its score would be wrong.
    """
    bns = batchnorms(model)
    if bns and calibration is None:
        raise ValueError("this generator has BatchNorm: pass calibration batches (training "
                         "inputs) to score a sub-network")
    saved = [{k: v.clone() for k, v in bn.state_dict().items()} for bn in bns]
    was_training = model.training
    try:
        with using_widths(model, widths):
            if bns:
                recalibrate_bn(model, calibration, max_batches)
            model.eval()
            yield model
    finally:
        for bn, state in zip(bns, saved):
            bn.load_state_dict(state)
        model.train(was_training)


def calibrated_compact(model: ElasticGenerator, widths: Mapping[str, int],
                       calibration: Iterable[Any] | None = None, max_batches: int = 50
                       ) -> ElasticGenerator:
    """compact(model, widths) with BatchNorm statistics re-calibrated for that sub-network."""
    small = compact(model, widths)
    if batchnorms(small):
        if calibration is None:
            raise ValueError("this generator has BatchNorm: pass calibration batches")
        recalibrate_bn(small, calibration, max_batches)
    return small.eval()
