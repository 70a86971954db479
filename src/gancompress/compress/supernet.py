"""Supernet files: load a supernet.pth with its search space, extract a compact sub-network."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from gancompress.compress.space import SearchSpace
from gancompress.errors import UserError
from gancompress.files import file_fingerprint
from gancompress.metrics.cost import count_macs
from gancompress.models.checkpoint import generator_from_object, safe_load, save_generator
from gancompress.models.elastic import ElasticGenerator, batchnorms, calibrated_compact

# ----------------------------------------------------------------------------------------------
# Supernet files and extraction


def load_supernet(path: str | Path, device: str | torch.device = "cpu"
                  ) -> tuple[ElasticGenerator, SearchSpace, dict[str, Any]]:
    """(supernet, its search space, its metadata) from a supernet.pth written by the supernet
    or finetune stage."""
    obj = safe_load(path)
    model, _ = generator_from_object(obj, name=str(path))
    meta = obj.get("meta", {}) if isinstance(obj, dict) else {}
    if not isinstance(meta, dict) or "space" not in meta:
        raise UserError(f"{path} is not a supernet (its metadata names no search space); give a "
                        f"supernet.pth written by `gancompress supernet` or `compress`")
    return model.to(device).eval(), SearchSpace.from_meta(meta["space"], model), meta


def extract(supernet: ElasticGenerator, space: SearchSpace, config: str,
            calibration: Sequence[Any] | None = None) -> tuple[ElasticGenerator, dict[str, int]]:
    """The standalone compact generator of sub-network `config` (weights cropped, no copy of
    the supernet's other channels; compact(g, w)(x) == g@w(x)), its BatchNorm statistics
    re-calibrated on `calibration` training batches when it has BatchNorm."""
    widths = space.widths(space.decode(config))
    return calibrated_compact(supernet, widths, calibration), widths


def extract_file(supernet_path: str | Path, config: str, out: str | Path, force: bool = False,
                 extra_meta: dict[str, Any] | None = None,
                 calibration: Sequence[Any] | None = None, data: str | None = None
                 ) -> dict[str, Any]:
    """Write the compact model of `config` to `out` (refuses to overwrite unless `force`).

    A BatchNorm sub-network is re-calibrated on `calibration` batches, else on training images
    of `data` (default: the supernet's training data, recorded in its metadata)."""
    out = Path(out)
    if out.exists() and not force:
        raise UserError(f"{out} already exists; choose another --out or pass --force")
    supernet, space, meta = load_supernet(supernet_path)
    if meta.get("finetuned_config") and meta["finetuned_config"] != config:
        raise UserError(f"{supernet_path} was fine-tuned for sub-network "
                        f"{meta['finetuned_config']}, not {config}; extract that one, or extract "
                        f"{config} from the supernet before fine-tuning")
    if calibration is None and batchnorms(supernet):
        calibration = _training_inputs_of(meta, data, supernet_path)
    model, widths = extract(supernet, space, config, calibration)
    size = model.input_size()
    info = {"kind": "compact", "config": config, "widths": widths,
            "supernet": str(Path(supernet_path).resolve()),
            "supernet_sha256": file_fingerprint(supernet_path),
            "space": space.to_meta(), "teacher": meta.get("teacher"),
            "macs_ref": count_macs(model, size), "macs_size": list(size[-2:]),
            "bn_recalibrated": bool(batchnorms(model)), **(extra_meta or {})}
    if "config" in meta:  # the training config of the supernet: data settings for later use
        info["train_config"] = meta["config"]
    save_generator(model, out, meta=info, overwrite=force)
    return info


def _training_inputs_of(meta: dict[str, Any], data: str | None, supernet_path: str | Path
                        ) -> list[torch.Tensor]:
    from gancompress.config import Config
    from gancompress.data import training_inputs

    cfg = Config.from_saved(meta.get("config"), source=f"{supernet_path} (metadata)")
    if data:
        cfg.data.root = str(data)
    if not cfg.data.root or not Path(cfg.data.root).is_dir():
        raise UserError(f"{supernet_path} has BatchNorm: the extracted sub-network's statistics "
                        f"are re-calibrated on training images, but its training data "
                        f"{cfg.data.root or '(not recorded)'} is not there; pass --data DIR")
    return training_inputs(cfg.data, exclude=cfg.data.exclude_list and _read_list(cfg.data.exclude_list))


def _read_list(path: str) -> list[str]:
    p = Path(path)
    return [line for line in p.read_text().splitlines() if line.strip()] if p.is_file() else []
