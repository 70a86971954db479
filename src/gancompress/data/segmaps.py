"""Semantic label-map datasets for GauGAN (SPADE): folder layouts (Cityscapes, COCO-Stuff, ADE20K,
labels/ + instances/ + images/), the dataset of (label input, photo) pairs, and the input
channels of a labels-mode config.

Reading one label file and encoding it (one-hot + instance edges) is gancompress.labelmaps (the
ground floor, next to imaging.py, so that generator families read their inputs without importing
data); its names are re-exported here.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from gancompress.errors import UserError
from gancompress.imaging import image_size, open_checked
from gancompress.labelmaps import (  # noqa: F401 - re-exported
    CITYSCAPES_PALETTE,
    CITYSCAPES_TRAIN_IDS,
    DONTCARE,
    TRAIN_LABEL_IDS,
    colour_to_ids,
    image_ids,
    instance_edges,
    instance_file,
    map_dontcare,
    one_hot,
    random_label_map,
    read_id_map,
    read_instance_map,
    read_label_ids,
    read_label_input,
    semantic_input,
    train_ids,
)


# -- dataset layouts -----------------------------------------------------------------------------

# Per-dataset label conventions (docs/families.md sec. 4): label_nc, contain_dontcare_label,
# no_instance, and the (H, W) the published models use (Cityscapes 512x256: aspect 2:1).
LABEL_DATASETS: dict[str, dict] = {
    "cityscapes": dict(label_nc=35, contain_dontcare=False, no_instance=False, size=(256, 512),
                       upsampling="more"),
    "coco": dict(label_nc=182, contain_dontcare=True, no_instance=False, size=(256, 256),
                 upsampling="normal"),
    "ade20k": dict(label_nc=150, contain_dontcare=True, no_instance=True, size=(256, 256),
                   upsampling="normal"),
    "folders": dict(label_nc=0, contain_dontcare=False, no_instance=False, size=(256, 512),
                    upsampling="more"),
}

_PHASE_NAMES = {"cityscapes": {"train": "train", "val": "val", "test": "val"},
                "coco": {"train": "train", "val": "val", "test": "val"},
                "ade20k": {"train": "training", "val": "validation", "test": "validation"}}


def _files(folder: Path, suffix: str) -> list[Path]:
    return sorted(p for p in folder.rglob(f"*{suffix}") if p.is_file())


def _stem_map(paths: list[Path], suffix: str) -> dict[str, Path]:
    return {p.name[: -len(suffix)] if suffix and p.name.endswith(suffix) else p.stem: p
            for p in paths}


def detect_label_layout(root: str | Path) -> str:
    """cityscapes (gtFine + leftImg8bit), coco (train_label / train_img), ade20k
    (annotations + images), folders ([phase/]labels + images), or a UserError saying what was found."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"dataset folder not found: {root}")
    if (root / "gtFine").is_dir() and (root / "leftImg8bit").is_dir():
        return "cityscapes"
    if (root / "train_label").is_dir() or (root / "val_label").is_dir():
        return "coco"
    if (root / "annotations").is_dir() and (root / "images").is_dir():
        return "ade20k"
    if (root / "labels").is_dir() or any((root / p / "labels").is_dir() for p in ("train", "test", "val")):
        return "folders"
    found = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir())) or "no folders"
    raise UserError(f"{root} is not a label-map dataset: expected Cityscapes (gtFine/ and "
                    f"leftImg8bit/), COCO-Stuff (train_label/, train_img/, train_inst/), ADE20K "
                    f"(annotations/, images/) or labels/ + images/ folders; found {found}")


