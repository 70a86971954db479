"""The colour metric: torch sRGB -> CIELAB against scikit-image and known values, the sliced W1
of a*b* pixels (zero on identical sets, the exact value of a known shift, monotone in it), and
grey losing to close colours on the demo colorization data where L1 prefers it."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2lab

from gancompress.errors import UserError
from gancompress.metrics.colour import (
    ABPixels,
    ColourScorer,
    ColourSettings,
    colour_distance,
    rgb_to_lab,
    sliced_w1_plane,
)


def test_lab_matches_scikit_image_and_known_colours():
    rgb = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    ref = np.stack([rgb2lab(im.permute(1, 2, 0).numpy()) for im in rgb])
    np.testing.assert_allclose(rgb_to_lab(rgb).permute(0, 2, 3, 1).numpy(), ref, atol=1e-3)
    known = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]).view(3, 3, 1, 1)
    lab = rgb_to_lab(known).view(3, 3)
    np.testing.assert_allclose(lab.numpy(), [[100, 0, 0], [0, 0, 0], [53.24, 80.09, 67.20]],
                               atol=0.02)
    grey = rgb_to_lab(torch.full((1, 3, 2, 2), 0.4))
    assert grey[:, 1:].abs().max() < 0.01  # grey has no chroma
    with pytest.raises(UserError, match="3 channels"):
        rgb_to_lab(torch.zeros(1, 1, 2, 2))


def test_plane_distance_of_a_known_shift():
    """A translation t of a point set: every projection moves by <t, u>, so the sliced W1 is
    the mean over the 64 directions u of |<t, u>|."""
    points = torch.randn(500, 2, generator=torch.Generator().manual_seed(1))
    shift = torch.tensor([3.0, 4.0])
    angles = torch.arange(64) * (np.pi / 64)
    expected = (3 * angles.cos() + 4 * angles.sin()).abs().mean().item()
    assert sliced_w1_plane(points + shift, points) == pytest.approx(expected, rel=1e-5)
    assert sliced_w1_plane(points, points) == 0.0


def _coloured(n: int = 4, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 1.6 - 0.8


def test_identical_sets_zero_and_a_colour_cast_grows():
    x = _coloured()
    assert colour_distance(x, x) == 0.0
    assert colour_distance([x[:1], x[1:]], x) == 0.0
    red = torch.tensor([0.1, -0.05, -0.05]).view(1, 3, 1, 1)
    values = [colour_distance((x + k * red).clamp(-1, 1), x) for k in (0.5, 1, 2, 4)]
    assert 0 < values[0] < values[1] < values[2] < values[3]


def test_pixel_sampling_is_deterministic_and_batching_free():
    x = _coloured(3, 64)
    settings = ColourSettings(pixels_per_image=100)
    a, b = ABPixels(settings), ABPixels(settings)
    a.update(x)
    b.update(x[:2])
    b.update(x[2:])
    assert a.pixels().shape == (300, 2) and torch.equal(a.pixels(), b.pixels())
    other = ABPixels(ColourSettings(pixels_per_image=100, seed=1))
    other.update(x)
    assert ColourScorer(a).score_pixels(other) > 0  # another seed: other pixels, same images
    assert ColourScorer(x, settings).protocol()["settings"]["pixels_per_image"] == 100
    with pytest.raises(UserError, match="RGB"):
        ABPixels().update(torch.zeros(1, 1, 8, 8))


def test_grey_loses_to_close_colours_where_l1_prefers_it(tmp_path):
    """Demo colorization test pairs: the grey input vs a colourful output with the right
    colour distribution but wrong pixel positions (the targets in another order, brightened).
    L1 prefers grey; the colour metric does not."""
    from gancompress.data import open_dataset
    from gancompress.data.demo import write_demo_data

    root = tmp_path / "data"
    write_demo_data(root, size=32, n_train=4, n_test=16)
    ds = open_dataset(root, mode="aligned", phase="test", direction="AtoB",
                      preprocess="resize_and_crop", load_size=32, crop_size=32, flip=False,
                      in_channels=3, out_channels=3, augment=False)
    grey = torch.stack([ds[i]["source"] for i in range(len(ds))])
    target = torch.stack([ds[i]["target"] for i in range(len(ds))])
    shuffled = target.roll(1, dims=0).flip(-1)
    l1 = {name: (out - target).abs().mean().item()
          for name, out in (("grey", grey), ("shuffled", shuffled))}
    colour = {name: colour_distance(out, target) for name, out in (("grey", grey),
                                                                   ("shuffled", shuffled))}
    assert l1["grey"] < l1["shuffled"]
    assert colour["grey"] > 2 * colour["shuffled"] and colour["grey"] > 3
