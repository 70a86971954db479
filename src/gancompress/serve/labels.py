"""Label maps in the demo: the palette the page paints with and the tensor the server builds.

Label-map models (families whose `label_map_args()` says so, as SPADE's) take a one-hot label
map, a don't-care channel when `contain_dontcare`, and an instance-edge channel unless
`no_instance` (docs/families.md sec. 4); the page paints label indices and the server builds
that tensor, with instance edges derived from the label boundaries.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gancompress.errors import UserError
from gancompress.labelmaps import TRAIN_LABEL_IDS

# Cityscapes labelIds 0..33 and the licence plate (id -1, stored as 34), with the colours of the
# Cityscapes scripts (labels.py): the palette of the label-map mode.
CITYSCAPES = [
    ("unlabeled", (0, 0, 0)), ("ego vehicle", (0, 0, 0)), ("rectification border", (0, 0, 0)),
    ("out of roi", (0, 0, 0)), ("static", (0, 0, 0)), ("dynamic", (111, 74, 0)),
    ("ground", (81, 0, 81)), ("road", (128, 64, 128)), ("sidewalk", (244, 35, 232)),
    ("parking", (250, 170, 160)), ("rail track", (230, 150, 140)), ("building", (70, 70, 70)),
    ("wall", (102, 102, 156)), ("fence", (190, 153, 153)), ("guard rail", (180, 165, 180)),
    ("bridge", (150, 100, 100)), ("tunnel", (150, 120, 90)), ("pole", (153, 153, 153)),
    ("polegroup", (153, 153, 153)), ("traffic light", (250, 170, 30)),
    ("traffic sign", (220, 220, 0)), ("vegetation", (107, 142, 35)), ("terrain", (152, 251, 152)),
    ("sky", (70, 130, 180)), ("person", (220, 20, 60)), ("rider", (255, 0, 0)),
    ("car", (0, 0, 142)), ("truck", (0, 0, 70)), ("bus", (0, 60, 100)), ("caravan", (0, 0, 90)),
    ("trailer", (0, 0, 110)), ("train", (0, 80, 100)), ("motorcycle", (0, 0, 230)),
    ("bicycle", (119, 11, 32)), ("license plate", (0, 0, 142)),
]


@dataclass(frozen=True)
class LabelSpec:
    """How a label-map generator reads its input (docs/families.md sec. 4)."""

    label_nc: int
    dontcare: bool = False
    instance: bool = True

    @property
    def classes(self) -> int:
        """Label indices a user can paint (the don't-care index included when it is a channel)."""
        return self.label_nc + (1 if self.dontcare else 0)

    @property
    def channels(self) -> int:
        return self.classes + (1 if self.instance else 0)

    def tensor(self, labels: np.ndarray) -> torch.Tensor:
        """(H, W) integer label indices -> (1, channels, H, W): one-hot, then the edge map."""
        ids = torch.from_numpy(np.ascontiguousarray(labels).astype(np.int64))
        if int(ids.max()) >= self.classes or int(ids.min()) < 0:
            raise UserError(f"label index {int(ids.max())} out of range: this model has "
                            f"{self.classes} classes (0..{self.classes - 1})")
        onehot = torch.zeros(1, self.classes, *ids.shape)
        onehot.scatter_(1, ids[None, None], 1.0)
        if not self.instance:
            return onehot
        edges = torch.from_numpy(instance_edges(labels).astype(np.float32))
        return torch.cat([onehot, edges[None, None]], 1)

    def palette(self) -> list[dict[str, Any]]:
        """Name and colour per painted index: Cityscapes labelIds when the model has them all,
        else the 19 evaluated Cityscapes classes, then evenly spread hues."""
        if self.label_nc >= len(CITYSCAPES) - 1:
            base = list(CITYSCAPES)
        else:
            base = [CITYSCAPES[i] for i in TRAIN_LABEL_IDS]
        out = []
        for i in range(self.classes):
            if i < len(base):
                name, rgb = base[i]
            else:
                name, rgb = f"class {i}", _hue(i)
            if self.dontcare and i == self.label_nc:
                name, rgb = "don't care", (255, 255, 255)
            out.append({"index": i, "name": name, "color": list(rgb)})
        return out


def _hue(i: int) -> tuple[int, int, int]:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.65, 0.9)
    return int(r * 255), int(g * 255), int(b * 255)


def instance_edges(ids: np.ndarray) -> np.ndarray:
    """Pixels whose id differs from a 4-neighbour (both pixels of a pair, nothing across the
    border): the published edge map, here of the label map (one instance per connected label)."""
    ids = np.asarray(ids)
    edge = np.zeros(ids.shape, dtype=bool)
    horizontal = ids[:, 1:] != ids[:, :-1]
    vertical = ids[1:, :] != ids[:-1, :]
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    return edge


def label_spec(model: torch.nn.Module | None) -> LabelSpec | None:
    """The label-map input of a generator whose family reads label maps (the family contract's
    `label_map_args()`, as SPADE's), else None."""
    args = model.label_map_args() if hasattr(model, "label_map_args") else None
    if not args:
        return None
    return LabelSpec(int(args["label_nc"]), bool(args.get("contain_dontcare", False)),
                     not bool(args.get("no_instance", False)))
