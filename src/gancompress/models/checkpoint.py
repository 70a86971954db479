"""Checkpoints: our self-describing format and the published state-dict formats users hold.

Our generator checkpoint is a plain dict (tensors, strings, numbers only), so it loads with
`torch.load(weights_only=True)` and never needs flags:
    {"format": "gancompress-generator", "version": 1, "arch_name": "resnet",
     "arch": {...constructor arguments, widths...}, "state_dict": {...}, "meta": {...}}

Published formats (REFERENCE.md sec. 7), detected from their keys:
    pytorch-CycleGAN-and-pix2pix ResNet generator   model.{1,4,7,...}, model.10.conv_block.{1,5|6}
    gan-compression full                            same keys, 2nd block conv always at index 6
    gan-compression mobile / supernet / compressed  block convs at conv_block.{1,6}.conv.{0,2}
Widths are read back from tensor shapes. Nothing is ever unpickled beyond plain containers and
tensors: a file that embeds other Python objects (a place where code could hide) is refused.
"""
from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from gancompress.errors import UserError
from gancompress.files import atomic_path
from gancompress.models import build_generator
from gancompress.models.elastic import ElasticGenerator
from gancompress.models.resnet import GROUPS, block_group

FORMAT = "gancompress-generator"
VERSION = 1


def safe_load(path: str | Path) -> Any:
    """torch.load restricted to tensors and plain containers; user errors become UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "unsupported object"
        raise UserError(
            f"refused to load {path}: it contains pickled Python objects beyond tensors and plain "
            f"containers ({first[:200]}), which could run code when loaded. If you trust the file, "
            f"re-save only its weights: torch.save(model.state_dict(), 'weights.pth')") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise UserError(f"cannot read checkpoint {path}: {str(err).splitlines()[0][:300]} "
                        f"(is the file complete and a PyTorch checkpoint?)") from None


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves a half-written file."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_generator(model: ElasticGenerator, path: str | Path, meta: Mapping[str, Any] | None = None
                   ) -> None:
    """Write `model` in our format (architecture, widths and weights; `meta` is free JSON data)."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    atomic_torch_save({"format": FORMAT, "version": VERSION, "arch_name": model.arch_name,
                       "arch": dict(model.arch), "state_dict": state, "meta": dict(meta or {})}, path)


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> ElasticGenerator:
    """Open any supported generator checkpoint as an eval-mode module on `device`.

    The detected format is recorded in `model.source_format`.
    """
    obj = safe_load(path)
    model, fmt = generator_from_object(obj, name=str(path))
    model.source_format = fmt
    return model.to(device).eval()


def generator_from_object(obj: Any, name: str = "checkpoint") -> tuple[ElasticGenerator, str]:
    """Build a generator from a loaded checkpoint object; returns (model, format description)."""
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        if obj.get("version", 0) > VERSION:
            raise UserError(f"{name} was written by a newer gancompress (format version "
                            f"{obj['version']}); upgrade gancompress to read it")
        model = build_generator(obj["arch_name"], **obj["arch"])
        _load_checked(model, obj["state_dict"], name)
        return model, f"gancompress ({obj['arch_name']})"
    state = _unwrap_state_dict(obj)
    if state is not None and any(k.startswith("model.") for k in state):
        return _from_published_resnet(state, name)
    keys = list(state)[:8] if state is not None else f"a {type(obj).__name__}"
    raise UserError(
        f"unrecognised checkpoint format in {name}: expected a gancompress checkpoint (keys "
        f"'format', 'arch', 'state_dict') or a ResNet generator state dict from "
        f"pytorch-CycleGAN-and-pix2pix / gan-compression (keys like 'model.1.weight', "
        f"'model.10.conv_block.1.weight'); found {keys}")


def _unwrap_state_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    """The tensor dict inside common wrappers ({'state_dict': ...}, {'netG': ...}), 'module.' stripped."""
    if not isinstance(obj, Mapping):
        return None
    for key in ("state_dict", "netG", "generator", "model"):
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not all(isinstance(v, torch.Tensor) for v in obj.values()):
        return None
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}


