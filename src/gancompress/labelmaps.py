"""Label maps, the input of label-map generators (GauGAN / SPADE): reading one label file (and its
instance map) and encoding it as the generator's input tensor.

The ground-floor twin of imaging.py (which reads images): both are the readers of one input
file, used by the datasets (data/segmaps.py), by a generator family's own `read_input` and
`example_inputs` (models/spade.py: models never import data) and by the demo.

Conventions (docs/families.md sec. 4, as the SPADE / gan-compression datasets do):
    label ids    read with NEAREST resizing; 255 ("dontcare") becomes label_nc
    one-hot      zeros(B, label_nc + contain_dontcare, H, W).scatter_(1, label, 1)
    edges        a pixel is 1 where its instance id differs from its left, right, upper or lower
                 neighbour (both pixels of a differing pair; nothing compared across the border)
    input        cat([one-hot, edge], 1): the edge map is the last channel (absent with no_instance)
Colour-coded label PNGs (the Cityscapes palette, as drawn by users) map back to label ids.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gancompress.errors import UserError
from gancompress.imaging import image_size, open_checked

DONTCARE = 255

# Cityscapes labelId -> colour (the palette of the official cityscapesScripts labels.py);
# ids 0..5 are void classes drawn black or in their own colours.
# The 19 evaluated Cityscapes classes (trainIds 0..18) as labelIds.
TRAIN_LABEL_IDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)


def train_ids(label_ids: torch.Tensor) -> torch.Tensor:
    """Cityscapes labelIds -> trainIds (0..18; every other id 255 = ignored by mIoU)."""
    table = torch.full((256,), 255, dtype=torch.int64)
    table[list(TRAIN_LABEL_IDS)] = torch.arange(len(TRAIN_LABEL_IDS))
    return table[label_ids.long().clamp(0, 255)]


CITYSCAPES_PALETTE: dict[int, tuple[int, int, int]] = {
    0: (0, 0, 0), 1: (0, 0, 0), 2: (0, 0, 0), 3: (0, 0, 0), 4: (0, 0, 0), 5: (111, 74, 0),
    6: (81, 0, 81), 7: (128, 64, 128), 8: (244, 35, 232), 9: (250, 170, 160),
    10: (230, 150, 140), 11: (70, 70, 70), 12: (102, 102, 156), 13: (190, 153, 153),
    14: (180, 165, 180), 15: (150, 100, 100), 16: (150, 120, 90), 17: (153, 153, 153),
    18: (153, 153, 153), 19: (250, 170, 30), 20: (220, 220, 0), 21: (107, 142, 35),
    22: (152, 251, 152), 23: (70, 130, 180), 24: (220, 20, 60), 25: (255, 0, 0),
    26: (0, 0, 142), 27: (0, 0, 70), 28: (0, 60, 100), 29: (0, 0, 90), 30: (0, 0, 110),
    31: (0, 80, 100), 32: (0, 0, 230), 33: (119, 11, 32),
}

# Cityscapes labelId -> trainId (datasets/get_trainIds.py); every other id -> 255 (ignored).
CITYSCAPES_TRAIN_IDS: dict[int, int] = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
    26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}


def map_dontcare(label: torch.Tensor, label_nc: int) -> torch.Tensor:
    """The dataset rule: 255 (dontcare) -> label_nc."""
    return torch.where(label == DONTCARE, torch.full_like(label, label_nc), label)


def one_hot(label: torch.Tensor, label_nc: int, contain_dontcare: bool = False,
            name: str = "label map") -> torch.Tensor:
    """(B, 1, H, W) integer ids (255 already mapped to label_nc) -> (B, nc, H, W) float one-hot,
    nc = label_nc + contain_dontcare. An id outside 0..nc-1 is a UserError naming it."""
    if label.dim() == 3:
        label = label.unsqueeze(1)
    label = label.long()
    nc = label_nc + int(contain_dontcare)
    if label.numel():
        low, high = int(label.min()), int(label.max())
        if low < 0 or high >= nc:
            bad = high if high >= nc else low
            hint = (" (255 = dontcare becomes label_nc: set contain_dontcare_label for this "
                    "dataset)" if bad == label_nc else "")
            raise UserError(f"{name}: label id {bad} is outside 0..{nc - 1} (label_nc = {label_nc}"
                            f"{', plus dontcare' if contain_dontcare else ''}){hint}; set "
                            f"label_nc to the dataset's number of classes")
    out = torch.zeros(label.shape[0], nc, *label.shape[2:], dtype=torch.float32,
                      device=label.device)
    return out.scatter_(1, label, 1.0)


def instance_edges(instance: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) instance ids -> (B, 1, H, W) float edge map (1 on both sides of a change)."""
    if instance.dim() == 3:
        instance = instance.unsqueeze(1)
    edge = torch.zeros(instance.shape, dtype=torch.bool, device=instance.device)
    dx = instance[..., :, 1:] != instance[..., :, :-1]
    dy = instance[..., 1:, :] != instance[..., :-1, :]
    edge[..., :, 1:] |= dx
    edge[..., :, :-1] |= dx
    edge[..., 1:, :] |= dy
    edge[..., :-1, :] |= dy
    return edge.float()


