"""Colour distance: how far the colours of generated images are, as a distribution, from those of
the reference images, in the a*b* plane of CIELAB (the chromatic plane; lightness left out).

    colour = SW1({(a*, b*) of output pixels}, {(a*, b*) of reference pixels})

the sliced Wasserstein-1 distance between the two sets of pixels' (a*, b*) pairs: the W1
distance of their projections on 64 evenly spaced directions of the plane (angles k pi / 64),
averaged. Unit: CIELAB a*b* units (a just noticeable colour difference is about 2.3); 0 for
identical colour distributions. Grey outputs cannot win: all their pixels sit at a* = b* = 0, so
against coloured references they score about 2/pi of the references' mean chroma (the mean
|cos| over the directions), however close their pixel values are (where L1 and PSNR reward
grey, the conditional mean of an unsure colorizer).

Pixels: images as uint8 (imaging.to_uint8_tensor), sRGB (IEC 61966-2-1) -> linear -> XYZ -> CIELAB
with the D65 white point (the conversion of scikit-image's rgb2lab, in torch); up to
`pixels_per_image` pixels per image (all of them when the image has no more; otherwise a random
subset drawn per (seed, image index), so the same images give the same pixels however they are
batched). Needs 3-channel (RGB) images.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from gancompress.errors import UserError
from gancompress.metrics.swd import sort_rows, stream_seed, wasserstein1_sorted

# sRGB (D65) -> XYZ, and the D65 reference white (the matrix and white of skimage.color)
_RGB_TO_XYZ = torch.tensor([[0.412453, 0.357580, 0.180423],
                            [0.212671, 0.715160, 0.072169],
                            [0.019334, 0.119193, 0.950227]], dtype=torch.float64)
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) sRGB in [0, 1] -> CIELAB (L* in [0, 100], a*, b*), D65, float64."""
    if rgb.dim() < 3 or rgb.shape[-3] != 3:
        raise UserError(f"CIELAB needs RGB images (3 channels); got shape {tuple(rgb.shape)}")
    c = rgb.double().clamp(0, 1)
    linear = torch.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = torch.einsum("ij,...jhw->...ihw", _RGB_TO_XYZ.to(c.device), linear)
    t = xyz / _WHITE_D65.to(c.device).view(3, 1, 1)
    delta = 6 / 29
    f = torch.where(t > delta ** 3, t.clamp_min(1e-12) ** (1 / 3), t / (3 * delta ** 2) + 4 / 29)
    fx, fy, fz = f.unbind(-3)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=-3)


def images_to_lab(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) images in [-1, 1] (or uint8) -> CIELAB, via the uint8 truncation."""
    from gancompress.imaging import to_uint8_tensor

    return rgb_to_lab(to_uint8_tensor(images).double() / 255)


@dataclass(frozen=True)
class ColourSettings:
    pixels_per_image: int = 1024
    directions: int = 64
    seed: int = 0

    def describe(self) -> str:
        return (f"sliced W1 between the CIELAB (a*, b*) of output and reference pixels (sRGB, "
                f"D65), {self.directions} evenly spaced directions, up to "
                f"{self.pixels_per_image} pixels per image (seed {self.seed}), in a*b* units")


class ABPixels:
    """Accumulates the (a*, b*) pairs of a set of images fed in batches (`update`)."""

    def __init__(self, settings: ColourSettings | None = None):
        self.settings = settings or ColourSettings()
        self.chunks: list[torch.Tensor] = []
        self.count = 0

    @torch.no_grad()
    def update(self, images: torch.Tensor) -> None:
        if images.dim() != 4 or images.shape[1] != 3:
            raise UserError(f"the colour metric needs RGB images (B, 3, H, W); got shape "
                            f"{tuple(images.shape)}")
        # float32 pairs: a*b* need no more, and sorting them is twice as fast
        ab = images_to_lab(images.cpu())[:, 1:].flatten(2).transpose(1, 2).float()  # (B, HW, 2)
        n = self.settings.pixels_per_image
        generator = torch.Generator()  # not kept: scorers travel to search worker processes
        for i, pixels in enumerate(ab):
            if len(pixels) > n:
                generator.manual_seed(stream_seed(self.settings.seed, self.count + i))
                pixels = pixels[torch.randperm(len(pixels), generator=generator)[:n]]
            self.chunks.append(pixels)
        self.count += len(images)

    def pixels(self) -> torch.Tensor:
        if not self.count:
            raise UserError("colour metric: no images were given")
        return torch.cat(self.chunks)


def plane_directions(directions: int = 64) -> torch.Tensor:
    """(2, K) unit vectors at the angles k pi / K, k = 0 .. K-1 (half a turn covers every
    projection: the opposite direction gives the same W1)."""
    angles = torch.arange(directions, dtype=torch.float64) * (math.pi / directions)
    return torch.stack([angles.cos(), angles.sin()]).float()


def sliced_w1_plane(a: torch.Tensor, b: torch.Tensor | None = None, directions: int = 64,
                    b_sorted: torch.Tensor | None = None) -> float:
    """Sliced W1 between two (N, 2) point sets: mean over `directions` evenly spaced angles in
    [0, pi) of the W1 of the projections (any set sizes). `b_sorted`: b's sorted projections
    (K, Nb), made once by a scorer."""
    dirs = plane_directions(directions)
    if b_sorted is None:
        b_sorted = sort_rows((b.float() @ dirs).T)
    return wasserstein1_sorted(sort_rows((a.float() @ dirs).T), b_sorted).mean().item()


def colour_distance(fake: torch.Tensor | Iterable[torch.Tensor],
                    real: torch.Tensor | Iterable[torch.Tensor],
                    settings: ColourSettings | None = None) -> float:
    """The colour metric between two RGB image sets in [-1, 1]."""
    return ColourScorer(real, settings).score(fake)


def _collect(images: torch.Tensor | Iterable[torch.Tensor],
             settings: ColourSettings | None) -> ABPixels:
    acc = ABPixels(settings)
    for batch in ([images] if isinstance(images, torch.Tensor) else images):
        acc.update(batch)
    return acc


class ColourScorer:
    """Colour metric of generated images against a fixed reference set (its pixels kept once)."""

    def __init__(self, reference: torch.Tensor | Iterable[torch.Tensor] | ABPixels,
                 settings: ColourSettings | None = None):
        self.reference = (reference if isinstance(reference, ABPixels)
                          else _collect(reference, settings))
        self.settings = self.reference.settings
        dirs = plane_directions(self.settings.directions)
        self._reference_sorted = sort_rows((self.reference.pixels() @ dirs).T)

    def score(self, images: torch.Tensor | Iterable[torch.Tensor]) -> float:
        return self.score_pixels(_collect(images, self.settings))

    def score_pixels(self, fake: ABPixels) -> float:
        return sliced_w1_plane(fake.pixels(), directions=self.settings.directions,
                               b_sorted=self._reference_sorted)

    def protocol(self) -> dict[str, Any]:
        return {"metric": "colour: sliced W1 of CIELAB a*b* pixel distributions",
                "settings": asdict(self.settings), "summary": self.settings.describe(),
                "reference_images": self.reference.count}
