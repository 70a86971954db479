"""ONNX export of a generator, verified against PyTorch before the file appears.

Exporter choice (measured, bench/bench_deploy.py and the report in deploy/__init__.py): the
current exporter (`torch.onnx.export(dynamo=True)`, via torch.export + onnxscript) is the
default. On the compressed ResNet generator both exporters give the same kernels and the same
onnxruntime speed, but the TorchScript-based ("legacy") exporter records the shape arithmetic of
the rewritten layers as ~300 extra Shape/Gather/Concat/Cast nodes, while the dynamo exporter
folds them (static H, W; dynamic batch), and the legacy exporter is deprecated upstream. The
legacy exporter stays available (`exporter="legacy"`) because it can target opsets below 18, i.e.
older runtimes (onnxruntime < 1.14, older mobile builds).

The file records how to use it in `metadata_props` (JSON values under "gancompress.*" keys): input
size, normalisation, output conversion, architecture and widths, exporter, opset, precision and
the verification figures.
"""
from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from gancompress.deploy import quantize
from gancompress.deploy.graph import deploy_module, model_info
from gancompress.deploy.session import open_session, quiet  # noqa: F401 - quiet re-exported
from gancompress.deploy.verify import (  # noqa: F401 - re-exported (tests, bench)
    FP32_TOLERANCE,
    compare,
    extra_inputs,
    family_inputs,
    reference_output,
    sample_inputs,
    verification_inputs,
)
from gancompress.errors import UserError
from gancompress.files import atomic_path

DEFAULT_OPSET = 18
# Opsets each exporter can write (the dynamo exporter starts at 18; the legacy one stops at 20).
OPSETS = {"dynamo": range(18, 24), "legacy": range(11, 21)}
META_PREFIX = "gancompress."


def check_opset(exporter: str, opset: int | None) -> int:
    if exporter not in OPSETS:
        raise UserError(f"unknown ONNX exporter {exporter!r}; use 'dynamo' (default) or 'legacy'")
    opset = DEFAULT_OPSET if opset is None and exporter == "dynamo" else (opset or 17)
    allowed = OPSETS[exporter]
    if opset not in allowed:
        hint = (" (the legacy exporter writes opsets below 18: --exporter legacy)"
                if exporter == "dynamo" and opset < allowed.start else "")
        raise UserError(f"opset {opset} is not supported by the {exporter} exporter; use "
                        f"{allowed.start}..{allowed.stop - 1}{hint}")
    return opset


def onnx_bytes(module: nn.Module, input_size: Sequence[int], opset: int,
               exporter: str = "dynamo", extra: Mapping[str, torch.Tensor] | None = None) -> bytes:
    """Serialized ONNX model of `module` (float32, CPU) with a dynamic batch dimension; `extra`
    are further named inputs after the image (examples of their shape, any batch)."""
    extra = dict(extra or {})
    examples = (torch.zeros(tuple(input_size)),
                *(t[:1].expand(int(input_size[0]), *t.shape[1:]).contiguous()
                  for t in extra.values()))
    names = ["input", *extra]
    module = module.cpu().eval()
    try:
        with quiet(), torch.no_grad():
            if exporter == "dynamo":
                batch = torch.export.Dim("batch", min=1, max=4096)
                program = torch.onnx.export(module, examples, dynamo=True, opset_version=opset,
                                            input_names=names, output_names=["output"],
                                            dynamic_shapes=tuple({0: batch} for _ in names),
                                            verbose=False)
                return program.model_proto.SerializeToString()
            buffer = io.BytesIO()
            axes = {name: {0: "batch"} for name in [*names, "output"]}
            torch.onnx.export(module, examples, buffer, dynamo=False, opset_version=opset,
                              input_names=names, output_names=["output"], dynamic_axes=axes)
            return buffer.getvalue()
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - exporter failures name the unsupported piece
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise UserError(f"the {exporter} ONNX exporter (opset {opset}) cannot export this model: "
                        f"{first}; try --exporter {'legacy' if exporter == 'dynamo' else 'dynamo'} "
                        f"or another opset") from None


def set_metadata(model_bytes: bytes, metadata: Mapping[str, Any]) -> bytes:
    """Add `metadata` (JSON-encoded values) to the model's metadata_props."""
    import onnx

    proto = onnx.load_from_string(model_bytes)
    existing = {p.key: p for p in proto.metadata_props}
    for key, value in metadata.items():
        text = value if isinstance(value, str) else json.dumps(value)
        if META_PREFIX + key in existing:
            existing[META_PREFIX + key].value = text
        else:
            prop = proto.metadata_props.add()
            prop.key, prop.value = META_PREFIX + key, text
    proto.producer_name = "gancompress"
    return proto.SerializeToString()


