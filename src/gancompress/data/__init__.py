"""Image datasets in the pix2pix / CycleGAN folder layouts.

    open_dataset(root, mode="auto", phase="train", ...)    -> torch Dataset of dicts
    dataset_from_config(cfg.data, phase, train=True, seed)  -> the same, from a DataConfig

Items: {"source": (C, H, W) in [-1, 1], "target": (C, H, W), "source_path", "target_path"}
("target"/"target_path" absent for single folders). Layouts: folders.py; preprocessing:
transforms.py; resumable data order: sampling.py; built-in demo data: demo.py.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from gancompress.data.datasets import AlignedDataset, FolderDataset, SingleDataset, UnalignedDataset
from gancompress.data.folders import Layout, resolve_layout, select
from gancompress.data.sampling import EpochBatchSampler, epoch_order
from gancompress.data.transforms import Preprocess
from gancompress.errors import UserError

__all__ = ["open_dataset", "dataset_from_config", "FolderDataset", "AlignedDataset",
           "UnalignedDataset", "SingleDataset", "EpochBatchSampler", "epoch_order", "Preprocess",
           "Layout", "resolve_layout"]

_CLASSES = {"aligned": AlignedDataset, "unaligned": UnalignedDataset, "single": SingleDataset}


def open_dataset(root: str | Path, mode: str = "auto", phase: str = "train",
                 direction: str = "AtoB", preprocess: str = "resize_and_crop",
                 load_size: int = 286, crop_size: int = 256, flip: bool = True,
                 in_channels: int = 3, out_channels: int = 3,
                 file_list: str | Path | list[str] | None = None, cache: bool = False,
                 seed: int = 0, augment: bool | None = None,
                 exclude_list: str | Path | list[str] | None = None) -> FolderDataset:
    """A dataset over `root` in the given layout (see folders.py).

    augment: random crop position and flip (if `flip`); default True for phase "train" only,
    otherwise the crop is centred and nothing is flipped. For the published evaluation
    protocol (resize to 256, no flip) pass load_size=crop_size (or use dataset_from_config
    with train=False).
    """
    layout = select(resolve_layout(root, mode, phase), file_list, exclude_list)
    if augment is None:
        augment = phase == "train"
    transform = Preprocess(preprocess, load_size, crop_size, flip, augment)
    return _CLASSES[layout.mode](layout, transform, direction=direction, in_channels=in_channels,
                                 out_channels=out_channels, cache=cache, seed=seed)


def dataset_from_config(data: Any, phase: str = "train", train: bool = True,
                        seed: int = 0) -> FolderDataset:
    """Dataset from a `config.DataConfig`.

    train=True: the training pipeline (load_size -> random crop_size, flip) with the file lists.
    train=False: evaluation (resize to crop_size, centred, no flip), no file lists.
    """
    if not data.root:
        raise UserError("no dataset folder given: pass --data DIR (or set data.root=DIR)")
    if data.mode == "labels":  # label maps -> photos (GauGAN)
        return label_dataset(data, phase, train=train, seed=seed,
                             file_list=data.file_list if train else None,
                             exclude_list=data.exclude_list if train else None)
    return open_dataset(
        data.root, mode=data.mode, phase=phase, direction=data.direction,
        preprocess=data.preprocess, load_size=data.load_size if train else data.crop_size,
        crop_size=data.crop_size, flip=data.flip and train, in_channels=data.in_channels,
        out_channels=data.out_channels, file_list=data.file_list if train else None,
        exclude_list=data.exclude_list if train else None, cache=data.cache, seed=seed,
        augment=train)


def label_dataset(data: Any, phase: str = "train", train: bool = False, seed: int = 0,
                  file_list: Any = None, exclude_list: Any = None) -> Any:
    """The label-map dataset (data/segmaps.py) of a labels-mode DataConfig; train=False:
    no flip."""
    from gancompress.data.segmaps import LabelMapDataset
    given = data.label_nc > 0  # else the layout's own label_nc / dontcare / instance rule
    return LabelMapDataset(
        data.root, layout=data.label_layout, phase=phase, size=input_shape(data)[1:],
        label_nc=data.label_nc or None, contain_dontcare=data.contain_dontcare if given else None,
        no_instance=data.no_instance if given else None, flip=data.flip, train=train, seed=seed,
        file_list=file_list, exclude_list=exclude_list)


def input_shape(data: Any) -> tuple[int, int, int]:
    """(C, H, W) of one generator input at the evaluation size of a DataConfig: square
    crop_size images, or for label maps crop_size wide at data.aspect_ratio, one-hot (+ edge)
    channels."""
    if data.mode == "labels":
        from gancompress.data.segmaps import semantic_channels
        return (semantic_channels(data)[0], max(1, round(data.crop_size / data.aspect_ratio)),
                data.crop_size)
    return (data.in_channels, data.crop_size, data.crop_size)


def data_channels(data: Any) -> tuple[int, int]:
    """(input, output) channels of the generator the DataConfig's data feeds."""
    return input_shape(data)[0], 3 if data.mode == "labels" else data.out_channels


def training_inputs(data: Any, exclude: Sequence[str] | None = None, count: int = 64,
                    batch_size: int = 16, device: Any = "cpu") -> list[torch.Tensor]:
    """Up to `count` training inputs (evaluation preprocessing, spread evenly over the training
    set, `exclude` left out) in batches: what BatchNorm re-calibration of a sub-network runs on.
    `data` is a config.DataConfig."""
    if not data.root:
        raise UserError("no dataset folder given: pass --data DIR (the training data)")
    if data.mode == "labels":
        dataset = label_dataset(data, exclude_list=list(exclude or []) or None)
    else:
        dataset = open_dataset(data.root, mode=data.mode, phase="train", direction=data.direction,
                               preprocess=data.preprocess, load_size=data.crop_size,
                               crop_size=data.crop_size, flip=False, in_channels=data.in_channels,
                               out_channels=data.out_channels, exclude_list=list(exclude or []) or None,
                               augment=False)
    step = max(1, len(dataset) // count)
    picked = list(range(0, len(dataset), step))[:count]
    return [torch.stack([dataset[i]["source"] for i in picked[s:s + batch_size]]).to(device)
            for s in range(0, len(picked), batch_size)]
