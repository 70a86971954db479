"""Checkpoints: our self-describing format and the published state-dict formats users hold.

Our generator checkpoint is a plain dict (tensors, strings, numbers only), so it loads with
`torch.load(weights_only=True)` and never needs flags:
    {"format": "gancompress-generator", "version": 1, "arch_name": FAMILY,
     "arch": {...constructor arguments, widths...}, "state_dict": {...}, "meta": {...}}

Published formats (REFERENCE.md sec. 7): each generator family reads its own
(`ElasticGenerator.read_published`, tried in registry order), detecting them from the keys and
reading widths back from tensor shapes; keyword hints (`load_generator(path, **hints)`) supply
what a file does not hold. Nothing is ever unpickled beyond plain containers and
tensors: a file that embeds other Python objects (a place where code could hide) is refused.
"""
from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from gancompress.errors import UserError
from gancompress.files import atomic_path
from gancompress.models import GENERATORS, build_generator
from gancompress.models.elastic import ElasticGenerator, load_state_checked, tensor_dict

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


def load_generator(path: str | Path, device: str | torch.device = "cpu", **hints: Any
                   ) -> ElasticGenerator:
    """Open any supported generator checkpoint as an eval-mode module on `device`.

    The detected format is recorded in `model.source_format`.
    """
    obj = safe_load(path)
    model, fmt = generator_from_object(obj, name=str(path), **hints)
    model.source_format = fmt
    return model.to(device).eval()


def generator_from_object(obj: Any, name: str = "checkpoint", **hints: Any
                          ) -> tuple[ElasticGenerator, str]:
    """Build a generator from a loaded checkpoint object; returns (model, format description)."""
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        if obj.get("version", 0) > VERSION:
            raise UserError(f"{name} was written by a newer gancompress (format version "
                            f"{obj['version']}); upgrade gancompress to read it")
        model = build_generator(obj["arch_name"], **obj["arch"])
        load_state_checked(model, obj["state_dict"], name)
        return model, f"gancompress ({obj['arch_name']})"
    for cls in GENERATORS.values():  # each family's reader of its published formats, in turn
        found = cls.read_published(obj, name, **hints)
        if found is not None:
            return found
    state = tensor_dict(obj)
    keys = list(state)[:8] if state is not None else f"a {type(obj).__name__}"
    raise UserError(
        f"unrecognised checkpoint format in {name}: expected a gancompress checkpoint (keys "
        f"'format', 'arch', 'state_dict') or a published generator: "
        f"{'; '.join(cls.published_formats for cls in GENERATORS.values())}; found {keys}")
