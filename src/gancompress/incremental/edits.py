"""Synthetic edits for profiling incremental inference: a brush stroke covering a given fraction
of the input, applied the way a person would (paint a colour on a photo; paint a class on a
label map, with the instance edges recomputed), and realistic starting inputs (a photo, a label
map cut from a photo) from the built-in demo photos.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn

from gancompress.errors import UserError


def brush_stroke(h: int, w: int, fraction: float, seed: int = 0) -> torch.Tensor:
    """(h, w) bool mask of one smooth stroke (a chain of discs along a wandering path) covering
    `fraction` of the pixels (to within one disc)."""
    if not 0 <= fraction <= 1:
        raise UserError(f"an edit covers a fraction of the image in 0..1, got {fraction}")
    mask = np.zeros((h, w), dtype=bool)
    target = int(round(fraction * h * w))
    if target == 0:
        return torch.from_numpy(mask)
    if target >= h * w:
        return torch.ones(h, w, dtype=torch.bool)
    rng = np.random.default_rng(seed)
    radius = float(np.clip(math.sqrt(target) / 6, 1.5, min(h, w) / 6))
    yy, xx = np.mgrid[0:h, 0:w]
    y, x = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    angle = rng.uniform(0, 2 * math.pi)
    count = 0
    for _ in range(100000):
        r = int(math.ceil(radius))
        y0, y1, x0, x1 = max(0, int(y) - r), min(h, int(y) + r + 1), max(0, int(x) - r), min(w, int(x) + r + 1)
        disc = (yy[y0:y1, x0:x1] - y) ** 2 + (xx[y0:y1, x0:x1] - x) ** 2 <= radius ** 2
        window = mask[y0:y1, x0:x1]
        count += int((disc & ~window).sum())
        window |= disc
        if count >= target:
            break
        angle += rng.normal(0, 0.35)
        y, x = y + math.sin(angle) * radius / 2, x + math.cos(angle) * radius / 2
        if not (radius <= y < h - radius and radius <= x < w - radius):  # turn back inside
            angle += math.pi
            y, x = float(np.clip(y, radius, h - 1 - radius)), float(np.clip(x, radius, w - 1 - radius))
    return torch.from_numpy(mask)


def label_channels(model: nn.Module) -> int | None:
    """One-hot label channels of a label-map generator (SPADE), None for image generators."""
    args = model.label_map_args() if hasattr(model, "label_map_args") else None
    if not args:
        return None
    return int(model.label_channels)


def labels_input(model: nn.Module, label: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) class ids -> the model's input (one-hot + edges of the label regions)."""
    from gancompress.data.segmaps import semantic_input

    args = model.label_map_args()
    return semantic_input(label, label, label_channels(model), no_instance=args["no_instance"])


def apply_edit(model: nn.Module, x: torch.Tensor, mask: torch.Tensor, seed: int = 0
               ) -> torch.Tensor:
    """x with the stroke `mask` (H, W) painted: a new class on a label map, a colour on an
    image (values in [-1, 1])."""
    g = torch.Generator().manual_seed(seed)
    m = mask.to(x.device)
    n = label_channels(model)
    if n is not None:
        label = x[:, :n].argmax(1, keepdim=True)
        under = label[:, :, m]
        common = int(under.mode().values.flatten()[0]) if under.numel() else 0
        new = (common + 1 + int(torch.randint(0, max(1, n - 1), (1,), generator=g))) % n
        label = label.masked_fill(m, new)
        return labels_input(model, label).to(x.dtype)
    colour = (torch.rand(1, x.shape[1], 1, 1, generator=g) * 2 - 1).to(x)
    return torch.where(m, colour, x)


def demo_input(model: nn.Module, size: Sequence[int], seed: int = 0) -> torch.Tensor:
    """A realistic first input at `size` (H, W): a bundled photo (image generators) or a label
    map cut from it into superpixel classes (label-map generators); the family's example
    input when scikit-image is missing."""
    from PIL import Image

    from gancompress.data.demo import TEST_PHOTOS, bundled_photo, label_photo

    h, w = int(size[0]), int(size[-1])
    device = next(model.parameters()).device
    try:
        photo = bundled_photo(sorted(TEST_PHOTOS.values())[seed % len(TEST_PHOTOS)])
    except UserError:
        return model.example_inputs((h, w))[0]
    photo = photo.resize((w, h), Image.LANCZOS)
    n = label_channels(model)
    if n is not None:
        labels, _ = label_photo(photo, n_segments=max(24, h * w // 2048))
        label = torch.from_numpy(labels.astype(np.int64) % n)[None, None]
        return labels_input(model, label).to(device)
    rgb = torch.from_numpy(np.asarray(photo, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1
    c = int(getattr(model, "in_channels", 3))
    x = rgb.mean(0, keepdim=True).expand(c, h, w) if c != 3 else rgb
    return x[None].contiguous().to(device)
