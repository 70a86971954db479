"""VGG19 feature extractor for GauGAN's perceptual loss, reading torchvision's published
`vgg19-dcbb9e9d.pth` without torchvision (docs/families.md sec. 5.3).

Architecture cfg 'E': 3x3 convs (padding 1) + ReLU, max-pools 2x2 at feature indices 4, 9, 18,
27, 36; the loss uses relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (after indices 1, 6, 11, 20,
29), so only features.0..28 are built; the file's later convs and classifier are checked for
layout and dropped. Images go in as they are, in [-1, 1] (no ImageNet normalisation), as the
reference loss does.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancompress.files import sha256_file
from gancompress.weights import VGG19_IMAGENET as VGG19
from gancompress.weights import WeightsRecord, check_layout, find_weights, read_state_dict

_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
        512, 512, 512, 512, "M"]
SLICES = (2, 7, 12, 21, 30)  # ends of the relu1_1 .. relu5_1 slices
LOSS_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


def full_layout() -> dict[str, tuple[int, ...]]:
    """Every tensor name and shape of torchvision's vgg19 state dict."""
    layout, index, width = {}, 0, 3
    for v in _CFG:
        if v == "M":
            index += 1
            continue
        layout[f"features.{index}.weight"] = (v, width, 3, 3)
        layout[f"features.{index}.bias"] = (v,)
        width, index = v, index + 2
    for i, (o, n) in zip((0, 3, 6), ((4096, 25088), (4096, 4096), (1000, 4096))):
        layout[f"classifier.{i}.weight"] = (o, n)
        layout[f"classifier.{i}.bias"] = (o,)
    return layout


class VGG19Features(nn.Module):
    """features[0:30] of VGG19; forward returns the 5 relu outputs of the perceptual loss."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        width = 3
        for v in _CFG:
            if len(layers) >= SLICES[-1]:
                break
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(width, v, 3, padding=1), nn.ReLU(inplace=False)]
                width = v
        self.features = nn.Sequential(*layers[: SLICES[-1]])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs, start = [], 0
        for end in SLICES:
            for i in range(start, end):
                x = self.features[i](x)
            outs.append(x)
            start = end
        return outs


def load_vgg19(explicit: str | Path | None = None, weights_dir: str | Path | None = None
               ) -> tuple[VGG19Features, WeightsRecord]:
    """The frozen, eval-mode VGG19 features from the published file (found like the Inception
    weights: explicit path, weights dir, $GANCOMPRESS_WEIGHTS_DIR, cache)."""
    path = find_weights(VGG19.name, explicit=explicit, weights_dir=weights_dir)
    state = read_state_dict(path)
    model = VGG19Features()
    # exact torchvision names and shapes; the published file also holds features.30-34 and the
    # classifier, which the loss never uses: accepted when their shapes are right, else refused
    layout = full_layout()
    needed = {k: layout[k] for k in model.state_dict()}
    extra = {k: layout[k] for k in state if k in layout and k not in needed}
    check_layout(state, {**needed, **extra}, f"weights file {path} (used as {VGG19.name}, the "
                                             f"{VGG19.purpose})")
    model.load_state_dict({k: v for k, v in state.items() if k in model.state_dict()}, strict=True)
    model.eval().requires_grad_(False)
    return model, WeightsRecord(name=VGG19.name, path=str(path), sha256=sha256_file(path))


def vgg_loss(vgg: VGG19Features, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """sum_k w_k * L1(VGG_k(fake), VGG_k(real)) with w = (1/32, 1/16, 1/8, 1/4, 1)."""
    with torch.no_grad():
        real_feats = vgg(real)
    return sum(w * F.l1_loss(f, r) for w, f, r in zip(LOSS_WEIGHTS, vgg(fake), real_feats))
