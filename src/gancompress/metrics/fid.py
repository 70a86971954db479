"""Frechet Inception Distance: the published preprocessing, Inception features, statistics,
the distance, reference-statistics files, and a scorer for the compression search.

Protocol (docs/reference.md sec. 5, as pytorch-fid / gan-compression compute it):
  1. generated images (B, C, H, W) in [-1, 1] -> uint8 by (x + 1) / 2 * 255, clipped, truncated
     (not rounded); grayscale is repeated to 3 channels;
  2. uint8 / 255 -> bilinear resize to 299x299 (align_corners=False) -> 2x - 1, i.e. [-1, 1];
  3. FID Inception-v3 (`pt_inception-2015-12-05-6726825d.pth`) -> 2048-d pool3 features;
  4. mean and unbiased covariance in float64;
  5. d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)).
Tr(sqrtm(S1 S2)) is computed by default (method="eigh") as sum(sqrt(eig(S1^1/2 S2 S1^1/2))):
S1 S2 is similar to that symmetric PSD matrix, so this is the same number without complex
arithmetic or NaN, and 3-20x faster on 2048x2048 (bench/bench_metrics.py); on real-sized
statistics it agrees with scipy's sqrtm to ~1e-12 relative. method="sqrtm" reproduces the
published computation (scipy.linalg.sqrtm of the non-symmetric product, 1e-6 added to both
diagonals if it is singular, a negligible imaginary part dropped).

Reference statistics are .npz files with `mu` (2048,) and `sigma` (2048, 2048) (compatible with
the published files); ours add `meta`, a JSON string saying how they were made, and optionally
`features` (N, 2048) float32 so KID can use the same file.
"""
from __future__ import annotations

import json
import zipfile
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gancompress.errors import UserError
from gancompress.files import atomic_path
from gancompress.imaging import to_uint8_tensor
from gancompress.metrics.inception import FEATURE_DIM, INPUT_SIZE, FIDInceptionV3
from gancompress.weights import INCEPTION_FID, WeightsRecord, load_published


class FewSamplesWarning(UserWarning):
    """Fewer samples than a stable FID / KID needs."""


# ----------------------------------------------------------------------------- preprocessing
def inception_input(images: torch.Tensor) -> torch.Tensor:
    """Published FID preprocessing: [-1, 1] (or uint8) images -> (B, 3, 299, 299) in [-1, 1]."""
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise UserError(f"FID needs images of shape (B, 3, H, W) or (B, 1, H, W); got "
                        f"{tuple(images.shape)}")
    x = to_uint8_tensor(images).float() / 255
    if x.shape[1] == 1:  # grayscale: the reference tiles the channel (tensor2im)
        x = x.expand(-1, 3, -1, -1)
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return 2 * x - 1


# ----------------------------------------------------------------------------- features
def load_inception(weights: str | Path | None = None, weights_dir: str | Path | None = None,
                   device: str | torch.device = "cpu") -> tuple[FIDInceptionV3, WeightsRecord]:
    """The FID Inception-v3 with the published weights (strict load), eval mode, on `device`."""
    with torch.device("meta"):  # every tensor comes from the file: skip random init
        model = FIDInceptionV3()
    record = load_published(model, INCEPTION_FID, explicit=weights, weights_dir=weights_dir)
    return model.to(device).eval().requires_grad_(False), record


def _batches(images: torch.Tensor | Iterable[torch.Tensor], batch_size: int
             ) -> Iterable[torch.Tensor]:
    if isinstance(images, torch.Tensor):
        images = images.unsqueeze(0) if images.dim() == 3 else images
        yield from images.split(batch_size)
        return
    for item in images:
        if isinstance(item, Mapping):  # a dataset batch: score its generated/target side
            raise UserError("pass image tensors, not dataset dicts, to the FID feature extractor")
        item = item.unsqueeze(0) if item.dim() == 3 else item
        yield from item.split(batch_size)


