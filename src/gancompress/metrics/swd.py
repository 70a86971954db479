"""Sliced Wasserstein distance over Laplacian-pyramid patches (SWD; Karras et al., "Progressive
Growing of GANs", ICLR 2018, appendix D): a distribution distance that needs no trained network.

The published procedure, followed here (parameters in `SWDSettings`):
  1. images as uint8 (the project's one truncation, imaging.to_uint8_tensor), as float 0..255;
  2. a Laplacian pyramid: 5x5 binomial filter [1 4 6 4 1]/16 (separable), mirror borders,
     decimation by 2 (cv2.pyrDown / pyrUp); levels from the full resolution down to 16 px (the
     shorter side; an image under 16 px is one level, the image itself);
  3. from every level of every image, 128 random 7x7 patches (all channels): descriptors of
     C * 7 * 7 numbers;
  4. each set's descriptors of a level normalised per channel by that set's own mean and
     standard deviation (over patches and pixels), then flattened;
  5. per level, the sliced Wasserstein-1 distance: 4 repeats of 128 random unit directions
     (512 projections in all), the mean |difference| of the sorted projections, averaged over
     directions and repeats;
  6. x 1e3 per level (SWDx1e3_<res>, as published), and their mean over levels: the value.
Published sets have equal sizes; different sizes compare their quantile functions exactly (the
W1 of two empirical distributions), which is the published value when the sizes are equal.

Step 4 makes the distance blind to a global shift or rescaling of a channel (each set is
standardised on its own): it judges textures and structure; `metrics/colour.py` judges colour.

Deterministic for a seed: patch positions are drawn per (seed, level, image index), so the same
images in the same order give the same descriptors however they are batched (identical sets
score exactly 0), and the directions per (seed, level), the same for every set compared.
Memory: C * 49 * 128 float32 per image and level (about 75 kB for RGB).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gancompress.errors import UserError


@dataclass(frozen=True)
class SWDSettings:
    """The published parameters (progressive_growing_of_gans, metrics/sliced_wasserstein.py)."""
    patch_size: int = 7
    patches_per_image: int = 128
    dir_repeats: int = 4
    dirs_per_repeat: int = 128
    min_resolution: int = 16
    seed: int = 0

    def describe(self) -> str:
        return (f"Laplacian pyramid down to {self.min_resolution} px, {self.patches_per_image} "
                f"{self.patch_size}x{self.patch_size} patches per image and level, per-channel "
                f"normalisation per set, {self.dir_repeats} x {self.dirs_per_repeat} random "
                f"projections, sliced W1 x 1e3 averaged over levels, seed {self.seed}")


_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """5x5 binomial filter per channel with mirror borders (scipy's 'mirror' = torch 'reflect')."""
    c = x.shape[1]
    k = (_BINOMIAL.to(x.device, x.dtype) * gain ** 0.5)
    x = F.pad(x, (2, 2, 2, 2), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    return F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur, then keep every second row and column (cv2.pyrDown)."""
    return _blur(x)[..., ::2, ::2]


def pyr_up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zeros between the samples, blur x 4 (cv2.pyrUp), cut to `size` (odd sizes)."""
    b, c, h, w = x.shape
    up = x.new_zeros(b, c, 2 * h, 2 * w)
    up[..., ::2, ::2] = x
    return _blur(up, 4.0)[..., :size[0], :size[1]]


def num_levels(height: int, width: int, min_resolution: int = 16) -> int:
    """Pyramid levels of an image: full size, halved while the shorter side stays >= the minimum
    (at least one level)."""
    res, n = min(height, width), 0
    while res >= min_resolution:
        n, res = n + 1, res // 2
    return max(n, 1)


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[band-pass levels..., the last (coarsest) Gaussian level]."""
    pyramid = [x]
    for _ in range(1, levels):
        pyramid.append(pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - pyr_up(pyramid[-1], tuple(pyramid[-2].shape[-2:]))
    return pyramid


def stream_seed(*parts: int) -> int:
    """A seed for torch's CPU generator (which keeps only 32 bits of a seed) mixing several
    integers (splitmix64 steps), so (seed, level, image) each get their own stream."""
    h = 0x9E3779B97F4A7C15
    for part in parts:
        h = (h ^ (part & 0xFFFFFFFFFFFFFFFF)) + 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF
        h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h = (h ^ (h >> 27)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0xFFFFFFFF


class PatchDescriptors:
    """Accumulates the pyramid patches of a set of images fed in batches (`update`)."""

    def __init__(self, settings: SWDSettings | None = None):
        self.settings = settings or SWDSettings()
        self.levels: list[list[torch.Tensor]] = []
        self.resolutions: list[tuple[int, int]] = []
        self.count = 0
        self._image_size: tuple[int, int] | None = None

    @torch.no_grad()
    def update(self, images: torch.Tensor) -> None:
        """(B, C, H, W) images in [-1, 1] (or uint8); every batch must have the first's size."""
        from gancompress.imaging import to_uint8_tensor

        if images.dim() != 4:
            raise UserError(f"SWD needs (B, C, H, W) images; got shape {tuple(images.shape)}")
        s = self.settings
        size = tuple(images.shape[-3:])
        if self._image_size is None:
            if min(size[1:]) < s.patch_size:
                raise UserError(f"SWD: images of {size[1]}x{size[2]} px are smaller than its "
                                f"{s.patch_size}x{s.patch_size} patches")
            self._image_size = size
            n = num_levels(size[1], size[2], s.min_resolution)
            self.levels = [[] for _ in range(n)]
        elif size != self._image_size:
            raise UserError(f"SWD: images of size {size} after images of size "
                            f"{self._image_size}; a set must have one size")
        x = to_uint8_tensor(images).float().cpu()
        pyramid = laplacian_pyramid(x, len(self.levels))
        if not self.resolutions:
            self.resolutions = [tuple(level.shape[-2:]) for level in pyramid]
        for index, level in enumerate(pyramid):
            self.levels[index].append(self._patches(level, index))
        self.count += len(images)

    def _patches(self, level: torch.Tensor, index: int) -> torch.Tensor:
        s = self.settings
        b, c, h, w = level.shape
        p, n = s.patch_size, s.patches_per_image
        corners = []
        generator = torch.Generator()  # not kept: scorers travel to search worker processes
        for i in range(b):
            generator.manual_seed(stream_seed(s.seed, index, self.count + i))
            ys = torch.randint(0, h - p + 1, (n,), generator=generator)
            xs = torch.randint(0, w - p + 1, (n,), generator=generator)
            corners.append((ys, xs))
        ys = torch.stack([y for y, _ in corners])                      # (B, n)
        xs = torch.stack([x for _, x in corners])
        offsets = torch.arange(p)
        rows = (ys[..., None] + offsets)[..., :, None]                  # (B, n, p, 1)
        cols = (xs[..., None] + offsets)[..., None, :]                  # (B, n, 1, p)
        batch = torch.arange(b).view(b, 1, 1, 1)
        patches = level.permute(0, 2, 3, 1)[batch, rows, cols]          # (B, n, p, p, C)
        return patches.permute(0, 1, 4, 2, 3).reshape(b * n, c, p, p)

    def finalized(self) -> list[torch.Tensor]:
        """Per level, the (N, C * p * p) descriptors normalised per channel over this set."""
        if not self.count:
            raise UserError("SWD: no images were given")
        out = []
        for chunks in self.levels:
            desc = torch.cat(chunks).double()
            mean = desc.mean(dim=(0, 2, 3), keepdim=True)
            std = desc.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
            # a constant channel (std 0) stays 0 rather than becoming NaN
            desc = (desc - mean) / torch.where(std > 0, std, torch.ones_like(std))
            out.append(desc.reshape(len(desc), -1).float())
        return out


def sort_rows(x: torch.Tensor) -> torch.Tensor:
    """Each row of a 2-D CPU tensor sorted ascending. numpy's vectorised sort of contiguous rows
    is tens of times faster than torch.sort here, and sorting is most of the metric's time."""
    return torch.from_numpy(np.sort(x.detach().cpu().contiguous().numpy(), axis=-1))


def wasserstein1_sorted(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(K,) W1 between the empirical distributions of each row of two row-sorted arrays
    (K, Na) and (K, Nb): the integral of |Qa(u) - Qb(u)| over u in (0, 1)."""
    na, nb = a.shape[-1], b.shape[-1]
    if na == nb:
        return (a - b).abs().mean(-1)
    # breakpoints of both step quantile functions, in integer units of 1 / (na nb)
    ends = torch.unique(torch.cat([torch.arange(1, na + 1) * nb, torch.arange(1, nb + 1) * na]))
    starts = torch.cat([ends.new_zeros(1), ends[:-1]])
    widths = ((ends - starts).double() / (na * nb)).to(a.dtype)
    diff = (a[:, starts // nb] - b[:, starts // na]).abs()
    return (diff * widths).sum(-1)


def directions(settings: SWDSettings, level: int, dim: int) -> list[torch.Tensor]:
    """The level's `dir_repeats` (dim, dirs_per_repeat) matrices of random unit directions,
    the same for every set compared with these settings."""
    generator = torch.Generator().manual_seed(stream_seed(settings.seed, level, -1))
    out = []
    for _ in range(settings.dir_repeats):
        d = torch.randn(dim, settings.dirs_per_repeat, generator=generator, dtype=torch.float64)
        out.append((d / d.norm(dim=0, keepdim=True)).float())
    return out


def sorted_projections(desc: torch.Tensor, dirs: list[torch.Tensor]) -> list[torch.Tensor]:
    """(directions, N) sorted projections of (N, D) descriptors, one per matrix of `dirs`."""
    return [sort_rows((desc @ d).T) for d in dirs]


def sliced_wasserstein(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Mean over repeats and directions of the W1 between sorted projections (as published:
    the mean |difference| of the sorted projections when the set sizes are equal)."""
    return sum(wasserstein1_sorted(pa, pb).mean().item() for pa, pb in zip(a, b)) / len(a)


def _check_levels(fake: PatchDescriptors, real: PatchDescriptors) -> None:
    if fake.resolutions != real.resolutions:
        raise UserError(f"SWD compares images of one size: pyramid levels {fake.resolutions} "
                        f"and {real.resolutions}")
    if fake.levels and real.levels and fake.levels[0][0].shape[1] != real.levels[0][0].shape[1]:
        raise UserError(f"SWD compares images with the same channels: "
                        f"{fake.levels[0][0].shape[1]} and {real.levels[0][0].shape[1]}")


def _level_name(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}" if size[0] != size[1] else str(size[0])


def swd_of_descriptors(fake: PatchDescriptors, real: PatchDescriptors) -> dict[str, Any]:
    """{'swd': mean over levels, 'levels': {'HxW': SWD x 1e3}} of two accumulated sets."""
    _check_levels(fake, real)
    levels = {}
    for index, (dr, df) in enumerate(zip(real.finalized(), fake.finalized())):
        dirs = directions(real.settings, index, dr.shape[1])
        value = sliced_wasserstein(sorted_projections(df, dirs), sorted_projections(dr, dirs))
        levels[_level_name(real.resolutions[index])] = value * 1e3
    return {"swd": sum(levels.values()) / len(levels), "levels": levels}


def describe(images: torch.Tensor | Iterable[torch.Tensor],
             settings: SWDSettings | None = None) -> PatchDescriptors:
    """Descriptors of a (B, C, H, W) tensor or an iterable of such batches."""
    acc = PatchDescriptors(settings)
    for batch in ([images] if isinstance(images, torch.Tensor) else images):
        acc.update(batch)
    return acc


def swd(fake: torch.Tensor | Iterable[torch.Tensor], real: torch.Tensor | Iterable[torch.Tensor],
        settings: SWDSettings | None = None) -> float:
    """SWD x 1e3 (mean over pyramid levels) between two image sets in [-1, 1]."""
    return swd_of_descriptors(describe(fake, settings), describe(real, settings))["swd"]


class SWDScorer:
    """SWD of generated images against a fixed reference set, whose descriptors and sorted
    projections are made once (what a search scoring many sub-networks wants; memory: 512
    float32 per reference patch and level). `.score(images) -> float`; `.last` holds the
    per-level values."""

    def __init__(self, reference: torch.Tensor | Iterable[torch.Tensor] | PatchDescriptors,
                 settings: SWDSettings | None = None):
        self.reference = (reference if isinstance(reference, PatchDescriptors)
                          else describe(reference, settings))
        self.settings = self.reference.settings
        self._directions, self._sorted = [], []
        for index, desc in enumerate(self.reference.finalized()):
            self._directions.append(directions(self.settings, index, desc.shape[1]))
            self._sorted.append(sorted_projections(desc, self._directions[-1]))
        self.last: dict[str, Any] = {}

    def score(self, images: torch.Tensor | Iterable[torch.Tensor]) -> float:
        return self.score_descriptors(describe(images, self.settings))

    def score_descriptors(self, fake: PatchDescriptors) -> float:
        _check_levels(fake, self.reference)
        levels = {}
        for index, desc in enumerate(fake.finalized()):
            value = sliced_wasserstein(sorted_projections(desc, self._directions[index]),
                                       self._sorted[index])
            levels[_level_name(self.reference.resolutions[index])] = value * 1e3
        self.last = {"swd": sum(levels.values()) / len(levels), "levels": levels,
                     "num_images": fake.count}
        return self.last["swd"]

    def protocol(self) -> dict[str, Any]:
        return {"metric": "sliced Wasserstein distance x 1e3 (Karras et al. 2018)",
                "settings": asdict(self.settings), "summary": self.settings.describe(),
                "reference_images": self.reference.count}
