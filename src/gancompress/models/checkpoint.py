"""Checkpoints: our self-describing format and the published state-dict formats users hold.

Our generator checkpoint is a plain dict (tensors, strings, numbers only), so it loads with
`torch.load(weights_only=True)` and never needs flags:
    {"format": "gancompress-generator", "version": 1, "arch_name": FAMILY,
     "arch": {...constructor arguments, widths...}, "state_dict": {...}, "meta": {...}}

Published formats (docs/reference.md sec. 7): each generator family reads its own
(`ElasticGenerator.read_published`, tried in registry order), detecting them from the keys and
reading widths back from tensor shapes; keyword hints (`load_generator(path, **hints)`) supply
what a file does not hold. Nothing is ever unpickled beyond plain containers and
tensors: a file that embeds other Python objects (a place where code could hide) is refused.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from gancompress.errors import UserError
from gancompress.files import atomic_path
from gancompress.models import GENERATORS, build_generator
from gancompress.models.elastic import ElasticGenerator, load_state_checked, tensor_dict
from gancompress.weights import safe_load

__all__ = ["FORMAT", "VERSION", "atomic_torch_save", "evaluation_size", "generator_from_object",
           "load_generator", "safe_load", "save_generator", "trained_size"]

FORMAT = "gancompress-generator"
VERSION = 1


def atomic_torch_save(obj: Any, path: str | Path, overwrite: bool = True) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves a half-written file.

    torch reports a full disk as a RuntimeError of its zip writer; that becomes the same
    one-line message as any other failed write (files.os_error)."""
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as err:
            free = None
            with contextlib.suppress(OSError):
                free = shutil.disk_usage(path.parent).free
            if (free is not None and free < (1 << 20)) or "unexpected pos" in str(err):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
            raise