class InceptionExtractor:
    """Inception pool3 features of image batches: `extractor(images) -> (N, 2048) float64`.

    `images`: a tensor (N, C, H, W) / (C, H, W), or an iterable of such tensors, in [-1, 1]
    (or uint8). Load once and share between scorers: the network has 24M parameters.
    """

    def __init__(self, weights: str | Path | None = None, weights_dir: str | Path | None = None,
                 device: str | torch.device = "cpu", batch_size: int = 50) -> None:
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model, self.weights = load_inception(weights, weights_dir, self.device)

    @torch.no_grad()
    def features_of_batch(self, images: torch.Tensor) -> np.ndarray:
        x = inception_input(images.to(self.device, non_blocking=True))
        return self.model(x).double().cpu().numpy()

    def __call__(self, images: torch.Tensor | Iterable[torch.Tensor], progress: bool = False,
                 total: int | None = None, desc: str = "inception") -> np.ndarray:
        chunks: list[np.ndarray] = []
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=total, desc=desc, unit="img", leave=False)
        for batch in _batches(images, self.batch_size):
            chunks.append(self.features_of_batch(batch))
            if bar is not None:
                bar.update(len(batch))
        if bar is not None:
            bar.close()
        if not chunks:
            raise UserError("no images to compute Inception features of")
        return np.concatenate(chunks)

    def protocol(self) -> dict[str, Any]:
        return {"network": "FID Inception-v3 (TF 2015-12-05 graph, pytorch-fid port)",
                "features": f"pool3, {FEATURE_DIM}-d",
                "preprocess": "uint8 truncation ((x+1)/2*255, clipped), /255, bilinear resize to "
                              "299x299 (align_corners=False), scaled to [-1, 1]",
                "weights": self.weights.as_dict()}


# ----------------------------------------------------------------------------- statistics
def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) features -> mean (D,) and unbiased covariance (D, D), both float64.

    Warns (FewSamplesWarning) when N < D: the covariance is then singular and the FID biased.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise UserError(f"features must be a (N, D) array, got shape {features.shape}")
    n, dim = features.shape
    if n < 2:
        raise UserError(f"statistics need at least 2 images, got {n}")
    if n < dim:
        warnings.warn(f"only {n} images for {dim}-d features: the covariance is singular and "
                      f"FID is biased upwards and unstable; use at least {dim} images (published "
                      f"numbers use the whole test set)", FewSamplesWarning, stacklevel=2)
    if not np.isfinite(features).all():
        raise UserError("the features contain NaN or inf (did the generator output NaN?)")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _trace_sqrt_product_sqrtm(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> float:
    """Tr(sqrtm(S1 S2)) the published way (scipy Schur-based sqrtm of the non-symmetric product)."""
    from scipy import linalg

    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        warnings.warn(f"FID: the covariance product is singular; adding {eps} to both diagonals "
                      f"(as the published code does)", RuntimeWarning, stacklevel=3)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.abs(np.diagonal(covmean).imag).max()
        if imag > 1e-3:
            warnings.warn(f"FID: sqrtm has an imaginary part up to {imag:.3g} on its diagonal; "
                          f"the value may be inaccurate (too few samples?); method='eigh' is "
                          f"the stable alternative", RuntimeWarning, stacklevel=3)
        covmean = covmean.real
    return float(np.trace(covmean))


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _trace_sqrt_product_eigh(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr(sqrtm(S1 S2)) = sum sqrt(eig(S1^1/2 S2 S1^1/2)): S1 S2 is similar to that symmetric
    PSD matrix, so its eigenvalues are real and >= 0 (rounding negatives are clipped)."""
    root1 = _psd_sqrt(sigma1)
    m = root1 @ sigma2 @ root1
    eig = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(eig, 0, None)).sum())


FID_METHODS = ("sqrtm", "eigh")


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6, method: str = "eigh") -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (float64 throughout)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or \
            sigma1.shape != (mu1.shape[0], mu1.shape[0]):
        raise UserError(f"statistics of different dimensions: mu {mu1.shape} vs {mu2.shape}, "
                        f"sigma {sigma1.shape} vs {sigma2.shape}; both sides must come from the "
                        f"same {FEATURE_DIM}-d Inception features")
    if method not in FID_METHODS:
        raise UserError(f"unknown FID method {method!r}; choose one of {', '.join(FID_METHODS)}")
    diff = mu1 - mu2
    if method == "sqrtm":
        tr_covmean = _trace_sqrt_product_sqrtm(sigma1, sigma2, eps)
    else:
        tr_covmean = _trace_sqrt_product_eigh(sigma1, sigma2)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


# ----------------------------------------------------------------------------- files
@dataclass
class ReferenceStats:
    """Reference statistics: mean, covariance, how they were made, optionally the features."""

    mu: np.ndarray
    sigma: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    features: np.ndarray | None = None
    path: str | None = None


def save_statistics(path: str | Path, mu: np.ndarray, sigma: np.ndarray,
                    meta: Mapping[str, Any] | None = None, features: np.ndarray | None = None,
                    overwrite: bool = False) -> None:
    """Write an .npz with `mu`, `sigma`, `meta` (JSON string) [, `features`], atomically.

    Loadable with plain np.load (no pickle). Refuses to replace an existing file unless
    `overwrite`.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"{path} already exists; choose another --out or pass --force")
    arrays: dict[str, np.ndarray] = {
        "mu": np.asarray(mu, np.float64), "sigma": np.asarray(sigma, np.float64),
        "meta": np.array(json.dumps(dict(meta or {}), sort_keys=True, default=str))}
    if features is not None:
        arrays["features"] = np.asarray(features, np.float32)
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)  # a file object: np.savez would append ".npz" to a path