def label_layout(root: str | Path, layout: str = "auto", phase: str = "train"
                 ) -> list[tuple[Path, Path | None, Path | None]]:
    """(label, instance or None, image or None) files of one phase, matched by name."""
    root = Path(root)
    layout = detect_label_layout(root) if layout == "auto" else layout
    if layout not in LABEL_DATASETS:
        raise UserError(f"unknown label-map layout {layout!r}; use auto, {', '.join(LABEL_DATASETS)}")
    if layout == "cityscapes":
        p = _PHASE_NAMES[layout][phase]
        labels = _files(root / "gtFine" / p, "_gtFine_labelIds.png")
        inst = _stem_map(_files(root / "gtFine" / p, "_gtFine_instanceIds.png"), "_gtFine_instanceIds.png")
        imgs = _stem_map(_files(root / "leftImg8bit" / p, "_leftImg8bit.png"), "_leftImg8bit.png")
        suffix = "_gtFine_labelIds.png"
    elif layout == "coco":
        p = _PHASE_NAMES[layout][phase]
        labels = _files(root / f"{p}_label", ".png")
        inst = _stem_map(_files(root / f"{p}_inst", ".png"), ".png") if (root / f"{p}_inst").is_dir() else {}
        imgs = _stem_map([*_files(root / f"{p}_img", ".jpg"), *_files(root / f"{p}_img", ".png")], "")
        suffix = ".png"
    elif layout == "ade20k":
        p = _PHASE_NAMES[layout][phase]
        labels = _files(root / "annotations" / p, ".png")
        inst = {}
        imgs = _stem_map(_files(root / "images" / p, ".jpg"), ".jpg")
        suffix = ".png"
    else:
        base = root / phase if (root / phase / "labels").is_dir() else root
        if not (base / "labels").is_dir():
            raise UserError(f"no labels/ folder for phase {phase!r} in {root}")
        labels = _files(base / "labels", ".png")
        inst = _stem_map(_files(base / "instances", ".png"), ".png") if (base / "instances").is_dir() else {}
        imgs = _stem_map([p for ext in (".jpg", ".jpeg", ".png") for p in _files(base / "images", ext)],
                         "") if (base / "images").is_dir() else {}
        suffix = ".png"
    if not labels:
        raise UserError(f"no label maps for phase {phase!r} in {root} ({layout} layout)")
    out = []
    for label in labels:
        stem = label.name[: -len(suffix)]
        out.append((label, inst.get(stem), imgs.get(stem)))
    return out


