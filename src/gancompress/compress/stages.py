"""The search and report stages as functions: the pipeline runs them on its run description,
and `gancompress search` / `gancompress report` run them on their own."""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from gancompress.compress.budget import MacCost
from gancompress.compress.costs import (
    CheckedBudget,
    InputSize,
    checked_budget,
    input_size,
    make_cost,
)
from gancompress.compress.heldout import batches_of_test_split, held_out_batches
from gancompress.compress.scorers import make_scorer
from gancompress.compress.search import EvolutionSettings, run_search
from gancompress.compress.supernet import load_supernet
from gancompress.config import Config
from gancompress.files import file_fingerprint
from gancompress.models.elastic import ElasticGenerator
from gancompress import distributed

Log = Callable[[str], None]


def search_supernet(cfg: Config, supernet_path: str | Path, out_dir: str | Path,
                    teacher: ElasticGenerator | None, held_out: Sequence[str],
                    device: torch.device | str = "cpu", log: Log = distributed.print0,
                    checked: CheckedBudget | None = None, size: InputSize | None = None
                    ) -> dict[str, Any]:
    """Search the supernet file under cfg.compress.budget into `out_dir`; returns best.json.
    `checked`, `size`: the budget and input shape as the pipeline already has them. `out_dir`
    is locked for the search (files.output_lock; by rank 0 under torchrun, where every rank calls
    this: they share the scoring, rank 0 writes and logs)."""
    with distributed.output_lock(out_dir, "search"):
        return _search_supernet(cfg, supernet_path, out_dir, teacher, held_out, device, log,
                                checked, size if size is not None else input_size(cfg))


def _search_supernet(cfg: Config, supernet_path: str | Path, out_dir: str | Path,
                     teacher: ElasticGenerator | None, held_out: Sequence[str],
                     device: torch.device | str, log: Log,
                     checked: CheckedBudget | None, size: InputSize) -> dict[str, Any]:
    c = cfg.compress
    supernet, space, _ = load_supernet(supernet_path, device)
    if checked is None:
        checked = checked_budget(cfg, teacher, supernet, space, device, size)
    budget, t_cost = checked.budget, checked.teacher_cost
    cost = make_cost(cfg, supernet, space, budget, device, None, size)
    scorer = make_scorer(cfg, supernet, space, teacher, held_out, device)
    teacher_score = scorer.evaluate(teacher) if teacher is not None else None
    identity = {"supernet_sha256": file_fingerprint(supernet_path),
                "space": space.to_meta(), "input_size": list(size),
                **scorer.identity()}
    settings = EvolutionSettings(**c.evolution)
    log(f"[search] {c.search} over {space.name} ({space.size:,} sub-networks), budget "
        f"{budget.describe()}, score {scorer.name} on {len(held_out)} held-out images"
        + (f"; teacher {scorer.name} {teacher_score:.4g}" if teacher_score is not None else ""))
    run_search(space, cost, scorer, budget, out_dir, identity, method=c.search, settings=settings,
               seed=cfg.train.seed, macs=MacCost(supernet, space, size),
               teacher={"score": teacher_score, "cost": t_cost} if teacher is not None else None,
               log=lambda s: log(f"[search] {s}"), workers=c.search_workers)
    return json.loads((Path(out_dir) / "best.json").read_text())


def report_files(cfg: Config, teacher: ElasticGenerator, compact_path: str | Path,
                 held_out: Sequence[str], out_dir: str | Path, device: torch.device | str = "cpu",
                 meta: dict[str, Any] | None = None, size: InputSize | None = None
                 ) -> dict[str, Any]:
    """Teacher vs compact on the held-out slice, and on the test split when the data has one
    -> out_dir/report.{json,md}, grid.png."""
    from gancompress.compress.report import compare, write_report
    from gancompress.models.checkpoint import load_generator

    compact_model = load_generator(compact_path, device)
    batches, paired = held_out_batches(cfg, held_out, teacher, device=device)
    size = size if size is not None else input_size(cfg)
    report, grid = compare(teacher, compact_model, batches, paired, size, device,
                           meta={"seed": cfg.train.seed, **(meta or {})},
                           test=batches_of_test_split(cfg, teacher, device))
    write_report(report, grid, out_dir)
    return report
