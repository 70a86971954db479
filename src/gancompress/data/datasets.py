"""Torch datasets over aligned, unaligned and single image folders.

Items are dicts:
    {"source": (C_in, H, W) in [-1, 1], "target": (C_out, H, W) in [-1, 1],
     "source_path": str, "target_path": str}
(single folders have no "target" / "target_path"). For unaligned data the target is an
unpaired image of the other domain, drawn at random while training.

An item key is an index or an (index, epoch) pair. All randomness of an item (crop, flip, the
unpaired partner) comes from numpy's Generator seeded with (seed, epoch, index): the same key
always gives the same tensors, whichever worker loads it and whether or not the run was resumed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gancompress.data.folders import Layout
from gancompress.data.transforms import Preprocess
from gancompress.errors import UserError
from gancompress.imaging import image_size, open_image, pil_to_tensor

_MODE = {1: "L", 3: "RGB"}


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    # The leading tag keeps these streams apart from the data-order stream (sampling.py).
    return np.random.default_rng([1, seed % 2**32, epoch, index])


def check_channels(channels: int, what: str) -> None:
    if channels not in _MODE:
        raise UserError(f"{what} = {channels} is not supported: images are read as 1 (grayscale) "
                        f"or 3 (RGB) channels")


class FolderDataset(torch.utils.data.Dataset):
    """Shared machinery: keys, seeding, optional in-memory cache of resized images."""

    def __init__(self, layout: Layout, preprocess: Preprocess, direction: str = "AtoB",
                 in_channels: int = 3, out_channels: int = 3, cache: bool = False, seed: int = 0):
        if direction not in ("AtoB", "BtoA"):
            raise UserError(f"direction must be AtoB or BtoA, got {direction!r}")
        check_channels(in_channels, "in_channels")
        check_channels(out_channels, "out_channels")
        self.layout = layout
        self.preprocess = preprocess
        self.direction = direction
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.seed = int(seed)
        self.cache: dict | None = {} if cache else None

    def _key(self, key) -> tuple[int, int]:
        if isinstance(key, (tuple, list)):
            index, epoch = int(key[0]), int(key[1])
        else:
            index, epoch = int(key), 0
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        return index, epoch

    def _rng(self, index: int, epoch: int) -> np.random.Generator | None:
        return item_rng(self.seed, epoch, index) if self.preprocess.augment else None

    def _cached(self, key, load):
        if self.cache is None:
            return load()
        if key not in self.cache:
            self.cache[key] = load()
        return self.cache[key]

    def _load_resized(self, path: Path, channels: int) -> Image.Image:
        return self._cached((str(path), channels),
                            lambda: self.preprocess.resize(open_image(path, channels)))

    def check(self, limit: int = 10) -> None:
        """Open every file's header (fast): unreadable files and bad sizes fail now, not
        mid-run, in one UserError that lists the bad files (up to `limit` named)."""
        check_headers([p for files in self.layout.files.values() for p in files], self.layout.root,
                      aligned=self.layout.mode == "aligned", limit=limit)

    def fingerprint(self) -> dict:
        """Which files this dataset reads: {"images", "fingerprint"} (sorted relative names)."""
        from gancompress.files import names_fingerprint

        names = [p.relative_to(self.layout.root).as_posix() if p.is_relative_to(self.layout.root)
                 else p.name for files in self.layout.files.values() for p in files]
        return {"images": len(names), "fingerprint": names_fingerprint(names)}


def check_headers(paths: list[Path], root: Path, aligned: bool = False, limit: int = 10) -> None:
    """Open each image file's header; one UserError lists the unreadable ones (`limit` named)."""
    bad: list[str] = []
    for path in paths:
        try:
            _header_size(path, aligned=aligned)
        except UserError as err:
            bad.append(str(err))
    if bad:
        more = f"; and {len(bad) - limit} more" if len(bad) > limit else ""
        raise UserError(f"{len(bad)} of {len(paths)} image(s) in {root} cannot be used (nothing "
                        f"was started): " + "; ".join(bad[:limit]) + more)


