"""FID: published preprocessing, float64 statistics, the Frechet distance (closed forms, both
methods, singular cases), statistics files, and the scorer on random published-layout weights."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from helpers import random_inception_file

from gancompress.errors import UserError
from gancompress.imaging import to_uint8, to_uint8_tensor
from gancompress.metrics.fid import (
    FewSamplesWarning,
    FIDScorer,
    InceptionExtractor,
    frechet_distance,
    inception_input,
    load_statistics,
    save_statistics,
    statistics,
)

METHODS = ["eigh", "sqrtm"]


# ----------------------------------------------------------------------------- preprocessing
def test_uint8_truncation_matches_published_rule():
    # (x + 1) / 2 * 255 = 254.9 -> 254 (truncated, not rounded); out of range values clip.
    x = torch.tensor([254.9 / 127.5 - 1, -1.5, 1.5, 0.0, 2 / 255 - 1 + 1e-4]).view(1, 1, 1, 5)
    assert to_uint8_tensor(x).flatten().tolist() == [254, 0, 255, 127, 1]
    assert np.array_equal(to_uint8_tensor(x)[0].permute(1, 2, 0).numpy(), to_uint8(x[0]))


def _bilinear_half_pixel(image: np.ndarray, out: int) -> np.ndarray:
    """Independent separable bilinear resize (align_corners=False, edges clamped), float64."""
    def matrix(n_in):
        m = np.zeros((out, n_in))
        for i in range(out):
            src = max((i + 0.5) * n_in / out - 0.5, 0.0)
            lo = min(int(np.floor(src)), n_in - 1)
            hi = min(lo + 1, n_in - 1)
            frac = src - lo
            m[i, lo] += 1 - frac
            m[i, hi] += frac
        return m
    rows, cols = matrix(image.shape[0]), matrix(image.shape[1])
    return rows @ image @ cols.T


def test_inception_input_is_uint8_then_bilinear_299_then_minus1_1():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 8, 12, generator=gen) * 2.2 - 1.1  # some values outside [-1, 1]
    out = inception_input(x)
    assert out.shape == (2, 3, 299, 299) and out.dtype == torch.float32
    u8 = np.floor(np.clip((x.double().numpy() + 1) / 2 * 255, 0, 255))
    for b in range(2):
        for c in range(3):
            expected = _bilinear_half_pixel(u8[b, c] / 255, 299) * 2 - 1
            assert np.abs(out[b, c].double().numpy() - expected).max() < 1e-5
    gray = inception_input(x[:, :1])
    assert torch.equal(gray[:, 0], gray[:, 2]) and torch.equal(gray[:, 0], out[:, 0] * 0 + gray[:, 1])


# ----------------------------------------------------------------------------- statistics
def test_statistics_are_float64_mean_and_unbiased_covariance():
    feats = np.random.default_rng(0).standard_normal((50, 6)).astype(np.float32)
    mu, sigma = statistics(feats)
    assert mu.dtype == sigma.dtype == np.float64
    f = feats.astype(np.float64)
    centred = f - f.mean(0)
    np.testing.assert_allclose(sigma, centred.T @ centred / 49, rtol=1e-12)
    np.testing.assert_allclose(mu, f.mean(0), rtol=1e-12)


def test_few_samples_warn_and_one_sample_is_an_error():
    with pytest.warns(FewSamplesWarning, match="only 5 images for 8-d features"):
        statistics(np.ones((5, 8)) + np.arange(40).reshape(5, 8) ** 2)
    with pytest.raises(UserError, match="at least 2 images"):
        statistics(np.ones((1, 8)))


# ----------------------------------------------------------------------------- distance
@pytest.mark.parametrize("method", METHODS)
def test_fid_of_a_set_with_itself_is_zero(method):
    feats = np.random.default_rng(1).standard_normal((400, 16)) * 3 + 1
    mu, sigma = statistics(feats)
    assert abs(frechet_distance(mu, sigma, mu, sigma, method=method)) < 1e-8


@pytest.mark.parametrize("method", METHODS)
def test_fid_matches_closed_forms(method):
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.standard_normal(5), rng.standard_normal(5)
    a, b = rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 5)
    # diagonal covariances: sum (a + b - 2 sqrt(ab)) = sum (sqrt a - sqrt b)^2
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b), method=method) == \
        pytest.approx(expected, rel=1e-10)
    # commuting full covariances S2 = c^2 S1: Tr(S1 + S2 - 2 c S1) = (1 - c)^2 Tr S1
    q = rng.standard_normal((5, 5))
    s1, c = q @ q.T + 0.1 * np.eye(5), 1.7
    expected = np.sum((mu1 - mu2) ** 2) + (1 - c) ** 2 * np.trace(s1)
    assert frechet_distance(mu1, s1, mu2, c * c * s1, method=method) == \
        pytest.approx(expected, rel=1e-10)


def test_fid_of_sampled_gaussians_approaches_closed_form():
    rng = np.random.default_rng(3)
    n, dim = 200_000, 4
    x = rng.standard_normal((n, dim)) * np.sqrt([1.0, 2.0, 0.5, 1.0]) + [0, 1, 0, 0]
    y = rng.standard_normal((n, dim)) * np.sqrt([2.0, 2.0, 0.5, 0.25])
    exact = 1.0 + (1 - np.sqrt(2)) ** 2 + (1 - 0.5) ** 2
    value = frechet_distance(*statistics(x), *statistics(y))
    assert value == pytest.approx(exact, abs=0.03)


@pytest.mark.parametrize("method", METHODS)
def test_singular_covariances_give_a_finite_value(method):
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((3, 10)), rng.standard_normal((3, 10)) + 1  # rank 2 in 10-d
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m1, s1 = statistics(x)
        m2, s2 = statistics(y)
        value = frechet_distance(m1, s1, m2, s2, method=method)
    assert np.isfinite(value) and value > 0
    ref = frechet_distance(m1, s1, m2, s2, method="eigh")
    assert value == pytest.approx(ref, rel=1e-4)


def test_dimension_mismatch_and_unknown_method_are_user_errors():
    with pytest.raises(UserError, match="different dimensions"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(UserError, match="unknown FID method"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3), method="svd")


# ----------------------------------------------------------------------------- files
def test_statistics_file_round_trip_and_plain_np_load(tmp_path):
    rng = np.random.default_rng(5)
    mu, sigma, feats = rng.standard_normal(2048), np.eye(2048), rng.standard_normal((3, 2048))
    path = tmp_path / "ref.npz"
    save_statistics(path, mu, sigma, {"num_images": 3, "weights": {"sha256": "ab"}}, feats)
    with np.load(path, allow_pickle=False) as data:  # published readers: np.load(...)['mu']
        assert set(data.files) == {"mu", "sigma", "meta", "features"}
        assert np.array_equal(data["mu"], mu) and data["sigma"].dtype == np.float64
        assert json.loads(str(data["meta"]))["num_images"] == 3
    ref = load_statistics(path)
    assert ref.meta["weights"]["sha256"] == "ab" and ref.features.shape == (3, 2048)
    with pytest.raises(UserError, match="already exists"):
        save_statistics(path, mu, sigma)
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left nothing behind


def test_published_style_file_without_meta_loads(tmp_path):
    path = tmp_path / "published.npz"
    np.savez(path, mu=np.zeros(2048), sigma=np.eye(2048))
    ref = load_statistics(path)
    assert ref.meta == {} and ref.features is None and ref.sigma.shape == (2048, 2048)


@pytest.mark.parametrize("content, message", [
    ({"mu": np.zeros(2048)}, "no 'sigma'"),
    ({"m": np.zeros(2048), "s": np.eye(2048)}, "no 'mu' or 'sigma'"),
    ({"mu": np.zeros(64), "sigma": np.eye(64)}, "64-d statistics"),
    ({"mu": np.zeros(2048), "sigma": np.eye(64)}, "expected"),
    ({"mu": np.full(2048, np.nan), "sigma": np.eye(2048)}, "NaN"),
])
def test_bad_statistics_files_are_user_errors(tmp_path, content, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **content)
    with pytest.raises(UserError, match=message):
        load_statistics(path)


def test_missing_or_corrupt_statistics_file(tmp_path):
    with pytest.raises(UserError, match="gancompress stats"):
        load_statistics(tmp_path / "none.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="cannot read statistics"):
        load_statistics(tmp_path / "bad.npz")


# ----------------------------------------------------------------------------- scorer
def test_scorer_on_random_published_layout_weights():
    """FIDScorer loads the weights through the real lookup, records their hash, and gives ~0
    for images against their own statistics and > 0 against other images."""
    extractor = InceptionExtractor(weights=random_inception_file(), batch_size=2)
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(3, 3, 32, 32, generator=gen) * 2 - 1
    feats = extractor(images)  # split into batches of 2 and 1
    assert feats.shape == (3, 2048) and feats.dtype == np.float64 and np.isfinite(feats).all()
    np.testing.assert_allclose(extractor([images[:1], images[1:]]), feats, rtol=1e-4, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)
        scorer = FIDScorer(statistics(feats), extractor=extractor)
        assert abs(scorer.score_features(feats)) < 1e-6
        assert scorer.score_features(feats[:2]) > 1e-3
    protocol = scorer.protocol()
    assert protocol["weights"]["sha256"] == extractor.weights.sha256
    assert len(protocol["weights"]["sha256"]) == 64


@pytest.mark.parametrize("n", [5, 60])
def test_scorer_fast_path_equals_frechet_distance(n):
    """The scorer's per-call shortcut (n x n problem for n < D, cached reference root for
    n >= D) gives the same number as the general formula, with either method."""
    rng = np.random.default_rng(6)
    ref_feats = rng.standard_normal((80, 16)) @ rng.standard_normal((16, 16))
    feats = rng.standard_normal((n, 16)) * 1.3 + 0.2
    ref = statistics(ref_feats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)
        expected = frechet_distance(*statistics(feats), *ref, method="sqrtm")
        for method in METHODS:
            scorer = FIDScorer(ref, method=method, extractor=object())
            assert scorer.score_features(feats) == pytest.approx(expected, rel=1e-8)
            assert scorer.score_features(feats) == pytest.approx(expected, rel=1e-8)  # cached
