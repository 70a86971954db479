"""The cost side of a budget: MACs or predicted latency of sub-networks, the teacher's cost, and
the budget parsed, resolved against the teacher and checked against the space once per run.

`size` is the run's batch-1 input shape (compress.run.input_size, computed once per run)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from gancompress.compress.budget import Budget, LatencyCost, MacCost, check_budget, parse_budget
from gancompress.compress.space import SearchSpace
from gancompress.config import Config
from gancompress.errors import UserError
from gancompress.metrics.cost import count_macs
from gancompress.models.elastic import ElasticGenerator
from gancompress import distributed

InputSize = tuple[int, int, int, int]


def input_size(cfg: Config) -> InputSize:
    """Batch-1 input shape at the data's evaluation size: MACs and latency are counted there
    (the family's `example_inputs` builds the actual inputs from it). For label maps it may read
    the dataset (the layout decides the channels): a run computes it once (RunDescription)."""
    from gancompress.data import input_shape
    return (1, *input_shape(cfg.data))


def _size(cfg: Config, size: InputSize | None) -> InputSize:
    return size if size is not None else input_size(cfg)


def latency_input_size(cfg: Config, size: InputSize) -> InputSize:
    """The input shape a latency budget is measured at: compress.latency_size (HxW, e.g. the
    deployment size) or, when empty, the run's size."""
    text = cfg.compress.latency_size.strip().lower()
    if not text:
        return size
    try:
        h, w = (int(v) for v in text.split("x"))
    except ValueError:
        raise UserError(f"compress.latency_size={cfg.compress.latency_size!r}: give HxW, e.g. "
                        f"256x256") from None
    if not (1 <= h <= 8192 and 1 <= w <= 8192):
        raise UserError(f"compress.latency_size={text}: each side must be in [1, 8192]")
    return (size[0], size[1], h, w)


def make_cost(cfg: Config, model: ElasticGenerator, space: SearchSpace, budget: Budget,
              device: torch.device | str, cache_dir: Path | None,
              size: InputSize | None = None) -> MacCost | LatencyCost:
    """MACs, or predicted latency for a budget in ms (latency models are cached by
    gancompress.compress.latency, in its default cache folder when cache_dir is None)."""
    size = _size(cfg, size)
    if budget.kind == "latency":
        size = latency_input_size(cfg, size)
        model.check_size(size[2:])
        backend = cfg.compress.latency_backend
        if not distributed.active():
            return LatencyCost(model, space, size, device=str(device), backend=backend,
                               cache_dir=cache_dir)
        # torchrun: rank 0 measures alone (concurrent timing runs would disturb each other) and
        # every rank predicts with its fit, since the ranks of a parallel search must agree on
        # which sub-networks fit the budget
        cost = None
        if distributed.is_main():
            cost = LatencyCost(model, space, size, device=str(device), backend=backend,
                               cache_dir=cache_dir)
        fit = distributed.broadcast(cost.latency.fit if cost is not None else None)
        if cost is None:
            cost = LatencyCost(model, space, size, device=str(device), backend=backend, fit=fit)
        return cost
    return MacCost(model, space, size)


def teacher_cost(cfg: Config, teacher: ElasticGenerator, budget: Budget,
                 device: torch.device | str, size: InputSize | None = None) -> float:
    size = _size(cfg, size)
    if budget.kind != "latency":
        return float(count_macs(teacher, size))
    size = latency_input_size(cfg, size)
    # torchrun: one measurement (rank 0's), the same number on every rank
    ms = _teacher_latency(cfg, teacher, device, size) if distributed.is_main() else None
    return distributed.broadcast(ms)


def _teacher_latency(cfg: Config, teacher: ElasticGenerator, device: torch.device | str,
                     size: InputSize) -> float:
    if cfg.compress.latency_backend != "torch":
        # the teacher on the runtime the budget refers to (the same statistic as the model fit)
        from gancompress.compress.latency import runtime_backend
        from gancompress.deploy.backends import build_backend, measure_side_by_side

        name = runtime_backend(cfg.compress.latency_backend)
        call, _ = build_backend(name, teacher, size, device=str(device), speed_only=True)
        return measure_side_by_side({name: call}, warmup=2, runs=5, device=str(device)
                                    )[name]["min_ms"]
    from gancompress.metrics.cost import measure_latency
    return measure_latency(teacher, size, warmup=3, runs=10, device=device)["median_ms"]


@dataclass(frozen=True)
class CheckedBudget:
    """compress.budget parsed, resolved against the teacher and checked against the space, once
    per run (a latency budget measures the teacher once)."""
    budget: Budget
    teacher_cost: float | None


def checked_budget(cfg: Config, teacher: ElasticGenerator | None, model: ElasticGenerator,
                   space: SearchSpace, device: torch.device | str,
                   size: InputSize | None = None) -> CheckedBudget:
    """Parse, resolve and check compress.budget for a supernet (or its untrained skeleton)."""
    if not cfg.compress.budget:
        raise UserError("no budget given: pass --budget (e.g. 3G, 1/10, 5%, 30ms) or use a "
                        "preset that sets compress.budget")
    size = _size(cfg, size)
    budget = parse_budget(cfg.compress.budget)
    budget = budget.resolve(count_macs(teacher, size) if teacher is not None else None)
    t_cost = teacher_cost(cfg, teacher, budget, device, size) if teacher is not None else None
    check_budget(budget, make_cost(cfg, model, space, budget, device, None, size), space, t_cost)
    return CheckedBudget(budget, t_cost)
