"""Scorers: config -> quality number on a held-out set (L1 / PSNR / SWD / colour, FID / KID,
mIoU).

Scores are "lower is better" internally; a scorer with higher_is_better (PSNR) is negated only
for ranking, and stored as measured."""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
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


class SubNetworkScorer:
    """Base of the scorers: `evaluate(model)` scores any generator; calling the scorer with a
    config scores that sub-network of `self.model`, BatchNorm re-calibrated on
    `self.calibration` first."""

    model: ElasticGenerator
    space: SearchSpace
    calibration: list[torch.Tensor] | None

    def evaluate(self, model: torch.nn.Module) -> float:
        raise NotImplementedError

    def __call__(self, config: Sequence[int]) -> float:
        with sub_network(self.model, self.space.widths(config), self.calibration) as model:
            return self.evaluate(model)


def generate(model: torch.nn.Module, sources: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The model's outputs on each batch of held-out sources, in eval mode, without gradients."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return [model(*scoring_inputs(model, s, i)) for i, s in enumerate(sources)]
    finally:
        model.train(was_training)


@torch.no_grad()
@torch.no_grad()
def reconstruction_quality(model: torch.nn.Module,
                           batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
                           each: Callable[[torch.Tensor, torch.Tensor], None] | None = None
                           ) -> dict[str, float]:
    """The one L1 / PSNR loop: mean L1 (in [-1, 1] units) and PSNR (dB) per image of `model`
    (eval mode, restored after) against each batch's reference; `each(output, reference)` sees
    every batch too (the report accumulates distribution metrics in the same pass)."""
    was_training = model.training
    model.eval()
    l1 = psnr = 0.0
    count = 0
    try:
        for index, (source, ref) in enumerate(batches):
            fake = model(*scoring_inputs(model, source, index))
            l1 += (fake - ref).abs().flatten(1).mean(1).sum().item()
            psnr += psnr_per_image(fake, ref).sum().item()
            count += len(source)
            if each is not None:
                each(fake, ref)
    finally:
        model.train(was_training)
    return {"l1": l1 / count, "psnr": psnr / count}


class ReconstructionScorer(SubNetworkScorer):
    """Error of a sub-network on a fixed held-out set of (source, reference) batches.

    metric 'l1' (mean absolute error in [-1, 1] units, lower is better), 'psnr' (dB, higher is
    better), or a distance between the distributions of the outputs and of the references
    (lower is better, needs no downloaded weights): 'swd' (x 1e3, metrics/swd.py) or 'colour'
    (CIELAB a*b*, metrics/colour.py; RGB outputs), the references' side made once. The
    reference is the ground truth on paired data, or the teacher's output on unpaired data
    (distance to the teacher). BatchNorm generators are re-calibrated per sub-network on
    `calibration` batches first (docs/reference.md sec. 4).
    """

    def __init__(self, model: ElasticGenerator, space: SearchSpace,
                 batches: Sequence[tuple[torch.Tensor, torch.Tensor]], metric: str = "l1",
                 reference: str = "target", calibration: Sequence[torch.Tensor] | None = None,
                 device: str | torch.device = "cpu"):
        if metric not in ("l1", "psnr") + SET_METRICS:
            raise UserError(f"unknown reconstruction metric {metric!r}; use l1, psnr, swd or "
                            f"colour")
        if not batches:
            raise UserError("the held-out set for scoring is empty; use more training images or "
                            "a larger held-out fraction")
        self.model, self.space, self.metric, self.reference = model, space, metric, reference
        self.device = torch.device(device)
        self.batches = [(s.to(self.device), r.to(self.device)) for s, r in batches]
        self.calibration = [c.to(self.device) for c in calibration] if calibration else None
        self.name = f"{metric}-to-{reference}"
        self.higher_is_better = metric == "psnr"
        self.set_scorer = _set_scorer(metric, [r for _, r in self.batches])

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
        if self.metric not in SET_METRICS:
            return reconstruction_quality(model, self.batches)[self.metric]
        was_training = model.training
        model.eval()
        outputs = _set_accumulator(self.metric)
        try:
            for index, (source, _) in enumerate(self.batches):
                outputs.update(model(*scoring_inputs(model, source, index)))
        finally:
            model.train(was_training)
        return (self.set_scorer.score_descriptors(outputs) if self.metric == "swd"
                else self.set_scorer.score_pixels(outputs))


SET_METRICS = ("swd", "colour")  # distances between the outputs' and the references' sets


def _set_accumulator(metric: str) -> Any:
    if metric == "swd":
        from gancompress.metrics.swd import PatchDescriptors
        return PatchDescriptors()
    if metric == "colour":
        from gancompress.metrics.colour import ABPixels
        return ABPixels()
    return None


def _set_scorer(metric: str, references: Sequence[torch.Tensor]) -> Any:
    """The references' side of a set metric, made once (None for l1 / psnr)."""
    if metric == "swd":
        from gancompress.metrics.swd import SWDScorer
        return SWDScorer(references)
    if metric == "colour":
        from gancompress.metrics.colour import ColourScorer
        return ColourScorer(references)
    return None


class DistributionScorer(SubNetworkScorer):
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

    def evaluate(self, model: torch.nn.Module) -> float:
        return float(self.metric_scorer.score(generate(model, self.sources)))


class SegmentationScorer(SubNetworkScorer):
    """Cityscapes mIoU (DRN-D-105, metrics/segmentation.py) of a sub-network's photos made from
    held-out label maps, against those maps' train ids at the held-out resolution (the published
    protocol scores 2048x1024 labels; `gancompress eval --metrics miou` does). Higher is better.
    """

    higher_is_better = True
    name = "miou"

    def __init__(self, model: ElasticGenerator, space: SearchSpace,
                 batches: Sequence[tuple[torch.Tensor, torch.Tensor]], weights: str | None = None,
                 calibration: Sequence[torch.Tensor] | None = None,
                 device: str | torch.device = "cpu"):
        from gancompress.metrics.segmentation import MIoUScorer
        if not batches:
            raise UserError("the held-out set for scoring is empty; hold out some label maps "
                            "(compress.held_out)")
        self.model, self.space, self.device = model, space, torch.device(device)
        self.sources = [s.to(self.device) for s, _ in batches]
        self.labels = [labels for _, labels in batches]
        self.calibration = [c.to(self.device) for c in calibration] if calibration else None
        self.miou = MIoUScorer(weights or None, device=self.device,
                               out_size=tuple(self.labels[0].shape[-2:]))

    def identity(self) -> dict[str, Any]:
        return {"metric": self.name, "held_out": sum(len(s) for s in self.sources),
                "weights_sha256": self.miou.weights.sha256 if self.miou.weights else None}

    def evaluate(self, model: torch.nn.Module) -> float:
        return float(self.miou.score(zip(generate(model, self.sources), self.labels)))

