"""Kernel Inception Distance (Binkowski et al., "Demystifying MMD GANs", ICLR 2018).

KID = unbiased estimate of the squared MMD between Inception pool3 features of two image sets,
with the polynomial kernel k(x, y) = (gamma x.y + coef0)^degree, gamma = 1/D, coef0 = 1,
degree 3. It is averaged over `num_subsets` random subsets of `subset_size` samples drawn
without replacement from each set (defaults 100 x 1000, as torch-fidelity and clean-fid), and
the mean and standard deviation over subsets are reported. Unlike FID it is unbiased, so it is
meaningful on small sets.

Unbiased MMD^2 on subsets X, Y of size m (diagonal terms k(x_i, x_i) excluded):
    sum_{i!=j} k(x_i, x_j) / (m (m-1)) + sum_{i!=j} k(y_i, y_j) / (m (m-1))
    - 2 sum_{i,j} k(x_i, y_j) / m^2
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gancompress.errors import UserError
from gancompress.metrics.fid import (
    FewSamplesWarning,
    InceptionExtractor,
    ReferenceStats,
    load_statistics,
)


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                      coef0: float = 1.0) -> np.ndarray:
    """(n, D), (m, D) -> (n, m) kernel matrix (gamma x.y + coef0)^degree; gamma defaults to 1/D."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (gamma * (x @ y.T) + coef0) ** degree


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                  coef0: float = 1.0) -> float:
    """Unbiased squared MMD between two samples of equal size m >= 2."""
    m = x.shape[0]
    if m < 2 or y.shape[0] != m:
        raise ValueError("mmd2_unbiased needs two samples of the same size >= 2")
    kxx = polynomial_kernel(x, x, degree, gamma, coef0)
    kyy = polynomial_kernel(y, y, degree, gamma, coef0)
    kxy = polynomial_kernel(x, y, degree, gamma, coef0)
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2 * kxy.mean())


def kid(features1: np.ndarray, features2: np.ndarray, num_subsets: int = 100,
        subset_size: int = 1000, degree: int = 3, gamma: float | None = None, coef0: float = 1.0,
        seed: int = 0) -> tuple[float, float]:
    """KID (mean, std over subsets) between (N1, D) and (N2, D) feature arrays.

    When a set is smaller than `subset_size`, subsets of min(N1, N2) are used, with a warning.
    Deterministic for a given `seed`.
    """
    f1 = np.asarray(features1, np.float64)
    f2 = np.asarray(features2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise UserError(f"KID needs two (N, D) feature arrays of the same D; got {f1.shape} and "
                        f"{f2.shape}")
    m = min(subset_size, len(f1), len(f2))
    if m < 2:
        raise UserError(f"KID needs at least 2 images on each side; got {len(f1)} and {len(f2)}")
    if m < subset_size:
        warnings.warn(f"KID: subsets of {m} images instead of {subset_size} (only {len(f1)} and "
                      f"{len(f2)} images); the estimate stays unbiased but is noisier",
                      FewSamplesWarning, stacklevel=2)
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets)
    for i in range(num_subsets):
        x = f1[rng.choice(len(f1), m, replace=False)]
        y = f2[rng.choice(len(f2), m, replace=False)]
        values[i] = mmd2_unbiased(x, y, degree, gamma, coef0)
    return float(values.mean()), float(values.std())


class KIDScorer:
    """KID of generated images against reference features (a stats file saved with features,
    or an (N, 2048) array). `.score(images) -> float` (the mean); `.last` has mean and std."""

    def __init__(self, reference: str | Path | ReferenceStats | np.ndarray,
                 weights: str | Path | None = None, weights_dir: str | Path | None = None,
                 device: str | torch.device = "cpu", num_subsets: int = 100,
                 subset_size: int = 1000, seed: int = 0, batch_size: int = 50,
                 extractor: InceptionExtractor | None = None) -> None:
        if isinstance(reference, (str, Path)):
            reference = load_statistics(reference)
        if isinstance(reference, ReferenceStats):
            if reference.features is None:
                raise UserError(f"KID needs reference features, and {reference.path} holds only "
                                f"mu/sigma: recompute it with `gancompress stats --save-features`, "
                                f"or let `eval` use the real images of the data folder")
            reference = reference.features
        self.reference = np.asarray(reference, np.float64)
        self.num_subsets, self.subset_size, self.seed = num_subsets, subset_size, seed
        self.extractor = extractor or InceptionExtractor(weights, weights_dir, device, batch_size)
        self.last: dict[str, Any] = {}

    def score_features(self, features: np.ndarray) -> float:
        mean, std = kid(features, self.reference, self.num_subsets, self.subset_size,
                        seed=self.seed)
        self.last = {"kid": mean, "kid_std": std, "num_images": int(len(features))}
        return mean

    def score(self, images: torch.Tensor | Iterable[torch.Tensor], progress: bool = False,
              total: int | None = None) -> float:
        return self.score_features(self.extractor(images, progress=progress, total=total))

    def protocol(self) -> dict[str, Any]:
        return {**self.extractor.protocol(),
                "estimator": f"unbiased MMD^2, polynomial kernel (x.y/D + 1)^3, {self.num_subsets} "
                             f"subsets of {self.subset_size}, seed {self.seed}, mean and std"}
