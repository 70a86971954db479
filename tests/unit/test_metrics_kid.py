"""KID: the unbiased MMD^2 estimator against a brute-force sum, its unbiasedness on samples
with a known population value, subsets, and reference handling."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from gancompress.errors import UserError
from gancompress.metrics.fid import FewSamplesWarning, ReferenceStats
from gancompress.metrics.kid import KIDScorer, kid, mmd2_unbiased, polynomial_kernel


def test_unbiased_mmd_matches_brute_force_sums():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 3)) + 0.5

    def k(a, b):
        return (a @ b / 3 + 1) ** 3

    m = 5
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m ** 2
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)
    assert polynomial_kernel(x, y)[1, 2] == pytest.approx(k(x[1], y[2]))


def test_kid_with_full_subsets_is_the_full_estimate_and_deterministic():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((30, 8)), rng.standard_normal((30, 8)) * 1.5
    mean, std = kid(x, y, num_subsets=7, subset_size=30)
    assert mean == pytest.approx(mmd2_unbiased(x, y), rel=1e-12) and std < 1e-12
    assert kid(x, y, num_subsets=5, subset_size=10, seed=3) == \
        kid(x, y, num_subsets=5, subset_size=10, seed=3)


def test_kid_is_unbiased_on_known_samples():
    """Linear kernel: the population MMD^2 is ||mu_x - mu_y||^2 exactly. The unbiased estimate
    averages to it; the biased (V-statistic) one would be too high by 2 tr(Sigma) / m = 0.16."""
    rng = np.random.default_rng(2)
    dim, m = 4, 50
    shift = np.array([0.5, 0.0, 0.0, 0.0])  # ||shift||^2 = 0.25
    x = rng.standard_normal((20000, dim))
    y = rng.standard_normal((20000, dim)) + shift
    mean, std = kid(x, y, num_subsets=400, subset_size=m, degree=1, gamma=1.0, coef0=0.0)
    assert mean == pytest.approx(0.25, abs=3 * std / np.sqrt(400) + 0.01)
    # same distribution, the default cubic kernel: centred on 0, not positive-biased
    same_mean, same_std = kid(x[:10000], x[10000:], num_subsets=200, subset_size=100)
    assert abs(same_mean) < 4 * same_std / np.sqrt(200)
    assert same_std > 0


def test_small_sets_warn_and_tiny_sets_fail():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((9, 4))
    with pytest.warns(FewSamplesWarning, match="subsets of 6 images instead of 1000"):
        kid(x, y, num_subsets=3)
    with pytest.raises(UserError, match="at least 2 images"):
        kid(x[:1], y)
    with pytest.raises(UserError, match="same D"):
        kid(x, y[:, :3])


def test_scorer_needs_reference_features():
    stats_only = ReferenceStats(np.zeros(2048), np.eye(2048), path="ref.npz")
    with pytest.raises(UserError, match="--save-features"):
        KIDScorer(stats_only, extractor=object())
    rng = np.random.default_rng(4)
    reference, same, shifted = (rng.standard_normal((20, 2048)) + s for s in (0, 0, 0.3))
    scorer = KIDScorer(reference, extractor=object(), num_subsets=4, subset_size=10)
    value = scorer.score_features(same)
    assert scorer.last["kid"] == value and scorer.last["kid_std"] > 0
    assert abs(value) < 0.05 < scorer.score_features(shifted)