def _header_size(path: Path, aligned: bool) -> tuple[int, int]:
    size = image_size(path)  # the header only, through the pixel limit
    if aligned:
        _check_aligned_width(path, size)
    return size


def _check_aligned_width(path: Path, size: tuple[int, int]) -> None:
    w, h = size
    if w % 2 or w < 2:
        raise UserError(f"{path} is {w}x{h}: an aligned image holds A and B side by side, so its "
                        f"width must be even (two halves of equal width). Use data.mode=single "
                        f"for plain images, or re-combine the pair")


class AlignedDataset(FolderDataset):
    """Each file is A | B side by side (pix2pix); both halves get the same crop and flip."""

    def __init__(self, layout: Layout, preprocess: Preprocess, **kwargs):
        super().__init__(layout, preprocess, **kwargs)
        self.files = layout.files["AB"]
        _header_size(self.files[0], aligned=True)  # fail fast on an obviously wrong folder

    def __len__(self) -> int:
        return len(self.files)

    def _halves(self, path: Path) -> tuple[Image.Image, Image.Image]:
        def load():
            img = open_image(path, 3)
            _check_aligned_width(path, img.size)
            w, h = img.size
            a, b = img.crop((0, 0, w // 2, h)), img.crop((w // 2, 0, w, h))
            if self.direction == "BtoA":
                a, b = b, a
            source = a.convert(_MODE[self.in_channels])
            target = b.convert(_MODE[self.out_channels])
            return self.preprocess.resize(source), self.preprocess.resize(target)
        return self._cached(str(path), load)

    def __getitem__(self, key) -> dict:
        index, epoch = self._key(key)
        path = self.files[index]
        source, target = self._halves(path)
        params = self.preprocess.draw(source.size, self._rng(index, epoch))
        return {"source": pil_to_tensor(self.preprocess.apply(source, params)),
                "target": pil_to_tensor(self.preprocess.apply(target, params)),
                "source_path": str(path), "target_path": str(path)}


class UnalignedDataset(FolderDataset):
    """Two domains A and B without correspondence (CycleGAN).

    Length is the larger domain. Item i pairs source image i (mod its count) with a random
    target image while augmenting (as the reference does), else target i (mod its count).
    """

    def __init__(self, layout: Layout, preprocess: Preprocess, **kwargs):
        super().__init__(layout, preprocess, **kwargs)
        a, b = layout.files["A"], layout.files["B"]
        self.sources, self.targets = (a, b) if self.direction == "AtoB" else (b, a)

    def __len__(self) -> int:
        return max(len(self.sources), len(self.targets))

    def __getitem__(self, key) -> dict:
        index, epoch = self._key(key)
        rng = self._rng(index, epoch)
        source_path = self.sources[index % len(self.sources)]
        target_index = (int(rng.integers(len(self.targets))) if rng is not None
                        else index % len(self.targets))
        target_path = self.targets[target_index]
        source = self._load_resized(source_path, self.in_channels)
        target = self._load_resized(target_path, self.out_channels)
        # Independent crops/flips per domain: the images are unrelated.
        source = self.preprocess.apply(source, self.preprocess.draw(source.size, rng))
        target = self.preprocess.apply(target, self.preprocess.draw(target.size, rng))
        return {"source": pil_to_tensor(source), "target": pil_to_tensor(target),
                "source_path": str(source_path), "target_path": str(target_path)}


class SingleDataset(FolderDataset):
    """One folder of input images (inference, or one domain)."""

    def __init__(self, layout: Layout, preprocess: Preprocess, **kwargs):
        super().__init__(layout, preprocess, **kwargs)
        self.files = layout.files["A"]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key) -> dict:
        index, epoch = self._key(key)
        path = self.files[index]
        img = self._load_resized(path, self.in_channels)
        img = self.preprocess.apply(img, self.preprocess.draw(img.size, self._rng(index, epoch)))
        return {"source": pil_to_tensor(img), "source_path": str(path)}