def save_generator(model: ElasticGenerator, path: str | Path, meta: Mapping[str, Any] | None = None,
                   overwrite: bool = True) -> None:
    """Write `model` in our format (architecture, widths and weights; `meta` is free JSON data).

    With overwrite=False an existing file is never replaced (no-clobber publish)."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    atomic_torch_save({"format": FORMAT, "version": VERSION, "arch_name": model.arch_name,
                       "arch": dict(model.arch), "state_dict": state, "meta": dict(meta or {})},
                      path, overwrite=overwrite)


def trained_size(meta: Any) -> tuple[int, int] | None:
    """(H, W) a generator was trained at, from its checkpoint metadata (the training config's
    data.crop_size, as `gancompress train` and the compression stages record it), else None."""
    if not isinstance(meta, Mapping):
        return None
    for key in ("config", "train_config"):
        cfg = meta.get(key)
        data = cfg.get("data") if isinstance(cfg, Mapping) else None
        size = data.get("crop_size") if isinstance(data, Mapping) else None
        if isinstance(size, int) and not isinstance(size, bool) and size > 0:
            aspect = data.get("aspect_ratio")
            if data.get("mode") == "labels" and isinstance(aspect, (int, float)) and aspect > 0:
                return max(1, round(size / aspect)), size  # label maps: crop_size is the width
            return size, size
    return None


DEFAULT_SIZE = (256, 256)  # the papers' evaluation size


def evaluation_size(model: Any, given: Any = None) -> tuple[tuple[int, int], str]:
    """((H, W), where it came from) for running `model`: the size given by the user, else the
    size it was trained at (its checkpoint metadata), else its family's `reference_size`, else
    256x256 (the published evaluation size). The second value is said to the user."""
    if given:
        if isinstance(given, int):
            return (given, given), "as given"
        return (int(given[0]), int(given[1])), "as given"
    size = trained_size(getattr(model, "meta", None))
    if size is not None:
        return size, "the size the model was trained at (from its checkpoint)"
    ref = getattr(model, "reference_size", None)
    if isinstance(ref, int) and ref > 0:
        return (ref, ref), f"the {getattr(model, 'arch_name', 'model')} family's reference size " \
                           f"(the checkpoint records no training size)"
    if isinstance(ref, (tuple, list)) and len(ref) >= 2:
        return (int(ref[-2]), int(ref[-1])), "the model family's reference size (the " \
                                             "checkpoint records no training size)"
    return DEFAULT_SIZE, "256x256, the published evaluation size (the checkpoint records no " \
                         "training size)"


def load_generator(path: str | Path, device: str | torch.device = "cpu", **hints: Any
                   ) -> ElasticGenerator:
    """Open any supported generator checkpoint as an eval-mode module on `device`.

    The detected format is recorded in `model.source_format`.
    """
    obj = safe_load(path)
    model, fmt = generator_from_object(obj, name=str(path), **hints)
    model.source_format = fmt
    meta = obj.get("meta") if isinstance(obj, Mapping) else None
    model.meta = dict(meta) if isinstance(meta, Mapping) else {}
    return model.to(device).eval()


def generator_from_object(obj: Any, name: str = "checkpoint", **hints: Any
                          ) -> tuple[ElasticGenerator, str]:
    """Build a generator from a loaded checkpoint object; returns (model, format description)."""
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        version = obj.get("version", 0)
        if isinstance(version, int) and version > VERSION:
            raise UserError(f"{name} was written by a newer gancompress (format version "
                            f"{obj['version']}); upgrade gancompress to read it")
        _check_our_format(obj, name)
        try:
            model = build_generator(obj["arch_name"], **obj["arch"])
        except (TypeError, ValueError, KeyError) as err:
            raise UserError(f"{name} is a damaged gancompress checkpoint: its architecture "
                            f"{obj['arch_name']!r} cannot be built ({err}); save the generator "
                            f"again") from None
        load_state_checked(model, obj["state_dict"], name)
        return model, f"gancompress ({obj['arch_name']})"
    state = tensor_dict(obj)
    if state is not None and _is_discriminator(state):
        raise UserError(f"{name} is a PatchGAN discriminator (keys {list(state)[:3]}), not a "
                        f"generator; give the generator checkpoint (e.g. latest_net_G.pth, or "
                        f"the run's generator.pth)")
    for cls in GENERATORS.values():  # each family's reader of its published formats, in turn
        found = cls.read_published(obj, name, **hints)
        if found is not None:
            return found
    keys = list(state)[:8] if state is not None else f"a {type(obj).__name__}"
    advice = ""
    if state is not None and not any(k.startswith("model.") for k in state):
        # e.g. torch.save(model.state_dict()) of one of our models: weights without architecture
        advice = (" If it holds the bare weights (state_dict) of a gancompress generator, save "
                  "the model with gancompress.save_generator(model, 'generator.pth') instead, "
                  "which records its architecture and widths.")
    raise UserError(
        f"unrecognised checkpoint format in {name}: expected a gancompress checkpoint (keys "
        f"'format', 'arch', 'state_dict') or a published generator: "
        f"{'; '.join(c.published_formats for c in GENERATORS.values() if c.published_formats)}"
        f"; found {keys}. Your own generator's weights: give its class with --arch "
        f"module.path:ClassName." + advice)


def _check_our_format(obj: Mapping[str, Any], name: str) -> None:
    """Keys and types of our format, so a damaged file is a message, not a KeyError."""
    wanted = {"arch_name": str, "arch": Mapping, "state_dict": Mapping}
    problems = [f"{k!r} missing" if k not in obj else f"{k!r} is a {type(obj[k]).__name__}"
                for k, kind in wanted.items() if not isinstance(obj.get(k), kind)]
    if not problems and not all(isinstance(v, torch.Tensor) for v in obj["state_dict"].values()):
        problems.append("'state_dict' holds non-tensors")
    if problems:
        raise UserError(f"{name} is a damaged gancompress checkpoint ({', '.join(problems)}); "
                        f"save the generator again")


def _is_discriminator(state: Mapping[str, torch.Tensor]) -> bool:
    """PatchGAN (pix2pix/CycleGAN NLayerDiscriminator): model.0 is its first conv (a 4x4 kernel),
    where the published generators have a padding layer at model.0."""
    first = state.get("model.0.weight")
    return (first is not None and first.dim() == 4 and tuple(first.shape[-2:]) == (4, 4)
            and "model.1.weight" not in state)
