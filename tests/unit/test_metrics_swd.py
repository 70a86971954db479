"""SWD (Karras et al. 2018): the pyramid against an independent scipy computation of the
published filters, the exact W1 of unequal sets, zero on identical sets, growth with a known
shift, determinism, small images, and the grey colorization check."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch

from gancompress.errors import UserError
from gancompress.metrics.swd import (
    PatchDescriptors,
    SWDScorer,
    SWDSettings,
    describe,
    laplacian_pyramid,
    num_levels,
    swd,
    swd_of_descriptors,
    wasserstein1_sorted,
)


def _images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Smooth random colour images (low-pass noise): structure at every pyramid level."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size // 4, size // 4, generator=g)
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                        align_corners=False)
    x = x + 0.3 * torch.randn(n, 3, size, size, generator=g)
    return (x / 2).clamp(-1, 1)


def _scipy_pyramid(x: np.ndarray, levels: int) -> list[np.ndarray]:
    """cv2.pyrDown/pyrUp through scipy.ndimage (the published implementation's route)."""
    k = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float64)[None, None] / 256

    def down(a):
        return scipy.ndimage.convolve(a, k, mode="mirror")[:, :, ::2, ::2]

    def up(a):
        out = np.zeros((a.shape[0], a.shape[1], a.shape[2] * 2, a.shape[3] * 2))
        out[:, :, ::2, ::2] = a
        return scipy.ndimage.convolve(out, k * 4, mode="mirror")

    pyramid = [x]
    for _ in range(1, levels):
        pyramid.append(down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - up(pyramid[-1])
    return pyramid


def test_pyramid_matches_the_published_filters():
    x = np.random.default_rng(0).uniform(0, 255, (2, 3, 32, 32))
    ours = laplacian_pyramid(torch.from_numpy(x), 2)
    ref = _scipy_pyramid(x, 2)
    assert [tuple(level.shape[-2:]) for level in ours] == [(32, 32), (16, 16)]
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a.numpy(), b, atol=1e-9)


def test_levels_down_to_16_px_and_small_images():
    assert num_levels(256, 256) == 5                      # 256 .. 16, as published
    assert num_levels(64, 64) == 3 and num_levels(32, 32) == 2
    assert num_levels(256, 512) == 5                      # the shorter side counts
    assert num_levels(12, 12) == 1                        # under 16 px: the image itself
    acc = describe(_images(2, 12))
    assert acc.resolutions == [(12, 12)] and acc.levels[0][0].shape == (2 * 128, 3, 7, 7)
    with pytest.raises(UserError, match="smaller than"):
        describe(torch.zeros(1, 3, 6, 6))


def test_wasserstein1_of_unequal_sets_is_exact():
    a = torch.tensor([[0.0, 1.0]])                        # uniform on {0, 1}
    b = torch.tensor([[0.0, 0.0, 3.0]])                   # 2/3 at 0, 1/3 at 3
    # quantile functions: a = 0 on (0, 1/2], 1 after; b = 0 on (0, 2/3], 3 after
    expected = (2 / 3 - 1 / 2) * 1 + (1 - 2 / 3) * 2
    assert wasserstein1_sorted(a, b).item() == pytest.approx(expected)
    assert wasserstein1_sorted(b, a).item() == pytest.approx(expected)
    equal = torch.tensor([[0.0, 2.0]])
    assert wasserstein1_sorted(a, equal).item() == pytest.approx(0.5)  # mean |sorted diff|
    # against a brute-force W1: the integral of |F_a - F_b| over the line
    rng = np.random.default_rng(0)
    x, y = np.sort(rng.normal(size=7)), np.sort(rng.normal(1, 2, size=4))
    grid = np.linspace(-10, 10, 200001)
    cdf = [np.searchsorted(v, grid, side="right") / len(v) for v in (x, y)]
    brute = np.abs(cdf[0] - cdf[1]).sum() * (grid[1] - grid[0])
    ours = wasserstein1_sorted(torch.from_numpy(x)[None], torch.from_numpy(y)[None]).item()
    assert ours == pytest.approx(brute, rel=1e-3)


def test_identical_sets_score_zero_however_batched():
    x = _images(6)
    assert swd(x, x) == 0.0
    assert swd([x[:2], x[2:]], x) == 0.0                  # positions drawn per image index
    other = _images(6, seed=1)
    assert swd(other, x) > 5


def test_swd_grows_with_a_known_shift():
    """Added noise of growing strength (a shift of the patch distribution towards noise) and a
    growing blur (towards fewer details): SWD grows with both."""
    x = _images(8)
    g = torch.Generator().manual_seed(3)
    noise = torch.randn(x.shape, generator=g)
    noisy = [swd((x + s * noise).clamp(-1, 1), x) for s in (0.05, 0.15, 0.4)]
    assert 0 < noisy[0] < noisy[1] < noisy[2]
    blurred = [swd(torch.nn.functional.avg_pool2d(x, k, 1, k // 2), x) for k in (3, 5, 7)]
    assert 0 < blurred[0] < blurred[1] < blurred[2]


def test_deterministic_for_a_seed_and_the_scorer_agrees():
    x, y = _images(4), _images(5, seed=2)
    assert swd(x, y) == swd(x, y)
    assert swd(x, y, SWDSettings(seed=1)) != swd(x, y)
    scorer = SWDScorer(y)
    assert scorer.score(x) == pytest.approx(swd(x, y), rel=1e-6)
    assert set(scorer.last["levels"]) == {"32", "16"}
    result = swd_of_descriptors(describe(x), describe(y))
    assert result["swd"] == pytest.approx(sum(result["levels"].values()) / 2)
    assert scorer.protocol()["settings"]["dirs_per_repeat"] == 128


def test_sets_must_agree_in_size():
    acc = PatchDescriptors()
    acc.update(_images(1, 32))
    with pytest.raises(UserError, match="one size"):
        acc.update(_images(1, 64))
    with pytest.raises(UserError, match="one size"):
        swd(_images(2, 32), _images(2, 64))
    with pytest.raises(UserError, match="no images"):
        PatchDescriptors().finalized()


def test_grey_scores_worse_than_close_colours_on_demo_colorization(demo_pairs):
    source, target = demo_pairs
    close = (target + 0.05 * torch.randn(target.shape,
                                         generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    assert swd(source, target) > swd(close, target) > 0


@pytest.fixture(scope="module")
def demo_pairs(tmp_path_factory):
    from gancompress.data import open_dataset
    from gancompress.data.demo import write_demo_data

    root = tmp_path_factory.mktemp("demo") / "data"
    write_demo_data(root, size=32, n_train=4, n_test=16)
    ds = open_dataset(root, mode="aligned", phase="test", direction="AtoB",
                      preprocess="resize_and_crop", load_size=32, crop_size=32, flip=False,
                      in_channels=3, out_channels=3, augment=False)
    items = [ds[i] for i in range(len(ds))]
    return (torch.stack([it["source"] for it in items]),
            torch.stack([it["target"] for it in items]))
