"""Paired preprocessing: resize / crop / flip decided once and applied identically to A and B.

Published conventions (pytorch-CycleGAN-and-pix2pix, docs/reference.md sec. 3):
    resize_and_crop  resize to load_size x load_size (bicubic), crop crop_size (random while
                     training, centred otherwise)
    scale_width      resize the width to load_size keeping the aspect ratio (height at least
                     crop_size), then crop crop_size x crop_size
    none             keep the size, only rounded to a multiple of 4 (bicubic) so that the
                     generator's two stride-2 stages divide it
then optional horizontal flip (training only), and [0, 255] -> [-1, 1].

Randomness never comes from a global RNG: `draw(size, rng)` takes a numpy Generator that the
dataset seeds from (seed, epoch, index), so augmentation is identical with any number of
DataLoader workers and after resuming a run mid-epoch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from gancompress.errors import UserError

PREPROCESS_MODES = ("resize_and_crop", "scale_width", "none")


@dataclass(frozen=True)
class Params:
    """Random choices for one training example: crop corner (x, y) and flip."""
    x: int
    y: int
    flip: bool


@dataclass(frozen=True)
class Preprocess:
    mode: str = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True
    augment: bool = True  # random crop position and flip (training); else centre crop, no flip

    def __post_init__(self) -> None:
        if self.mode not in PREPROCESS_MODES:
            raise UserError(f"unknown preprocess {self.mode!r}; use one of "
                            f"{', '.join(PREPROCESS_MODES)}")
        if self.mode != "none" and (self.crop_size < 4 or self.crop_size % 4):
            raise UserError(f"crop_size {self.crop_size} must be a positive multiple of 4")
        if self.mode != "none" and self.crop_size > self.load_size:
            raise UserError(f"crop_size {self.crop_size} is larger than load_size {self.load_size}")

    def resize(self, img: Image.Image) -> Image.Image:
        """The deterministic part (cacheable): resize before cropping."""
        w, h = img.size
        if self.mode == "resize_and_crop":
            size = (self.load_size, self.load_size)
        elif self.mode == "scale_width":
            size = (self.load_size, max(round(self.load_size * h / w), self.crop_size))
        else:  # "none": round to a multiple of 4, as the reference's make_power_2(base=4)
            size = (max(4, round(w / 4) * 4), max(4, round(h / 4) * 4))
        return img if img.size == size else img.resize(size, Image.BICUBIC)

    def draw(self, size: tuple[int, int], rng: np.random.Generator | None) -> Params:
        """Crop corner and flip for a resized image of `size` = (w, h)."""
        w, h = size
        if self.mode == "none":
            x = y = 0
        elif self.augment and rng is not None:
            x = int(rng.integers(0, max(0, w - self.crop_size) + 1))
            y = int(rng.integers(0, max(0, h - self.crop_size) + 1))
        else:
            x, y = max(0, w - self.crop_size) // 2, max(0, h - self.crop_size) // 2
        flip = bool(self.flip and self.augment and rng is not None and rng.random() < 0.5)
        return Params(x, y, flip)

    def apply(self, img: Image.Image, params: Params) -> Image.Image:
        """Crop and flip an already resized image."""
        if self.mode != "none":
            c = self.crop_size
            if img.size != (c, c):
                img = img.crop((params.x, params.y, params.x + c, params.y + c))
        if params.flip:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        return img