def load_statistics(path: str | Path, dim: int | None = FEATURE_DIM) -> ReferenceStats:
    """Read reference statistics (ours or the published files); clear errors on bad files."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"statistics file not found: {path} (make one with `gancompress stats "
                        f"--data DIR --out FILE.npz`)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise UserError(f"cannot read statistics file {path}: {err or type(err).__name__} (expected an .npz with "
                        f"arrays 'mu' and 'sigma')") from None
    missing = [k for k in ("mu", "sigma") if k not in arrays]
    if missing:
        raise UserError(f"{path} has no {' or '.join(repr(k) for k in missing)} array (it has "
                        f"{sorted(arrays)}); reference statistics need 'mu' (D,) and 'sigma' "
                        f"(D, D): make them with `gancompress stats`")
    mu, sigma = arrays["mu"].astype(np.float64), arrays["sigma"].astype(np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise UserError(f"{path}: mu has shape {mu.shape} and sigma {sigma.shape}; expected "
                        f"(D,) and (D, D)")
    if dim is not None and mu.shape[0] != dim:
        raise UserError(f"{path} holds {mu.shape[0]}-d statistics, but FID uses {dim}-d "
                        f"Inception pool3 features; recompute them with `gancompress stats`")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise UserError(f"{path} contains NaN or inf values; recompute it")
    meta: dict[str, Any] = {}
    if "meta" in arrays:
        try:
            meta = json.loads(str(arrays["meta"]))
        except json.JSONDecodeError:
            meta = {"raw": str(arrays["meta"])}
    features = arrays.get("features")
    if features is not None and (features.ndim != 2 or features.shape[1] != mu.shape[0]):
        raise UserError(f"{path}: 'features' has shape {features.shape}, expected (N, "
                        f"{mu.shape[0]})")
    return ReferenceStats(mu=mu, sigma=sigma, meta=meta, features=features, path=str(path))


# ----------------------------------------------------------------------------- scorer
class FIDScorer:
    """FID of generated images against fixed reference statistics, for evaluation and search.

        scorer = FIDScorer("real_stat/edges2shoes_B.npz", device="cuda")
        value = scorer.score(fake_batches)        # iterable of (B, 3, H, W) in [-1, 1]

    `reference`: a statistics file, a ReferenceStats, or a (mu, sigma) pair. Pass `extractor`
    to share one Inception network between scorers. `.last` keeps the details of the last score.
    With method "eigh", repeated scoring avoids most of the 2048^3 work (see _trace_sqrt_product).
    """

    def __init__(self, reference: str | Path | ReferenceStats | tuple[np.ndarray, np.ndarray],
                 weights: str | Path | None = None, weights_dir: str | Path | None = None,
                 device: str | torch.device = "cpu", method: str = "eigh", batch_size: int = 50,
                 extractor: InceptionExtractor | None = None) -> None:
        if isinstance(reference, (str, Path)):
            reference = load_statistics(reference)
        elif not isinstance(reference, ReferenceStats):
            mu, sigma = reference
            reference = ReferenceStats(np.asarray(mu, np.float64), np.asarray(sigma, np.float64))
        if method not in FID_METHODS:
            raise UserError(f"unknown FID method {method!r}; choose one of {', '.join(FID_METHODS)}")
        self.reference = reference
        self.method = method
        self._ref_root: np.ndarray | None = None
        self.extractor = extractor or InceptionExtractor(weights, weights_dir, device, batch_size)
        self.last: dict[str, Any] = {}

    def score_features(self, features: np.ndarray) -> float:
        mu, sigma = statistics(features)
        ref = self.reference
        if self.method == "eigh":
            if mu.shape != ref.mu.shape:
                frechet_distance(mu, sigma, ref.mu, ref.sigma)  # raises the dimension error
            tr_covmean = self._trace_sqrt_product(np.asarray(features, np.float64) - mu)
            diff = mu - ref.mu
            value = float(diff @ diff + np.trace(sigma) + np.trace(ref.sigma) - 2 * tr_covmean)
        else:
            value = frechet_distance(mu, sigma, ref.mu, ref.sigma, method=self.method)
        self.last = {"fid": value, "num_images": int(len(features))}
        return value

    def _trace_sqrt_product(self, centred: np.ndarray) -> float:
        """Tr(sqrtm(S R)) for S = X^T X / (n-1) (X: centred features) and the reference R.

        Same value as _trace_sqrt_product_eigh, faster for a scorer called many times (search):
        with n < D images, S R has the nonzero eigenvalues of the small n x n PSD matrix
        X R X^T / (n-1) (no D x D decomposition at all); otherwise R^1/2 is computed once per
        scorer and only R^1/2 S R^1/2 is decomposed per call.
        """
        n, dim = centred.shape
        if n < dim:
            small = centred @ self.reference.sigma @ centred.T / (n - 1)
            eig = np.linalg.eigvalsh((small + small.T) / 2)
        else:
            if getattr(self, "_ref_root", None) is None:
                self._ref_root = _psd_sqrt(self.reference.sigma)
            root = self._ref_root
            m = root @ (centred.T @ centred / (n - 1)) @ root
            eig = np.linalg.eigvalsh((m + m.T) / 2)
        return float(np.sqrt(np.clip(eig, 0, None)).sum())

    def score(self, images: torch.Tensor | Iterable[torch.Tensor], progress: bool = False,
              total: int | None = None) -> float:
        return self.score_features(self.extractor(images, progress=progress, total=total))

    def protocol(self) -> dict[str, Any]:
        ref = {"path": self.reference.path, **({"meta": self.reference.meta}
                                                if self.reference.meta else {})}
        return {**self.extractor.protocol(), "statistics": "mean, unbiased covariance (float64)",
                "distance": f"||mu1-mu2||^2 + Tr(S1+S2-2 sqrtm(S1 S2)), method {self.method}",
                "reference": ref}
