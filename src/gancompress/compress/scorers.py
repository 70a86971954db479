"""Which scorer a run's settings ask for (compress.metric), built on its held-out slice (the
scorers themselves are in scoring.py)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from gancompress.compress.heldout import (
    calibration_batches,
    held_out_batches,
    held_out_label_batches,
    needs_calibration,
)
from gancompress.compress.scoring import ReconstructionScorer
from gancompress.compress.space import SearchSpace
from gancompress.config import Config
from gancompress.errors import UserError
from gancompress.models.elastic import ElasticGenerator


def make_scorer(cfg: Config, supernet: ElasticGenerator, space: SearchSpace,
                teacher: ElasticGenerator | None, held_out: Sequence[str],
                device: torch.device | str) -> Any:
    """Score of a sub-network on the held-out slice: FID / KID against compress.stats, else
    L1 / PSNR to the ground truth (paired) or to the teacher's output (unpaired)."""
    c = cfg.compress
    metric = c.metric
    if metric == "auto":
        metric = "fid" if c.stats else "l1"
    batches, paired = held_out_batches(cfg, held_out, teacher, device=device)
    calibration = (calibration_batches(cfg, held_out, device=device)
                   if needs_calibration(supernet) else None)
    if metric == "miou":
        from gancompress.compress.scoring import SegmentationScorer
        return SegmentationScorer(supernet, space, held_out_label_batches(cfg, held_out, device),
                                  c.drn_weights, calibration=calibration, device=device)
    if metric in ("fid", "kid"):
        if not c.stats:
            raise UserError(f"compress.metric={metric} needs reference statistics: "
                            f"compress.stats=FILE.npz (made by gancompress stats)")
        from gancompress.compress.scoring import DistributionScorer
        return DistributionScorer.from_statistics(supernet, space, [s for s, _ in batches],
                                                  c.stats, kind=metric, device=device,
                                                  calibration=calibration)
    return ReconstructionScorer(supernet, space, batches, metric,
                                reference="target" if paired else "teacher",
                                calibration=calibration, device=device)