def read_metadata(model: str | Path | bytes) -> dict[str, Any]:
    """The gancompress.* metadata of an ONNX file (values decoded from JSON where possible)."""
    import onnx

    proto = onnx.load_from_string(model) if isinstance(model, bytes) else \
        onnx.load(str(model), load_external_data=False)
    out = {}
    for prop in proto.metadata_props:
        if prop.key.startswith(META_PREFIX):
            try:
                out[prop.key[len(META_PREFIX):]] = json.loads(prop.value)
            except json.JSONDecodeError:
                out[prop.key[len(META_PREFIX):]] = prop.value
    return out


def export_onnx(model: nn.Module, path: str | Path, input_size: Sequence[int] = (1, 3, 256, 256),
                opset: int | None = None, exporter: str = "dynamo", optimize: bool = True,
                verify_inputs: torch.Tensor | None = None, tolerance: float = FP32_TOLERANCE,
                metadata: Mapping[str, Any] | None = None, overwrite: bool = False,
                int8: bool = False, calib_images: torch.Tensor | None = None,
                keep_float: str | Sequence[str] = "auto", min_psnr: float | None = None,
                target_psnr: float | None = None, calib_method: str = "minmax"
                ) -> dict[str, Any]:
    """Export `model` (any loaded generator, at its active widths) to an ONNX file.

    The file is written only after onnxruntime ran it on `verify_inputs` (default: two smooth
    random images) and its output matched PyTorch's within `tolerance` (max abs error); otherwise
    UserError and no file. With `int8`, the verified fp32 graph is quantized (deploy/quantize.py)
    on `calib_images` and refused (UserError, no file) if its PSNR against PyTorch fp32 on
    held-out calibration images is below `min_psnr`. Returns the metadata written.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"{path} exists; choose another --out or pass --overwrite")
    opset = check_opset(exporter, opset)
    if int8 and (calib_images is None or len(calib_images) == 0):
        raise UserError("int8 export needs calibration images from the training data: pass "
                        "--calib DIR (a folder of images or a dataset folder)")
    input_size = tuple(int(v) for v in input_size)
    inputs = verification_inputs(model, input_size, verify_inputs)
    extra = extra_inputs(model, input_size, len(inputs))  # e.g. MUNIT's style code
    if int8 and not getattr(model, "image_input", True):
        raise UserError(f"int8 export calibrates on photos; a {model.arch_name} generator takes "
                        f"{model.input_description.split(' (')[0]}: export it in fp32")
    if int8 and extra:
        raise UserError(f"int8 export supports generators with one image input; this one also "
                        f"takes {', '.join(extra)}: export it in fp32")
    deployed = deploy_module(model, optimize=optimize)
    data = onnx_bytes(deployed, input_size, opset, exporter, extra)
    reference = reference_output(model, inputs, *extra.values())
    output = open_session("onnx", data)(inputs, *extra.values())
    check = compare(reference, output)
    if not check["max_abs"] <= tolerance:
        raise UserError(f"ONNX export changes the model's output: max abs error "
                        f"{check['max_abs']:.3g} > tolerance {tolerance:g} (PSNR "
                        f"{check['psnr']:.1f} dB) on {len(inputs)} sample inputs; nothing written. "
                        f"Try --no-optimize or --exporter "
                        f"{'legacy' if exporter == 'dynamo' else 'dynamo'} and report the model")
    meta = {**model_info(model, input_size), "format": "onnx", "exporter": exporter,
            "opset": opset, "precision": "fp32", "dynamic_batch": True,
            "rewrites": list(deployed.deploy_notes),
            "verify": {"inputs": len(inputs), "max_abs": check["max_abs"],
                       "psnr_db": check["psnr"], "tolerance": tolerance}}
    if extra:
        meta["extra_inputs"] = {name: [int(v) for v in t.shape[1:]] for name, t in extra.items()}
    if int8:
        min_psnr = quantize.DEFAULT_MIN_PSNR if min_psnr is None else min_psnr
        data, report = quantize.quantize_onnx(
            data, calib_images, lambda images: reference_output(model, images),
            keep_float=keep_float, method=calib_method,
            target_psnr=quantize.DEFAULT_TARGET_PSNR if target_psnr is None else target_psnr)
        if not report["psnr_db"] >= min_psnr:
            raise UserError(f"int8 quantization loses too much quality: PSNR "
                            f"{report['psnr_db']:.1f} dB against fp32 on held-out calibration "
                            f"images, below the floor {min_psnr:g} dB (float convs: "
                            f"{len(report['float_convs'])}); nothing written. Calibrate on more "
                            f"representative images (--calib), try --calib-method percentile, or "
                            f"keep more layers float (--keep-float)")
        output = open_session("onnx", data)(inputs)
        int8_check = compare(reference, output)
        meta.update(precision="int8", quantization=report,
                    verify={"inputs": len(inputs), "max_abs": int8_check["max_abs"],
                            "psnr_db": int8_check["psnr"], "fp32_max_abs": check["max_abs"],
                            "min_psnr": min_psnr})
    meta.update(dict(metadata or {}))
    with atomic_path(path, overwrite=overwrite) as tmp:  # no-clobber unless asked
        Path(tmp).write_bytes(set_metadata(data, meta))
    return meta
