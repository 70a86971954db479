"""TorchScript export (for PyTorch Mobile / C++ libtorch), verified before the file appears.

The deployable module (deploy/graph.py) is traced at batch 1 and frozen (`torch.jit.freeze`:
parameters become constants, conv + BatchNorm folding, dead code removed); traced convolutions
accept any batch size, which the verification checks with a batch of 2. Metadata (input size,
normalisation, architecture, verification figures) is stored as the extra file
`gancompress.json` inside the archive
(`torch.jit.load(path, _extra_files={"gancompress.json": ""})`).
"""
from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from gancompress.deploy.graph import deploy_module, model_info
from gancompress.deploy.session import TORCHSCRIPT_META, open_session, quiet
from gancompress.deploy.verify import (
    FP32_TOLERANCE,
    compare,
    reference_output,
    verification_inputs,
)
from gancompress.errors import UserError
from gancompress.files import atomic_path

META_FILE = TORCHSCRIPT_META


def torchscript_bytes(module: nn.Module, input_size: Sequence[int], freeze: bool = True) -> bytes:
    """Serialized, traced (and frozen) TorchScript module (metadata is added by the caller)."""
    example = torch.zeros(tuple(input_size))
    try:
        with quiet(), torch.no_grad():
            traced = torch.jit.trace(module.cpu().eval(), example, check_trace=False)
            if freeze:
                traced = torch.jit.freeze(traced)
    except Exception as err:  # noqa: BLE001 - tracing failures name the unsupported piece
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot trace this model to TorchScript: {first}") from None
    buffer = io.BytesIO()
    with quiet():  # torch.jit.save is deprecated upstream in favour of torch.export
        torch.jit.save(traced, buffer)
    return buffer.getvalue()


def _with_metadata(module_bytes: bytes, meta: Mapping[str, Any]) -> bytes:
    buffer = io.BytesIO()
    with quiet():
        module = torch.jit.load(io.BytesIO(module_bytes))
        torch.jit.save(module, buffer, _extra_files={META_FILE: json.dumps(meta)})
    return buffer.getvalue()


def export_torchscript(model: nn.Module, path: str | Path,
                       input_size: Sequence[int] = (1, 3, 256, 256), optimize: bool = True,
                       verify_inputs: torch.Tensor | None = None,
                       tolerance: float = FP32_TOLERANCE, metadata: Mapping[str, Any] | None = None,
                       overwrite: bool = False) -> dict[str, Any]:
    """Export `model` to a TorchScript file; verified like `export_onnx` (UserError, no file, when
    the traced module's output differs from PyTorch's beyond `tolerance`)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"{path} exists; choose another --out or pass --overwrite")
    input_size = tuple(int(v) for v in input_size)
    deployed = deploy_module(model, optimize=optimize, transposed=False)  # see backends.py
    data = torchscript_bytes(deployed, input_size)
    inputs = verification_inputs(model, input_size, verify_inputs)
    reference = reference_output(model, inputs)
    output = open_session("torchscript", data)(inputs)
    check = compare(reference, output)
    if not check["max_abs"] <= tolerance:
        raise UserError(f"TorchScript export changes the model's output: max abs error "
                        f"{check['max_abs']:.3g} > tolerance {tolerance:g} (PSNR "
                        f"{check['psnr']:.1f} dB); nothing written. Try --no-optimize")
    meta = {**model_info(model, input_size), "format": "torchscript", "precision": "fp32",
            "torch": torch.__version__, "frozen": True, "dynamic_batch": True,
            "rewrites": list(deployed.deploy_notes),
            "verify": {"inputs": len(inputs), "max_abs": check["max_abs"],
                       "psnr_db": check["psnr"], "tolerance": tolerance},
            **dict(metadata or {})}
    with atomic_path(path, overwrite=overwrite) as tmp:  # no-clobber unless asked
        Path(tmp).write_bytes(_with_metadata(data, meta))
    return meta
