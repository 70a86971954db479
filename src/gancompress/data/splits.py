"""Evaluation splits: one side of a dataset (or a plain image folder) read in batches at the
evaluation size, the one way `eval`, `stats` and the metrics open images to score.

    spec = open_side(root, "B", ["test"], load_size=256, channels=3)
    for batch in image_batches(spec, batch_size=16): ...
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gancompress.errors import UserError


def parse_phases(text: str) -> list[str]:
    phases = [p.strip() for p in text.replace(",", "+").split("+") if p.strip()]
    if not phases:
        raise UserError("--phase is empty; use train, test, val or e.g. train+test")
    return phases


@dataclass
class SideSpec:
    """One side of a dataset, as a list of (dataset, item key, number of items) parts."""

    parts: list[tuple[Any, str, int]]
    mode: str
    description: str

    def __len__(self) -> int:
        return sum(n for _, _, n in self.parts)


def open_side(root: str | Path, side: str | None, phases: list[str], load_size: int,
              channels: int = 3, limit: int | None = None, other_channels: int | None = None,
              labels: dict[str, Any] | None = None) -> SideSpec:
    """The real images of `side` (A or B) of a dataset folder, or of a plain image folder.

    Aligned A|B files: the left (A) or right (B) half; the items also carry the other half.
    Unaligned: <phase>A/ or <phase>B/, each image once. Single folder: every image (the side is
    ignored). `channels` is the side's channel count, `other_channels` the other side's.
    Label-map datasets (data/segmaps.py layouts; mode "labels"): A is the label map as the
    model's input (`labels`: LabelMapDataset arguments incl. size (H, W)), B the photo; the
    items carry both.
    """
    from gancompress.data import open_dataset
    from gancompress.data.folders import resolve_layout

    if side is not None and side not in ("A", "B"):
        raise UserError(f"--side must be A or B, got {side!r}")
    if labels is not None:
        return _label_side(root, side, phases, labels, limit)
    if load_size < 0 or (load_size and load_size % 4):
        raise UserError(f"--load-size {load_size}: use a positive multiple of 4, or 0")
    pre: dict[str, Any] = (dict(preprocess="resize_and_crop", load_size=load_size,
                                crop_size=load_size) if load_size else dict(preprocess="none"))
    other = channels if other_channels is None else other_channels
    common = dict(flip=False, augment=False, **pre)
    as_source = dict(in_channels=channels, out_channels=other)  # the side is the source
    as_target = dict(in_channels=other, out_channels=channels)
    parts: list[tuple[Any, str, int]] = []
    seen: set[tuple[str, ...]] = set()
    mode = ""
    for phase in phases:
        layout = resolve_layout(root, "auto", phase)
        mode = layout.mode
        files = tuple(str(p) for paths in layout.files.values() for p in paths)
        if files in seen:  # a plain folder is the same for every phase
            continue
        seen.add(files)
        if layout.mode == "single":
            ds = open_dataset(root, mode="single", phase=phase, **common, **as_source)
            parts.append((ds, "source", len(ds)))
            continue
        if side is None:
            raise UserError(f"{root} is an {layout.mode} dataset with two sides: choose --side A "
                            f"or --side B (the side a generator produces, e.g. B for AtoB)")
        if layout.mode == "aligned":
            ds = open_dataset(root, mode="aligned", phase=phase, direction="AtoB", **common,
                              **(as_source if side == "A" else as_target))
            parts.append((ds, "source" if side == "A" else "target", len(ds)))
        else:  # unaligned: with the side as source, items 0..n-1 are its n images, once each
            ds = open_dataset(root, mode="unaligned", phase=phase,
                              direction="AtoB" if side == "A" else "BtoA", **common, **as_source)
            parts.append((ds, "source", len(layout.files[side])))
    parts = _limited(parts, limit)
    size = f"{load_size}x{load_size}" if load_size else "original size (multiple of 4)"
    what = "all images" if mode == "single" else f"side {side}"
    return SideSpec(parts, mode, f"{root} ({mode}, {what}, phase {'+'.join(phases)}, {size})")


def is_label_dataset(root: str | Path) -> bool:
    """True for a folder in one of the label-map layouts (data/segmaps.py)."""
    from gancompress.data.segmaps import detect_label_layout

    try:
        detect_label_layout(root)
    except UserError:
        return False
    return True


def _label_side(root: str | Path, side: str | None, phases: list[str], labels: dict[str, Any],
                limit: int | None) -> SideSpec:
    from gancompress.data.segmaps import LabelMapDataset

    if not is_label_dataset(root):
        raise UserError(f"{root} is not a label-map dataset, and this model takes label maps: "
                        f"give a dataset in the Cityscapes, COCO-Stuff, ADE20K or labels/ + "
                        f"images/ layout")
    key = "target" if side == "B" else "source"
    parts: list[tuple[Any, str, int]] = []
    for phase in phases:
        ds = LabelMapDataset(root, phase=phase, flip=False, train=False, **labels)
        if key == "target" and any(img is None for _, _, img in ds.items):
            raise UserError(f"{root} (phase {phase}) has label maps without photos; FID, KID and "
                            f"PSNR need the photos next to them")
        parts.append((ds, key, len(ds)))
    parts = _limited(parts, limit)
    h, w = labels["size"]
    what = "photos" if key == "target" else "label maps"
    return SideSpec(parts, "labels", f"{root} (labels, {what}, phase {'+'.join(phases)}, "
                                     f"{h}x{w})")


def _as_list(items: list) -> list:
    return items


def check_same_size(reference: tuple[tuple[int, ...], str], images: list[torch.Tensor],
                    paths: list[str]) -> None:
    """All (C, H, W) images must have the reference shape; mixed sizes are a clear user error."""
    shape, first_path = reference
    for image, path in zip(images, paths):
        if tuple(image.shape) != shape:
            raise UserError(f"images of different sizes: {first_path} is {shape[2]}x{shape[1]}, "
                            f"{path} is {image.shape[2]}x{image.shape[1]}; pass --load-size N "
                            f"to resize them all to NxN")


def iterate_items(spec: SideSpec, batch_size: int, workers: int = 0
                  ) -> Iterator[tuple[str, list[dict]]]:
    """(item key, list of dataset items), `batch_size` items at a time, over every part."""
    for ds, key, n in spec.parts:
        subset = torch.utils.data.Subset(ds, range(n))
        loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=False,
                                             num_workers=workers, collate_fn=_as_list)
        for items in loader:
            yield key, items


def image_batches(spec: SideSpec, batch_size: int, workers: int = 0) -> Iterator[torch.Tensor]:
    """(B, C, H, W) batches of the side's images in [-1, 1]; all images must share one size."""
    first: tuple[tuple[int, ...], str] | None = None
    for key, items in iterate_items(spec, batch_size, workers):
        images = [item[key] for item in items]
        paths = [str(item.get(f"{key}_path", "?")) for item in items]
        if first is None:
            first = (tuple(images[0].shape), paths[0])
        check_same_size(first, images, paths)
        yield torch.stack(images)


def _limited(parts: list, limit: int | None) -> list:
    """(dataset, key, count) parts cut so the counts add up to at most `limit` (None: all)."""
    if limit is None:
        return parts
    kept, left = [], limit
    for ds, key, n in parts:
        if left > 0:
            kept.append((ds, key, min(n, left)))
            left -= min(n, left)
    return kept
