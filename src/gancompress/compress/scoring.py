"""Scorers: config -> quality number on a held-out set (L1 / PSNR, FID / KID).

Scores are "lower is better" internally; a scorer with higher_is_better (PSNR) is negated only
for ranking, and stored as measured."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from gancompress.compress.space import SearchSpace
from gancompress.errors import UserError
from gancompress.files import file_fingerprint
from gancompress.metrics.quality import psnr_per_image
from gancompress.models.elastic import ElasticGenerator, sub_network

# ----------------------------------------------------------------------------------------------
# Scorers (config -> quality number)

def scoring_inputs(model: torch.nn.Module, source: torch.Tensor, index: int
                   ) -> tuple[torch.Tensor, ...]:
    """forward() inputs of held-out batch `index` (the family's `scoring_inputs`, e.g. MUNIT's
    fixed random styles; a plain module gets the source alone)."""
    hook = getattr(model, "scoring_inputs", None)
    return hook(source, index) if hook is not None else (source,)


class ReconstructionScorer:
    """Error of a sub-network on a fixed held-out set of (source, reference) batches.

    metric 'l1' (mean absolute error in [-1, 1] units, lower is better) or 'psnr' (dB, higher is
    better). The reference is the ground truth on paired data, or the teacher's output on unpaired
    data (distance to the teacher). BatchNorm generators are re-calibrated per sub-network on
    `calibration` batches first (REFERENCE.md sec. 4).
    """

    def __init__(self, model: ElasticGenerator, space: SearchSpace,
                 batches: Sequence[tuple[torch.Tensor, torch.Tensor]], metric: str = "l1",
                 reference: str = "target", calibration: Sequence[torch.Tensor] | None = None,
                 device: str | torch.device = "cpu"):
        if metric not in ("l1", "psnr"):
            raise UserError(f"unknown reconstruction metric {metric!r}; use l1 or psnr")
        if not batches:
            raise UserError("the held-out set for scoring is empty; use more training images or "
                            "a larger held-out fraction")
        self.model, self.space, self.metric, self.reference = model, space, metric, reference
        self.device = torch.device(device)
        self.batches = [(s.to(self.device), r.to(self.device)) for s, r in batches]
        self.calibration = [c.to(self.device) for c in calibration] if calibration else None
        self.name = f"{metric}-to-{reference}"
        self.higher_is_better = metric == "psnr"

    def identity(self) -> dict[str, Any]:
        digest = hashlib.sha256()
        for s, r in self.batches:
            digest.update(s.detach().cpu().numpy().tobytes())
            digest.update(r.detach().cpu().numpy().tobytes())
        return {"metric": self.name, "held_out": sum(len(s) for s, _ in self.batches),
                "held_out_sha256": digest.hexdigest()[:16]}

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module) -> float:
        """Score any generator (teacher, compact model) on the same held-out set."""
        was_training = model.training
        model.eval()
        total, count = 0.0, 0
        try:
            for index, (source, ref) in enumerate(self.batches):
                fake = model(*scoring_inputs(model, source, index))
                if self.metric == "l1":
                    total += (fake - ref).abs().flatten(1).mean(1).sum().item()
                else:
                    total += psnr_per_image(fake, ref).sum().item()
                count += len(source)
        finally:
            model.train(was_training)
        return total / count

    def __call__(self, config: Sequence[int]) -> float:
        with sub_network(self.model, self.space.widths(config), self.calibration) as model:
            return self.evaluate(model)


class DistributionScorer:
    """FID or KID of a sub-network's outputs on the held-out sources, through the metrics
    helper's scorers (`gancompress.metrics.fid.FIDScorer`, `gancompress.metrics.kid.KIDScorer`:
    `.score(iterable of (B, C, H, W) images in [-1, 1]) -> float`, `.protocol() -> dict`).
    Lower is better. `reference_name` identifies the reference statistics for resume checks.
    """

    higher_is_better = False

    def __init__(self, model: ElasticGenerator, space: SearchSpace, sources: Sequence[torch.Tensor],
                 metric_scorer: Any, name: str = "fid", reference_name: str = "reference",
                 calibration: Sequence[torch.Tensor] | None = None,
                 device: str | torch.device = "cpu"):
        self.model, self.space, self.metric_scorer, self.name = model, space, metric_scorer, name
        self.device = torch.device(device)
        self.calibration = [c.to(self.device) for c in calibration] if calibration else None
        self.sources = [s.to(self.device) for s in sources]
        self.reference_name = reference_name

    @classmethod
    def from_statistics(cls, model: ElasticGenerator, space: SearchSpace,
                        sources: Sequence[torch.Tensor], statistics: str | Path, kind: str = "fid",
                        device: str | torch.device = "cpu",
                        calibration: Sequence[torch.Tensor] | None = None,
                        **weights) -> DistributionScorer:
        """FID / KID against a reference statistics file (`gancompress stats`)."""
        if kind == "kid":
            from gancompress.metrics.kid import KIDScorer as Metric
        else:
            from gancompress.metrics.fid import FIDScorer as Metric
        return cls(model, space, sources, Metric(str(statistics), device=device, **weights),
                   kind, reference_name=f"{Path(statistics).name}:{file_fingerprint(statistics)}",
                   calibration=calibration, device=device)

    def identity(self) -> dict[str, Any]:
        return {"metric": self.name, "reference": self.reference_name,
                "held_out": sum(len(s) for s in self.sources)}

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module) -> float:
        was_training = model.training
        model.eval()
        try:
            fakes = [model(*scoring_inputs(model, s, i)) for i, s in enumerate(self.sources)]
        finally:
            model.train(was_training)
        return float(self.metric_scorer.score(fakes))

    def __call__(self, config: Sequence[int]) -> float:
        with sub_network(self.model, self.space.widths(config), self.calibration) as model:
            return self.evaluate(model)

