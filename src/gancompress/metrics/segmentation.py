"""Cityscapes mIoU: segment generated images with DRN-D-105 and compare with ground-truth labels.

Protocol (docs/reference.md sec. 5, as gan-compression's metric/mIoU_score.py computes it):
  1. generated image in [-1, 1] -> uint8 (published truncation) -> / 255;
  2. normalise with the Cityscapes mean (0.2901, 0.3281, 0.2870), std (0.1830, 0.1866, 0.1845);
  3. DRN-D-105 (`drn-d-105_ms_cityscapes.pth`) -> log-probabilities at the input size;
  4. log-probabilities resized bilinearly to the label resolution, 2048x1024 (W x H) for
     Cityscapes; argmax -> predicted train id (0..18);
  5. confusion matrix over all pixels of all images (labels 255 / outside 0..18 ignored);
     IoU_c = TP / (TP + FP + FN); mIoU = nanmean over classes x 100.
The reference resizes each class map with PIL's bilinear filter; for upsampling that is the
half-pixel bilinear interpolation F.interpolate(align_corners=False) computes (edge pixels
clamped), so the two differ only by float rounding.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gancompress.errors import UserError
from gancompress.imaging import open_checked, to_uint8_tensor
from gancompress.metrics.drn import NUM_CLASSES, DRNSegD105
from gancompress.weights import DRN_D_105_CITYSCAPES, WeightsRecord, load_published

# Mean and std of the Cityscapes training images (DRN's info.json, used by gan-compression).
CITYSCAPES_MEAN = (0.29010095242892997, 0.32808144844279574, 0.28696394422942517)
CITYSCAPES_STD = (0.1829540508368939, 0.18656561047509476, 0.18447508988480435)
CITYSCAPES_SIZE = (1024, 2048)  # (H, W) of the ground-truth label maps
IGNORE_INDEX = 255


def load_drn(weights: str | Path | None = None, weights_dir: str | Path | None = None,
             device: str | torch.device = "cpu") -> tuple[DRNSegD105, WeightsRecord]:
    """DRN-D-105 with the published Cityscapes weights (strict load; `module.` prefix dropped)."""
    with torch.device("meta"):  # every tensor (incl. the fixed `up` kernel) comes from the file
        model = DRNSegD105(NUM_CLASSES)
    record = load_published(model, DRN_D_105_CITYSCAPES, explicit=weights, weights_dir=weights_dir)
    return model.to(device).eval().requires_grad_(False), record


def drn_input(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] (or uint8) -> uint8 round trip -> /255 -> normalised."""
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] != 3:
        raise UserError(f"mIoU needs RGB images (B, 3, H, W); got {tuple(images.shape)}")
    x = to_uint8_tensor(images).float() / 255
    mean = torch.tensor(CITYSCAPES_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CITYSCAPES_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def segment(model: torch.nn.Module, images: torch.Tensor,
            out_size: tuple[int, int] = CITYSCAPES_SIZE) -> torch.Tensor:
    """Predicted train ids (B, H, W) (int64) at `out_size` = (H, W) (default 1024 x 2048)."""
    device = next(model.parameters()).device
    logp = model(drn_input(images.to(device)))
    preds = []
    for one in logp.split(1):  # one image at a time: 19 x 1024 x 2048 floats is 160 MB
        up = F.interpolate(one, size=tuple(out_size), mode="bilinear", align_corners=False)
        preds.append(up.argmax(dim=1))
    return torch.cat(preds)


def confusion_matrix(pred: torch.Tensor | np.ndarray, label: torch.Tensor | np.ndarray,
                     num_classes: int = NUM_CLASSES) -> np.ndarray:
    """(num_classes, num_classes) int64 counts: rows = true class, columns = predicted class.

    Pixels whose label is outside [0, num_classes) (255 = ignore) are not counted.
    """
    pred = np.asarray(pred.cpu() if isinstance(pred, torch.Tensor) else pred).reshape(-1)
    label = np.asarray(label.cpu() if isinstance(label, torch.Tensor) else label).reshape(-1)
    if pred.shape != label.shape:
        raise UserError(f"prediction and label have different numbers of pixels "
                        f"({pred.size} vs {label.size})")
    label = label.astype(np.int64)
    keep = (label >= 0) & (label < num_classes)
    index = num_classes * label[keep] + pred[keep].astype(np.int64)
    return np.bincount(index, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def iou_per_class(hist: np.ndarray) -> np.ndarray:
    """IoU of each class, NaN for a class absent from both labels and predictions."""
    hist = np.asarray(hist, np.float64)
    tp = np.diag(hist)
    union = hist.sum(0) + hist.sum(1) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)


def mean_iou(hist: np.ndarray) -> float:
    """Mean IoU x 100 over classes that occur (nanmean), from a confusion matrix."""
    ious = iou_per_class(hist)
    if np.isnan(ious).all():
        raise UserError("mIoU is undefined: no labelled pixels (are all labels 255?)")
    return float(np.nanmean(ious) * 100)


# ----------------------------------------------------------------------------- label files
# Ground-truth label maps are matched to images by name: Cityscapes suffixes are stripped, so
# frankfurt_000000_000294_gtFine_trainIds.png matches frankfurt_000000_000294_leftImg8bit.png.
_SUFFIXES = re.compile(r"(_gtFine_labelTrainIds|_gtFine_trainIds|_gtFine_labelIds|_trainIds|_leftImg8bit|_gtFine)$")


def match_key(path: str | Path) -> str:
    return _SUFFIXES.sub("", Path(path).stem)


def find_label_files(folder: str | Path) -> dict[str, Path]:
    """Label PNGs under `folder` (recursively) keyed by `match_key`.

    If the folder holds Cityscapes files of several kinds, only the *trainIds.png are used.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--labels {folder} is not a folder")
    files = sorted(p for p in folder.rglob("*.png") if p.is_file())
    train_ids = [p for p in files if p.stem.endswith("trainIds")]
    files = train_ids or files
    if not files:
        raise UserError(f"no label PNGs found under {folder}")
    found: dict[str, Path] = {}
    for path in files:
        key = match_key(path)
        if key in found:
            raise UserError(f"two label files match the name {key!r}: {found[key]} and {path}")
        found[key] = path
    return found


def read_label(path: str | Path, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """A train-id label map (H, W) int64: values 0..num_classes-1, 255 ignored."""
    path = Path(path)
    img = open_checked(path, what="label map")
    if img.mode not in ("L", "P", "I", "I;16"):
        raise UserError(f"label map {path} is a {img.mode} image; mIoU needs single-channel "
                        f"train-id maps (pixel values 0..{num_classes - 1}, 255 = "
                        f"ignore), e.g. Cityscapes *_gtFine_trainIds.png, not color maps")
    label = np.array(img, dtype=np.int64)
    check_label_values(label, num_classes, str(path))
    return label


def check_label_values(label: np.ndarray, num_classes: int = NUM_CLASSES, name: str = "label"
                       ) -> None:
    values = np.unique(label)
    bad = values[(values != IGNORE_INDEX) & ((values < 0) | (values >= num_classes))]
    if bad.size:
        raise UserError(f"{name} contains values {bad[:8].tolist()} outside the train ids "
                        f"0..{num_classes - 1} and {IGNORE_INDEX} (ignore); Cityscapes "
                        f"*_gtFine_labelIds.png use ids up to 33: convert them to train ids "
                        f"(the *_gtFine_trainIds.png made by cityscapesScripts)")


# ----------------------------------------------------------------------------- scorer
class MIoUScorer:
    """Cityscapes mIoU of generated images, accumulated over batches.

        scorer = MIoUScorer(device="cuda")
        value = scorer.score((fakes, labels) for fakes, labels in pairs)

    `labels`: (B, H, W) train ids at `out_size` (default 1024 x 2048, Cityscapes gtFine).
    """

    def __init__(self, weights: str | Path | None = None, weights_dir: str | Path | None = None,
                 device: str | torch.device = "cpu",
                 out_size: tuple[int, int] = CITYSCAPES_SIZE, num_classes: int = NUM_CLASSES,
                 model: torch.nn.Module | None = None, record: WeightsRecord | None = None
                 ) -> None:
        self.out_size = tuple(out_size)
        self.num_classes = num_classes
        if model is None:
            model, record = load_drn(weights, weights_dir, device)
        self.model, self.weights = model, record
        self.hist = np.zeros((num_classes, num_classes), np.int64)
        self.count = 0

    def reset(self) -> None:
        self.hist[:] = 0
        self.count = 0

    def update(self, images: torch.Tensor, labels: torch.Tensor | np.ndarray) -> None:
        labels = torch.as_tensor(np.asarray(labels)) if not isinstance(labels, torch.Tensor) \
            else labels
        if labels.dim() == 2:
            labels = labels.unsqueeze(0)
        if tuple(labels.shape[-2:]) != self.out_size:
            h, w = labels.shape[-2:]
            raise UserError(f"label maps are {w}x{h} (WxH) but predictions are resized to "
                            f"{self.out_size[1]}x{self.out_size[0]}; the published protocol uses "
                            f"the 2048x1024 Cityscapes labels (or set the mIoU size to match)")
        pred = segment(self.model, images, self.out_size)
        self.hist += confusion_matrix(pred, labels, self.num_classes)
        self.count += len(pred)

    def value(self) -> float:
        return mean_iou(self.hist)

    def score(self, pairs: Iterable[tuple[torch.Tensor, torch.Tensor | np.ndarray]]) -> float:
        self.reset()
        for images, labels in pairs:
            self.update(images, labels)
        return self.value()

    def protocol(self) -> dict[str, Any]:
        return {"network": "DRN-D-105 (Cityscapes, 19 classes)",
                "preprocess": "uint8 truncation, /255, normalise mean "
                              f"{tuple(round(m, 4) for m in CITYSCAPES_MEAN)} std "
                              f"{tuple(round(s, 4) for s in CITYSCAPES_STD)}",
                "resize": f"log-probabilities bilinear to {self.out_size[1]}x{self.out_size[0]} "
                          f"(WxH), argmax",
                "classes": f"{self.num_classes} train ids, {IGNORE_INDEX} ignored",
                "score": "nanmean of per-class IoU over the whole set x 100",
                "weights": self.weights.as_dict() if self.weights else None}