def semantic_input(label: torch.Tensor, instance: torch.Tensor | None, label_nc: int,
                   contain_dontcare: bool = False, no_instance: bool = False,
                   name: str = "label map") -> torch.Tensor:
    """The SPADE generator input: one-hot labels (+ the instance-edge channel last)."""
    x = one_hot(map_dontcare(label.long(), label_nc), label_nc, contain_dontcare, name)
    if no_instance:
        return x
    if instance is None:
        raise UserError(f"{name}: no instance map, but this model takes an instance-edge channel; "
                        f"give the instance map (e.g. Cityscapes *_instanceIds.png) or use "
                        f"no_instance (then the model has one channel less)")
    if instance.dim() == 3:
        instance = instance.unsqueeze(1)
    if tuple(instance.shape[-2:]) != tuple(x.shape[-2:]):
        raise UserError(f"{name}: the instance map is {tuple(instance.shape[-2:])} but the label map "
                        f"is {tuple(x.shape[-2:])}; they must have the same size")
    return torch.cat([x, instance_edges(instance.to(x.device))], 1)


def random_label_map(batch: int, label_nc: int, size: tuple[int, int], cells: tuple[int, int] = (4, 8),
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A blocky random (label, instance) pair (B, 1, H, W): example inputs for a SPADE model."""
    h, w = size
    ch, cw = max(1, min(cells[0], h)), max(1, min(cells[1], w))
    coarse = torch.randint(0, label_nc, (batch, 1, ch, cw), generator=generator)
    label = torch.nn.functional.interpolate(coarse.float(), size=(h, w)).long()
    cell_id = torch.arange(ch * cw).reshape(1, 1, ch, cw).float().expand(batch, 1, ch, cw)
    instance = label * 1000 + torch.nn.functional.interpolate(cell_id, size=(h, w)).long()
    return label, instance


# -- files ---------------------------------------------------------------------------------------

def read_instance_map(path: Path, label_path: Path, label_size: tuple[int, int],
                      size: tuple[int, int] | None = None) -> np.ndarray:
    """The instance ids of `path` (resized like read_id_map); UserError unless it has the size
    (W, H) of its label map. An 8-bit instance map is scaled x255 (as SPADE reads it)."""
    img = open_checked(path, what="instance map")
    if img.size != label_size:
        raise UserError(f"{path} is {img.size[0]}x{img.size[1]} but its label map "
                        f"{label_path} is {label_size[0]}x{label_size[1]}; they must have "
                        f"the same size")
    scale = 255 if img.mode == "L" else 1
    return image_ids(img, path, size) * scale


def read_id_map(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """An integer id PNG (8/16/32-bit) as int64 (H, W), resized NEAREST to size (H, W) if given.

    8-bit ('L'/'P') files hold ids 0..255; 'I' / 'I;16' files (Cityscapes instanceIds) hold
    larger ids. RGB files are refused here (use `colour_to_ids`)."""
    return image_ids(open_checked(path, what="label map"), path, size)


def image_ids(img: Image.Image, path: str | Path, size: tuple[int, int] | None) -> np.ndarray:
    """The ids of an opened (open_checked) grey / palette / 16-bit label image, as read_id_map."""
    if img.mode in ("RGB", "RGBA"):
        raise UserError(f"{path} is a colour image; label maps must hold class ids (grey / "
                        f"palette PNG), or be converted with the palette (colour labels)")
    if img.mode in ("LA", "PA"):  # ids with an alpha channel: the ids
        img = img.getchannel(0)
    if img.mode not in ("1", "L", "P", "I") and not img.mode.startswith("I;16"):
        raise UserError(f"label map {path} is a {img.mode} image; label maps hold class ids "
                        f"(a grey, palette or 16-bit PNG) or the palette's colours (RGB)")
    if size is not None and img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), Image.NEAREST)
    return np.asarray(img).astype(np.int64)


def colour_to_ids(rgb: np.ndarray, palette: Mapping[int, tuple[int, int, int]] = CITYSCAPES_PALETTE,
                  name: str = "colour label map") -> np.ndarray:
    """(H, W, 3) uint8 colour-coded labels -> (H, W) ids by exact palette match.

    Colours shared by several ids (Cityscapes' void classes are all black) map to the smallest.
    A colour not in the palette is a UserError naming it and a pixel where it occurs."""
    rgb = np.asarray(rgb)[..., :3].astype(np.int64)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    lut: dict[int, int] = {}
    for label_id, (r, g, b) in sorted(palette.items(), reverse=True):
        lut[(r << 16) | (g << 8) | b] = label_id
    keys = np.array(sorted(lut), dtype=np.int64)
    values = np.array([lut[k] for k in keys], dtype=np.int64)
    pos = np.clip(np.searchsorted(keys, codes), 0, len(keys) - 1)
    bad = keys[pos] != codes
    if bad.any():
        y, x = map(int, np.argwhere(bad)[0])
        c = tuple(int(v) for v in rgb[y, x])
        raise UserError(f"{name}: colour {c} at pixel (x={x}, y={y}) is not in the label palette; "
                        f"draw labels with the palette's exact colours (no anti-aliasing)")
    return values[pos]


# -- single files (generate) ---------------------------------------------------------------------

def read_label_ids(path: str | Path, size: tuple[int, int] | None = None,
                   palette: Mapping[int, tuple[int, int, int]] = CITYSCAPES_PALETTE) -> np.ndarray:
    """A label PNG as ids (H, W): class-id PNGs (grey or palette) as stored, colour PNGs mapped
    back with `palette` (the Cityscapes colours by default); resized NEAREST to size (H, W)."""
    img = open_checked(path, what="label map")  # no EXIF orientation: pixels are ids
    if img.mode in ("RGB", "RGBA"):
        if size is not None and img.size != (size[1], size[0]):
            img = img.resize((size[1], size[0]), Image.NEAREST)
        return colour_to_ids(np.asarray(img.convert("RGB")), palette, name=str(path))
    return image_ids(img, path, size)


def instance_file(label: Path, instances: str | Path | None = None) -> Path | None:
    """The instance map of a label file: in `instances` (a folder) by name, else next to it as
    the layouts keep them (labels/X.png -> instances/X.png; Cityscapes *_gtFine_labelIds.png ->
    *_gtFine_instanceIds.png in the same folder); None when there is none."""
    city = "_gtFine_labelIds.png"
    names = [label.name]
    if label.name.endswith(city):
        names.insert(0, label.name[: -len(city)] + "_gtFine_instanceIds.png")
    folders = [Path(instances)] if instances is not None else \
        [label.parent, label.parent.parent / "instances"]
    for folder in folders:
        for name in names:
            candidate = folder / name
            if candidate != label and candidate.is_file():
                return candidate
    return None


def read_label_input(path: str | Path, label_nc: int, edges: bool,
                     size: tuple[int, int] | None = None, instances: str | Path | None = None,
                     palette: Mapping[int, tuple[int, int, int]] = CITYSCAPES_PALETTE,
                     contain_dontcare: bool = False) -> torch.Tensor:
    """One label file (+ its instance map) -> the SPADE input (label_nc [+ dontcare] [+ edge],
    H, W); with contain_dontcare the id 255 is the dontcare channel (the dataset rule).

    Every problem is one UserError naming the file: an id >= label_nc, a colour outside the
    palette, a missing instance map when the model takes edges, mismatched sizes."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"label map not found: {path}")
    native = image_size(path, what="label map")
    label = torch.from_numpy(read_label_ids(path, size, palette))[None, None]
    instance = None
    if edges:
        found = instance_file(path, instances)
        if found is None:
            where = f"in {instances}" if instances is not None else \
                "next to it (instances/ beside labels/, or Cityscapes *_gtFine_instanceIds.png)"
            raise UserError(f"{path}: this model takes an instance-edge channel, and no instance "
                            f"map of that name was found {where}; pass --instances DIR")
        instance = torch.from_numpy(read_instance_map(found, path, native, size))[None, None]
    elif instances is not None:
        raise UserError("--instances: this model takes no instance-edge channel (it was trained "
                        "with no_instance); drop --instances")
    return semantic_input(label, instance, label_nc, contain_dontcare, no_instance=not edges,
                          name=str(path))[0]