def _load_checked(model: torch.nn.Module, state: Mapping[str, torch.Tensor], name: str) -> None:
    """load_state_dict with messages that name the tensor and both shapes."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise UserError(f"{name} does not match the architecture it describes: missing tensors "
                        f"{missing[:5]}, unexpected tensors {unexpected[:5]}")
    for key, ref in expected.items():
        if tuple(state[key].shape) != tuple(ref.shape):
            raise UserError(f"{name}: tensor {key} has shape {tuple(state[key].shape)}, expected "
                            f"{tuple(ref.shape)}")
    model.load_state_dict(state)


_BLOCK = re.compile(r"^model\.(\d+)\.conv_block\.(\d+)\.(.+)$")
_LAYER = re.compile(r"^model\.(\d+)\.(.+)$")


def _from_published_resnet(state: dict[str, torch.Tensor], name: str) -> tuple[ElasticGenerator, str]:
    """Map pix2pix/CycleGAN/gan-compression ResNet keys onto ResnetGenerator's named modules."""
    blocks = sorted({int(m.group(1)) for k in state if (m := _BLOCK.match(k))})
    if not blocks or blocks != list(range(10, 10 + len(blocks))) or "model.1.weight" not in state:
        raise UserError(f"{name} has 'model.*' keys but not the ResNet generator layout (stem "
                        f"'model.1.weight', residual blocks 'model.10.conv_block.*' onwards); "
                        f"U-Net generators are not supported yet. Found keys: {list(state)[:8]}")
    n_blocks = len(blocks)
    separable = "model.10.conv_block.1.conv.0.weight" in state
    batch = "model.2.running_mean" in state and "model.2.weight" in state
    if not batch:  # stray InstanceNorm running stats written by old PyTorch versions
        state = {k: v for k, v in state.items()
                 if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    if separable:
        conv2, fmt = 6, "gan-compression mobile/compressed ResNet"
    elif "model.10.conv_block.5.weight" in state:
        conv2, fmt = 5, "pytorch-CycleGAN-and-pix2pix ResNet (no dropout)"
    else:
        conv2 = 6
        fmt = ("pytorch-CycleGAN-and-pix2pix ResNet (dropout)" if batch
               else "gan-compression full ResNet")
    after = 10 + n_blocks  # up1 conv, up1 norm, relu, up2 conv, up2 norm, relu, pad, head conv
    layer_names = {1: "stem.conv", 2: "stem.norm", 4: "down1.conv", 5: "down1.norm",
                   7: "down2.conv", 8: "down2.norm", after: "up1.conv", after + 1: "up1.norm",
                   after + 3: "up2.conv", after + 4: "up2.norm", after + 7: "head"}
    sub_names = {1: "conv1", 2: "norm1", conv2: "conv2", conv2 + 1: "norm2"}
    sep_names = {"conv.0.": "depthwise.", "conv.1.": "norm.", "conv.2.": "pointwise."}
    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if m := _BLOCK.match(key):
            block, idx, rest = int(m.group(1)) - 10, int(m.group(2)), m.group(3)
            if idx not in sub_names:
                raise UserError(f"{name}: unexpected tensor {key} in a residual block")
            if separable and idx in (1, conv2):
                for old, new in sep_names.items():
                    if rest.startswith(old):
                        rest = new + rest[len(old):]
                        break
            mapped[f"blocks.{block}.{sub_names[idx]}.{rest}"] = tensor
        elif (m := _LAYER.match(key)) and int(m.group(1)) in layer_names:
            mapped[f"{layer_names[int(m.group(1))]}.{m.group(2)}"] = tensor
        else:
            raise UserError(f"{name}: unexpected tensor {key} for a {n_blocks}-block ResNet generator")

    hidden_key = "conv1.pointwise.weight" if separable else "conv1.weight"
    widths = {"stem": mapped["stem.conv.weight"].shape[0],
              "down1": mapped["down1.conv.weight"].shape[0],
              "trunk": mapped["down2.conv.weight"].shape[0],
              "up1": mapped["up1.conv.weight"].shape[1],
              "up2": mapped["up2.conv.weight"].shape[1]}
    for i in range(n_blocks):
        group, width = block_group(i, n_blocks), mapped[f"blocks.{i}.{hidden_key}"].shape[0]
        if widths.setdefault(group, width) != width:
            raise UserError(f"{name}: residual blocks of group {group} have different hidden widths "
                            f"({widths[group]} and {width}); gancompress shares one width per third "
                            f"of the blocks, as the published config strings do")
    widths = {g: int(widths[g]) for g in GROUPS}
    dropout = 0.5 if conv2 == 6 and batch and not separable else 0.0
    model = build_generator("resnet", in_channels=int(mapped["stem.conv.weight"].shape[1]),
                            out_channels=int(mapped["head.weight"].shape[0]), ngf=widths["stem"],
                            n_blocks=n_blocks, conv="separable" if separable else "dense",
                            norm="batch" if batch else "instance", dropout=dropout, widths=widths)
    _load_checked(model, mapped, name)
    return model, fmt
