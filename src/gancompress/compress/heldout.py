"""The images a compression scores on: the held-out slice of the training set (chosen once per
run with its seed, kept out of compression training), the test split for the report, the
label batches of the mIoU score, and the training inputs of BatchNorm re-calibration."""
from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import torch

from gancompress.compress.scoring import scoring_inputs
from gancompress.config import Config
from gancompress.errors import UserError
from gancompress.models.elastic import ElasticGenerator, batchnorms


def held_out_names(cfg: Config) -> list[str]:
    """compress.held_out training inputs (paths relative to the data folder), chosen at random
    with the run's seed, from the input side."""
    from gancompress.data import label_dataset, resolve_layout
    if cfg.data.mode == "labels":
        files = label_dataset(cfg.data).input_names()
    else:
        layout = resolve_layout(cfg.data.root, cfg.data.mode, "train")
        side = {"aligned": "AB", "single": "A"}.get(layout.mode)
        if side is None:
            side = "A" if cfg.data.direction == "AtoB" else "B"
        files = [p.relative_to(layout.root).as_posix() for p in layout.files[side]]
    n = cfg.compress.held_out
    if n >= len(files):
        raise UserError(f"compress.held_out = {n} leaves no training images ({len(files)} in "
                        f"{cfg.data.root}); hold out fewer, e.g. compress.held_out="
                        f"{max(1, len(files) // 10)}")
    picked = sorted(random.Random(cfg.train.seed).sample(range(len(files)), n))
    return [files[i] for i in picked]


def held_out_batches(cfg: Config, names: Sequence[str] | None,
                     teacher: ElasticGenerator | None = None, batch_size: int = 16,
                     device: torch.device | str = "cpu", phase: str = "train"
                     ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], bool]:
    """(batches of (source, reference), paired) of the `names` images of `phase` (None = all
    of them). Evaluation preprocessing (resize to crop_size, no flip). Paired data: reference =
    ground truth; otherwise the teacher's output."""
    from gancompress.data import label_dataset, open_dataset, resolve_layout
    d = cfg.data
    layout = None if d.mode == "labels" else resolve_layout(d.root, d.mode, phase)
    mode = "labels" if layout is None else layout.mode
    # a multimodal teacher (MUNIT) is the reference under the same style codes, on any data
    paired = mode in ("aligned", "labels") and not getattr(teacher, "multimodal", False)
    file_list = list(names) if names is not None else None
    if mode == "labels":  # label maps -> photos: the photos are the ground truth
        dataset = label_dataset(d, phase, file_list=file_list)
    elif mode == "aligned":
        dataset = open_dataset(d.root, mode="aligned", phase=phase, direction=d.direction,
                               preprocess=d.preprocess, load_size=d.crop_size,
                               crop_size=d.crop_size, flip=False, in_channels=d.in_channels,
                               out_channels=d.out_channels, file_list=file_list, augment=False)
    else:
        if names is not None:
            folder = Path(d.root) / Path(names[0]).parent
            file_list = [Path(n).name for n in names]
        elif layout.mode == "single":
            folder = layout.files["A"][0].parent
        else:  # unaligned: the input domain's folder of the phase
            folder = layout.files["A" if d.direction == "AtoB" else "B"][0].parent
        dataset = open_dataset(folder, mode="single", phase=phase, preprocess=d.preprocess,
                               load_size=d.crop_size, crop_size=d.crop_size, flip=False,
                               in_channels=d.in_channels, out_channels=d.out_channels,
                               file_list=file_list, augment=False)
    batches = []
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(len(dataset), start + batch_size))]
        source = torch.stack([it["source"] for it in items]).to(device)
        if paired:
            reference = torch.stack([it["target"] for it in items]).to(device)
        else:
            if teacher is None:
                raise ValueError("unpaired data: the teacher's output is the reference")
            with torch.no_grad():
                reference = teacher(*scoring_inputs(teacher, source, len(batches)))
        batches.append((source, reference))
    return batches, paired


def held_out_label_batches(cfg: Config, names: Sequence[str], device: torch.device | str = "cpu",
                           batch_size: int = 16) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(one-hot input, Cityscapes train ids) batches of the held-out label maps: what the mIoU
    search score runs on."""
    from gancompress.data import label_dataset
    from gancompress.data.segmaps import train_ids
    d = cfg.data
    if d.mode != "labels" or d.label_nc not in (0, 35) or (
            d.label_layout not in ("auto", "cityscapes")):
        raise UserError("compress.metric=miou scores Cityscapes label maps (data.mode=labels, "
                        "the cityscapes layout, 35 label ids); use l1, psnr, fid or kid here")
    dataset = label_dataset(d, file_list=list(names))
    if dataset.layout != "cityscapes":
        raise UserError(f"compress.metric=miou scores Cityscapes label maps; {d.root} has the "
                        f"{dataset.layout} layout: use l1, psnr, fid or kid")
    batches = []
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(len(dataset), start + batch_size))]
        batches.append((torch.stack([it["source"] for it in items]).to(device),
                        torch.stack([train_ids(it["label"][0]) for it in items])))
    return batches


def batches_of_test_split(cfg: Config, teacher: ElasticGenerator,
                          device: torch.device | str = "cpu"
                          ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], bool] | None:
    """held_out_batches over the whole test split (label maps: the layout's test phase, e.g.
    Cityscapes val), or None when the data has none."""
    from gancompress.data import resolve_layout
    from gancompress.data.segmaps import label_layout
    try:
        if cfg.data.mode == "labels":
            label_layout(cfg.data.root, cfg.data.label_layout, "test")
        else:
            resolve_layout(cfg.data.root, cfg.data.mode, "test")
    except UserError:
        return None  # no test split: the report says held-out images only
    return held_out_batches(cfg, None, teacher, device=device, phase="test")


def calibration_batches(cfg: Config, held_out: Sequence[str], count: int = 64,
                        device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """Training inputs (never the held-out slice) for BatchNorm re-calibration."""
    from gancompress.data import training_inputs
    return training_inputs(cfg.data, exclude=held_out, count=count, device=device)


def needs_calibration(model: ElasticGenerator) -> bool:
    return bool(batchnorms(model))