class LabelMapDataset(torch.utils.data.Dataset):
    """Label map (+ instance map) -> photo pairs for GauGAN, in any of the layouts above.

    Items: {"source": (C, H, W) one-hot (+ edges), "target": (3, H, W) in [-1, 1] (when images
    exist), "label": (1, H, W) ids, "instance": (1, H, W) ids, "source_path", "target_path"}.
    Labels and instances are resized NEAREST, photos bicubic, to `size` (H, W); while training a
    horizontal flip is drawn from (seed, epoch, index), so resumed runs see the same items.
    Colour label PNGs are mapped to ids with `palette` (Cityscapes colours by default).
    """

    def __init__(self, root: str | Path, layout: str = "auto", phase: str = "train",
                 size: tuple[int, int] | None = None, label_nc: int | None = None,
                 contain_dontcare: bool | None = None, no_instance: bool | None = None,
                 flip: bool = True, train: bool = True, seed: int = 0,
                 palette: Mapping[int, tuple[int, int, int]] = CITYSCAPES_PALETTE,
                 file_list: str | Path | list[str] | None = None,
                 exclude_list: str | Path | list[str] | None = None):
        self.root = Path(root)
        self.layout = detect_label_layout(root) if layout == "auto" else layout
        spec = LABEL_DATASETS.get(self.layout)
        if spec is None:
            raise UserError(f"unknown label-map layout {layout!r}; use auto, {', '.join(LABEL_DATASETS)}")
        self.items = label_layout(root, self.layout, phase)
        if file_list is not None or exclude_list is not None:  # by label file (name or path)
            from gancompress.data.folders import Layout, select

            kept = set(select(Layout("labels", self.root, {"label": [i[0] for i in self.items]}),
                              file_list, exclude_list).files["label"])
            self.items = [item for item in self.items if item[0] in kept]
        self.label_nc = int(label_nc or spec["label_nc"])
        if self.label_nc < 1:
            raise UserError("label_nc is needed for labels/ + images/ folders: the number of classes")
        self.contain_dontcare = spec["contain_dontcare"] if contain_dontcare is None else contain_dontcare
        self.no_instance = spec["no_instance"] if no_instance is None else no_instance
        self.size = tuple(size or spec["size"])
        self.flip, self.train, self.seed, self.palette = flip, train, int(seed), palette

    def check(self, limit: int = 10) -> None:
        """Open every label, instance and photo file's header now: unreadable files fail before
        training starts, in one UserError listing them (up to `limit` named)."""
        from gancompress.data.datasets import check_headers

        check_headers([p for item in self.items for p in item if p is not None], self.root,
                      limit=limit)

    def fingerprint(self) -> dict:
        """Which files this dataset reads: {"images", "fingerprint"} (sorted relative names)."""
        from gancompress.files import names_fingerprint

        names = [p.relative_to(self.root).as_posix() if p.is_relative_to(self.root) else p.name
                 for item in self.items for p in item if p is not None]
        return {"images": len(names), "fingerprint": names_fingerprint(names)}

    def input_names(self) -> list[str]:
        """The label files (the inputs), relative to the dataset folder."""
        return [item[0].relative_to(self.root).as_posix() for item in self.items]

    @property
    def semantic_nc(self) -> int:
        """Generator input channels: label_nc + dontcare + edge."""
        return self.label_nc + int(self.contain_dontcare) + (0 if self.no_instance else 1)

    def __len__(self) -> int:
        return len(self.items)

    def _ids(self, path: Path) -> np.ndarray:
        img = open_checked(path, what="label map")  # ids: no EXIF orientation
        if img.mode in ("RGB", "RGBA"):
            rgb = np.asarray(img.convert("RGB").resize((self.size[1], self.size[0]), Image.NEAREST))
            return colour_to_ids(rgb, self.palette, name=str(path))
        return image_ids(img, path, self.size)

    def __getitem__(self, key) -> dict:
        index, epoch = (int(key[0]), int(key[1])) if isinstance(key, (tuple, list)) else (int(key), 0)
        label_path, inst_path, img_path = self.items[index]
        label_size = image_size(label_path, what="label map")
        label = torch.from_numpy(self._ids(label_path))[None]
        instance = None
        if not self.no_instance:
            if inst_path is None:
                raise UserError(f"{label_path}: no instance map found (this dataset uses instance "
                                f"edges); add it, or set no_instance (the model then has "
                                f"{self.semantic_nc - 1} input channels)")
            instance = torch.from_numpy(read_instance_map(inst_path, label_path, label_size,
                                                          self.size))[None]
        flip = (self.train and self.flip
                and bool(np.random.default_rng([2, self.seed % 2**32, epoch, index]).random() < 0.5))
        if flip:
            label = label.flip(-1)
            instance = None if instance is None else instance.flip(-1)
        source = semantic_input(label[None], None if instance is None else instance[None],
                                self.label_nc, self.contain_dontcare, self.no_instance,
                                name=str(label_path))[0]
        item = {"source": source, "label": map_dontcare(label, self.label_nc),
                "source_path": str(label_path)}
        if instance is not None:
            item["instance"] = instance
        if img_path is not None:
            img = open_checked(img_path, orient=True)  # a photo: upright as it is shown
            if img.size != label_size:
                raise UserError(f"{img_path} is {img.size[0]}x{img.size[1]} but its label map "
                                f"{label_path} is {label_size[0]}x{label_size[1]}; a photo and "
                                f"its label map must have the same size")
            photo = img.convert("RGB").resize((self.size[1], self.size[0]), Image.BICUBIC)
            target = torch.from_numpy(np.asarray(photo, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1
            item["target"] = target.flip(-1) if flip else target
            item["target_path"] = str(img_path)
        return item


def semantic_channels(data: Any) -> tuple[int, bool, bool]:
    """(generator input channels, instance edges?, a dontcare channel?) of a labels-mode
    config.DataConfig."""
    d = data
    if d.label_nc:
        return (d.label_nc + int(d.contain_dontcare) + (0 if d.no_instance else 1),
                not d.no_instance, bool(d.contain_dontcare))
    layout = d.label_layout if d.label_layout != "auto" else detect_label_layout(d.root)
    spec = LABEL_DATASETS[layout]
    if not spec["label_nc"]:
        raise UserError(f"data.label_nc is needed for the {layout!r} layout: the number of label ids")
    nc = spec["label_nc"] + int(spec["contain_dontcare"]) + (0 if spec["no_instance"] else 1)
    return nc, not spec["no_instance"], bool(spec["contain_dontcare"])


