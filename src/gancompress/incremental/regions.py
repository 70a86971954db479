"""Changed regions of feature maps, and how a layer maps them (docs: incremental inference).

A region is the set of pixels of a (B, C, H, W) activation that may differ from the cached
activation of the previous input: a (B, 1, H, W) boolean mask, with its flat row indices
(b*H*W + y*W + x, the row layout of the engine's channels-last buffers) computed once.

How a layer maps a region (exact mode, the true receptive field):
    conv k, stride s, padding p, dilation d    max-pool of the zero-padded mask, same k/s/d
    transposed conv                            transposed conv of the mask with a ones kernel
    pad, nearest resampling                    the same index map as the values (exact)
    pixel-wise ops (norms with fixed statistics, activations, +, *, cat)   union of inputs
Fast mode replaces the growth of conv layers by one mask per resolution: the edited input
pixels resized to that resolution, dilated by `dilation` pixels and rounded out to whole
tiles (SIGE's trade; the error is measured against the dense pass).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class Region:
    """Changed pixels of a map: `mask` (B, 1, H, W) bool; `full` when every pixel changed."""

    __slots__ = ("mask", "full", "within_base", "_rows", "_count", "_tiles")

    def __init__(self, mask: torch.Tensor, full: bool = False, within_base: bool = False):
        self.mask = mask
        self.full = full
        # fast mode: inside the per-resolution region of the edit (the model's input changes,
        # what nearest resizing / padding makes of them, the per-resolution regions)
        self.within_base = within_base
        self._rows: torch.Tensor | None = None
        self._count: int | None = None
        self._tiles: dict = {}

    @classmethod
    def everything(cls, batch: int, h: int, w: int, device) -> Region:
        return cls(torch.ones(batch, 1, h, w, dtype=torch.bool, device=device), full=True)

    @classmethod
    def nothing(cls, batch: int, h: int, w: int, device) -> Region:
        region = cls(torch.zeros(batch, 1, h, w, dtype=torch.bool, device=device))
        region._count = 0
        return region

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.mask.shape[0], self.mask.shape[2], self.mask.shape[3]

    @property
    def pixels(self) -> int:
        return self.mask.numel()

    def count(self) -> int:
        if self._count is None:
            self._count = self.pixels if self.full else int(self.mask.sum())
        return self._count

    @property
    def empty(self) -> bool:
        return self.count() == 0

    def fraction(self) -> float:
        return self.count() / max(1, self.pixels)

    def rows(self) -> torch.Tensor:
        """Flat row index of every changed pixel (ascending)."""
        if self._rows is None:
            self._rows = self.mask.reshape(-1).nonzero().squeeze(1)
        return self._rows

    def union(self, other: Region) -> Region:
        if other is self or other.empty:
            return self
        if self.empty:
            return other
        if self.full or other.full:
            return self if self.full else other
        return Region(self.mask | other.mask, within_base=self.within_base and other.within_base)

    def tiles(self, bh: int, bw: int) -> torch.Tensor:
        """(N, 3) long: (batch, tile row, tile column) of every bh x bw tile holding a change.

        The tile grid starts at 0; the last row / column of tiles is clamped inside the map
        (it overlaps its neighbour when H or W is not a multiple of the tile)."""
        key = (bh, bw)
        if key not in self._tiles:
            if self.full:
                b, h, w = self.shape
                grid = torch.ones(b, -(-h // bh), -(-w // bw), dtype=torch.bool,
                                  device=self.mask.device)
            else:
                grid = F.max_pool2d(self.mask.float(), (bh, bw), (bh, bw), ceil_mode=True)[:, 0] > 0
            self._tiles[key] = grid.nonzero()
        return self._tiles[key]


def tile_shape(h: int, w: int, block: int) -> tuple[int, int]:
    return min(block, h), min(block, w)


def tile_rows(tiles: torch.Tensor, h: int, w: int, bh: int, bw: int) -> torch.Tensor:
    """(N, bh, bw) flat row of every pixel of the given tiles of an h x w map."""
    device = tiles.device
    y0 = (tiles[:, 1] * bh).clamp(max=h - bh)
    x0 = (tiles[:, 2] * bw).clamp(max=w - bw)
    ys = (tiles[:, 0] * h + y0)[:, None] + torch.arange(bh, device=device)
    xs = x0[:, None] + torch.arange(bw, device=device)
    return ys[:, :, None] * w + xs[:, None, :]


def window_rows(batch_index: torch.Tensor, y0: torch.Tensor, x0: torch.Tensor, ph: int, pw: int,
                h: int, w: int, zero_row: int) -> torch.Tensor:
    """(N, ph, pw) flat rows of windows starting at (y0, x0) of an h x w map; pixels outside
    the map read `zero_row` (the engine's buffers keep one zero row after the map)."""
    device = y0.device
    ys = y0[:, None] + torch.arange(ph, device=device)
    xs = x0[:, None] + torch.arange(pw, device=device)
    valid = ((ys >= 0) & (ys < h))[:, :, None] & ((xs >= 0) & (xs < w))[:, None, :]
    rows = (batch_index[:, None] * h + ys.clamp(0, h - 1))[:, :, None] * w + xs.clamp(0, w - 1)[:, None, :]
    return torch.where(valid, rows, torch.full_like(rows, zero_row))


def conv_mask(mask: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int],
              padding: tuple[int, int], dilation: tuple[int, int]) -> torch.Tensor:
    """Output pixels of a conv whose receptive field holds a changed input pixel."""
    padded = F.pad(mask.float(), (padding[1], padding[1], padding[0], padding[0]))
    return F.max_pool2d(padded, kernel, stride, 0, dilation) > 0


def conv_transpose_mask(mask: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int],
                        padding: tuple[int, int], output_padding: tuple[int, int],
                        dilation: tuple[int, int]) -> torch.Tensor:
    ones = torch.ones(1, 1, *kernel, device=mask.device)
    return F.conv_transpose2d(mask.float(), ones, None, stride, padding, output_padding, 1,
                              dilation) > 0


def resize_mask(mask: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """A change mask at another resolution: any changed pixel of a cell marks the cell."""
    if mask.shape[-2:] == (h, w):
        return mask
    if h <= mask.shape[-2] and w <= mask.shape[-1]:
        return F.adaptive_max_pool2d(mask.float(), (h, w)) > 0
    return F.interpolate(mask.float(), size=(h, w), mode="nearest") > 0


def dilate(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    if pixels <= 0:
        return mask
    return F.max_pool2d(mask.float(), 2 * pixels + 1, 1, pixels) > 0


def tile_align(mask: torch.Tensor, bh: int, bw: int) -> torch.Tensor:
    """Every pixel of a tile that holds a changed pixel (tiles clamped as in `tiles`)."""
    h, w = mask.shape[-2:]
    region = Region(mask)
    out = torch.zeros(mask.numel(), dtype=torch.bool, device=mask.device)
    tiles = region.tiles(bh, bw)
    if len(tiles):
        out[tile_rows(tiles, h, w, bh, bw).reshape(-1)] = True
    return out.view(mask.shape)
