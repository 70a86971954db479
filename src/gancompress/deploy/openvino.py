"""OpenVINO deployment: verified IR export (fp32, bf16, int8 through NNCF), runner, latency call.

The IR is made from the same ONNX graph as `export --format onnx` (deploy_module's exact rewrites,
dynamo exporter), read by OpenVINO and saved as an .xml/.bin pair with fp32 weights. Before the
pair appears it is compiled for the CPU and run on sample inputs; the output must match PyTorch
within the fp32 tolerance (max abs error), else UserError and nothing is written. The metadata
the ONNX export records (input size, normalisation, architecture, widths, verification figures)
is stored as one JSON string in the IR's rt_info (`<rt_info><gancompress><metadata value=...>`),
so `generate` and `profile` run the file without flags.

Precision (measured with bench/bench_deploy.py; see the report in deploy/__init__.py): OpenVINO's
CPU plugin runs in bf16 by default on CPUs with AMX / AVX-512 BF16, which is ~2x faster there but
not an fp32 result (PSNR ~45-50 dB against PyTorch). Here the inference precision is explicit and
recorded in the file: "fp32" (default, exact), "bf16" (`bf16=True`, checked against the PSNR
floor like int8). int8 uses NNCF post-training quantization (`nncf.quantize`, MIXED preset:
symmetric int8 weights, asymmetric activations) calibrated on training images; the float parts
of an int8 model run in the recorded precision.

Accuracy-aware fallback: if the quantized model is below `target_psnr` against PyTorch fp32 on
held-out calibration images, the convs are ranked by how much PSNR leaving each one in float
gains and the most sensitive are kept float (NNCF ignored scope) one by one until the target is
met (the loop shared with the onnxruntime path, deploy/quantize.sensitivity_search); an export
below `min_psnr` is refused.

openvino and nncf are an optional extra: `pip install 'gancompress[openvino]'`.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gancompress.deploy import quantize
from gancompress.deploy.graph import deploy_module, model_info
from gancompress.deploy.onnx_export import DEFAULT_OPSET, onnx_bytes
from gancompress.deploy.runtime import OpenVinoRunner
from gancompress.deploy.session import (
    INSTALL_HINT,
    OV_RT_PATH,
    check_precision,
    compile_model,
    core,
    first_line,
    infer,
    ir_metadata,
    open_session,
    quiet,
    require_openvino,
    supports_bf16,
)
from gancompress.deploy.verify import (
    FP32_TOLERANCE,
    compare,
    reference_output,
    sample_inputs,
    verification_inputs,
)
from gancompress.errors import UserError
from gancompress.metrics.quality import psnr

# re-exported: the runner lives with the other runners, the session helpers at deploy's bottom
__all__ = ["OpenVinoRunner", "check_precision", "compile_model", "core", "export_openvino",
           "latency_call", "quantize_ov", "read_metadata", "require_nncf", "require_openvino",
           "run_model", "supports_bf16"]

IR_SUFFIX = ".xml"
RT_PATH = OV_RT_PATH   # rt_info key holding the metadata JSON
CONV_TYPES = ("Convolution", "GroupConvolution", "ConvolutionBackpropData")
# deploy_module's sub-pixel rewrite of ConvTranspose2d pays in onnxruntime, not here: OpenVINO
# runs transposed convs with oneDNN's brgemm kernels (compressed ResNet, fp32, 2 threads, one
# round-robin run: 22.3 ms median keeping ConvTranspose2d, 23.6 ms with the rewrite). The
# output-phase rewrite of the 3-output head pays here too (without it: +26% conv time).
TRANSPOSED_REWRITE = False


def require_nncf():
    try:
        with _quiet():
            import nncf
    except ImportError:
        raise UserError(f"OpenVINO int8 export needs the nncf package, which is not installed: "
                        f"{INSTALL_HINT}") from None
    return nncf


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence NNCF / exporter progress bars and info logs (stdout and stderr)."""
    nncf_logger = logging.getLogger("nncf")
    level = nncf_logger.level
    nncf_logger.setLevel(logging.ERROR)
    try:
        with quiet(), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        nncf_logger.setLevel(level)


def from_onnx(onnx_data: bytes):
    """The OpenVINO model of a serialized ONNX graph."""
    with tempfile.TemporaryDirectory(prefix="gancompress-ov-") as tmp:
        source = Path(tmp) / "model.onnx"
        source.write_bytes(onnx_data)
        try:
            return core().read_model(str(source))
        except Exception as err:  # noqa: BLE001
            raise UserError(f"OpenVINO cannot read the exported ONNX graph: {first_line(err)}"
                            ) from None


def run_model(model, images: torch.Tensor, threads: int | None = None,
              precision: str = "fp32") -> torch.Tensor:
    """Outputs of the OpenVINO `model` on `images` (compiled for that batch size)."""
    compiled = compile_model(model, threads, precision, batch=len(images))
    return torch.from_numpy(infer(compiled, images.float().cpu().numpy()).copy())


def set_metadata(model, metadata: Mapping[str, Any]) -> None:
    model.set_rt_info(json.dumps(dict(metadata), default=str), RT_PATH)


def read_metadata(model) -> dict[str, Any]:
    """The gancompress metadata of an OpenVINO model or .xml file ({} if none)."""
    return ir_metadata(model)


def conv_names(model) -> tuple[list[str], list[str]]:
    """(conv op names in graph order, dense convs reading <= 4 channels, i.e. the image)."""
    names, image = [], []
    for op in model.get_ordered_ops():
        if op.get_type_name() not in CONV_TYPES:
            continue
        names.append(op.get_friendly_name())
        weight = op.input_value(1).get_partial_shape()
        if op.get_type_name() == "Convolution" and weight.rank.get_length() == 4 and \
                weight[1].is_static and weight[1].get_length() <= 4:
            image.append(op.get_friendly_name())
    return names, image


def bin_path(xml: str | Path) -> Path:
    return Path(xml).with_suffix(".bin")


def save_pair(model, path: str | Path) -> None:
    """Write `path` (.xml) and its .bin so that neither appears half-written: both are saved in a
    temporary folder next to them, then the .bin and last the .xml are renamed into place (a
    reader opens the .xml, so it never sees a new .xml without its .bin)."""
    ov = require_openvino()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{path.stem}.", dir=path.parent) as tmp:
        staged = Path(tmp) / f"{path.stem}{IR_SUFFIX}"
        try:
            ov.save_model(model, str(staged), compress_to_fp16=False)
        except Exception as err:  # noqa: BLE001
            raise UserError(f"OpenVINO cannot save {path}: {first_line(err)}") from None
        os.replace(bin_path(staged), bin_path(path))
        try:
            os.replace(staged, path)
        except BaseException:
            bin_path(path).unlink(missing_ok=True)
            raise


def quantize_ov(model, calib: torch.Tensor, reference_fn: Callable[[torch.Tensor], torch.Tensor],
                keep_float: str | Sequence[str] = "auto", target_psnr: float | None = None,
                max_float: float = 0.25, threads: int | None = None, precision: str = "fp32",
                score: bool = True) -> tuple[Any, dict[str, Any]]:
    """int8 OpenVINO model of `model` by NNCF post-training quantization, and a report.

    calib: (N, C, H, W) training images (with N >= 4 a quarter is held out for scoring).
    keep_float: "auto" (accuracy-aware fallback, module docstring), "none", or op names
    ("first", "last" allowed) kept in float through NNCF's ignored scope.
    score=False: no PSNR check (psnr_db NaN), every image calibrates, NNCF's bias correction off
    (a speed-only model for the latency model: seconds, not minutes).
    """
    nncf = require_nncf()
    if len(calib) == 0:
        raise UserError("no calibration images")
    target_psnr = quantize.DEFAULT_TARGET_PSNR if target_psnr is None else target_psnr
    fit, score_on = quantize.split_holdout(calib) if score else (calib, calib[:0])
    reference = reference_fn(score_on) if score else None
    convs, _ = conv_names(model)
    samples = [fit[i:i + 1].float().numpy() for i in range(len(fit))]

    extra: dict[str, Any] = {}
    if not score:  # bias correction only changes values, and costs a pass per conv
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
        extra["advanced_parameters"] = AdvancedQuantizationParameters(
            disable_bias_correction=True)

    def build(exclude: Sequence[str]):
        scope = nncf.IgnoredScope(names=list(exclude)) if exclude else None
        with _quiet():
            try:
                return nncf.quantize(model, nncf.Dataset(samples), subset_size=len(samples),
                                     preset=nncf.QuantizationPreset.MIXED, ignored_scope=scope,
                                     **extra)
            except Exception as err:  # noqa: BLE001 - NNCF raises its own error types
                raise UserError(f"NNCF cannot quantize this model: {first_line(err)}") from None

    def quality_of(candidate) -> float:
        if not score:
            return float("nan")
        return psnr(reference, run_model(candidate, score_on, threads, precision))

    if isinstance(keep_float, str) and keep_float not in ("auto", "none"):
        keep_float = [k for k in keep_float.split(",") if k]
    excluded: list[str] = []
    if not isinstance(keep_float, str):
        alias = {"first": convs[0], "last": convs[-1]} if convs else {}
        excluded = [alias.get(k, k) for k in keep_float]
        unknown = [k for k in excluded if k not in convs]
        if unknown:
            raise UserError(f"--keep-float names {unknown} are not conv ops of the OpenVINO "
                            f"model; known: first, last, {', '.join(convs[:6])}, ...")
    quantized = build(excluded)
    quality = quality_of(quantized)
    report: dict[str, Any] = {
        "method": "NNCF post-training quantization (OpenVINO), MIXED preset: symmetric int8 "
                  "weights, asymmetric int8 activations, fast bias correction",
        "calibration_images": len(fit), "scored_images": len(score_on), "convs": len(convs),
        "psnr_start": quality, "float_convs_start": list(excluded)}
    if score and keep_float == "auto" and quality < target_psnr and convs:
        quantized, quality, excluded, gains = quantize.sensitivity_search(
            build, quality_of, convs, excluded, quantized, quality, target_psnr,
            limit=max(1, int(max_float * len(convs))))
        report["sensitivity_db"] = gains
    report.update(float_convs=excluded, psnr_db=quality, target_psnr=target_psnr)
    return quantized, report


def export_openvino(model: nn.Module, path: str | Path,
                    input_size: Sequence[int] = (1, 3, 256, 256), optimize: bool = True,
                    verify_inputs: torch.Tensor | None = None, tolerance: float | None = None,
                    metadata: Mapping[str, Any] | None = None, overwrite: bool = False,
                    int8: bool = False, calib_images: torch.Tensor | None = None,
                    keep_float: str | Sequence[str] = "auto", min_psnr: float | None = None,
                    target_psnr: float | None = None, precision: str = "fp32",
                    threads: int | None = None) -> dict[str, Any]:
    """Export `model` (any loaded generator, at its active widths) to an OpenVINO IR pair.

    `path` is the .xml (the .bin goes next to it). Written only after OpenVINO ran it on
    `verify_inputs` (default: two smooth random images) and matched PyTorch within `tolerance`
    (max abs, fp32) - for bf16 / int8 the PSNR against PyTorch fp32 must reach `min_psnr` -
    otherwise UserError and no file. Returns the metadata written.
    """
    require_openvino()
    path = Path(path)
    if path.suffix.lower() != IR_SUFFIX:
        raise UserError(f"an OpenVINO IR is an .xml file (with a .bin next to it); got {path}")
    if (path.exists() or bin_path(path).exists()) and not overwrite:
        raise UserError(f"{path} (or its .bin) exists; choose another --out or pass --overwrite")
    precision = check_precision(precision)
    if int8:
        require_nncf()
        if calib_images is None or len(calib_images) == 0:
            raise UserError("int8 export needs calibration images from the training data: pass "
                            "--calib DIR (a folder of images or a dataset folder)")
    tolerance = FP32_TOLERANCE if tolerance is None else tolerance
    min_psnr = quantize.DEFAULT_MIN_PSNR if min_psnr is None else min_psnr
    input_size = tuple(int(v) for v in input_size)
    deployed = deploy_module(model, optimize=optimize, transposed=TRANSPOSED_REWRITE)
    ov_model = from_onnx(onnx_bytes(deployed, input_size, DEFAULT_OPSET, "dynamo"))
    inputs = verification_inputs(model, input_size, verify_inputs)
    reference = reference_output(model, inputs)
    check = compare(reference, run_model(ov_model, inputs, threads, "fp32"))
    if not check["max_abs"] <= tolerance:
        raise UserError(f"OpenVINO export changes the model's output: max abs error "
                        f"{check['max_abs']:.3g} > tolerance {tolerance:g} (PSNR "
                        f"{check['psnr']:.1f} dB) on {len(inputs)} sample inputs; nothing "
                        f"written. Try --no-optimize and report the model")
    meta: dict[str, Any] = {
        **model_info(model, input_size), "format": "openvino", "precision": "fp32",
        "inference_precision": precision, "dynamic_batch": True, "opset": DEFAULT_OPSET,
        "openvino": require_openvino().__version__, "rewrites": list(deployed.deploy_notes),
        "verify": {"inputs": len(inputs), "max_abs": check["max_abs"],
                   "psnr_db": check["psnr"], "tolerance": tolerance}}
    if int8:
        ov_model, report = quantize_ov(
            ov_model, calib_images, lambda images: reference_output(model, images),
            keep_float=keep_float, target_psnr=target_psnr, threads=threads, precision=precision)
        meta.update(precision="int8", quantization=report)
    if int8 or precision != "fp32":
        final = compare(reference, run_model(ov_model, inputs, threads, precision))
        quality = meta["quantization"]["psnr_db"] if int8 else final["psnr"]
        what = "int8 quantization" if int8 else f"{precision} inference"
        if not quality >= min_psnr:
            raise UserError(f"{what} loses too much quality: PSNR {quality:.1f} dB against "
                            f"fp32, below the floor {min_psnr:g} dB; nothing written. "
                            + ("Calibrate on more representative images (--calib) or keep more "
                               "layers float (--keep-float)" if int8 else "export fp32"))
        meta["verify"] = {"inputs": len(inputs), "max_abs": final["max_abs"],
                          "psnr_db": final["psnr"], "fp32_max_abs": check["max_abs"],
                          "min_psnr": min_psnr}
    meta.update(dict(metadata or {}))
    set_metadata(ov_model, meta)
    save_pair(ov_model, path)
    return meta


def latency_call(model: nn.Module, input_size: Sequence[int], threads: int | None = None,
                 int8: bool = False, precision: str = "fp32",
                 calib_images: torch.Tensor | None = None, optimize: bool = True,
                 exporter: str = "dynamo", profile: bool = False, score: bool = True,
                 search: bool | None = None) -> tuple[Callable[[], Any], dict[str, Any]]:
    """(call, info) running one batch of `input_size` through `model` on OpenVINO (the profile /
    bench / latency-model backend). int8 without calibration images calibrates on smooth random
    images: right for speed, not a quality figure. `score=False`: int8 without the PSNR check
    and without sensitivity search (the latency model); `search` (default: with calibration
    images) the accuracy-aware sensitivity search."""
    require_openvino()
    if int8:
        require_nncf()
    precision = check_precision(precision)
    deployed = deploy_module(model, optimize=optimize, transposed=TRANSPOSED_REWRITE)
    ov_model = from_onnx(onnx_bytes(deployed, input_size,
                                    DEFAULT_OPSET if exporter == "dynamo" else 17, exporter))
    info: dict[str, Any] = {"precision": precision}
    if int8:
        synthetic = calib_images is None or not score
        images = sample_inputs(input_size, count=8, seed=1) if calib_images is None \
            else calib_images
        searching = not synthetic if search is None else search
        ov_model, report = quantize_ov(ov_model, images, lambda b: reference_output(model, b),
                                       target_psnr=None if searching else 0.0, threads=threads,
                                       precision=precision, score=score,
                                       keep_float="auto" if score else "none")
        info.update(psnr_db=report["psnr_db"], float_convs=len(report["float_convs"]),
                    calibration="synthetic (speed only)" if synthetic else "images")
    session = open_session("openvino", ov_model, threads, precision=precision,
                           profile=profile)
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, tuple(input_size))
                         .astype(np.float32))
    session.compiled(int(input_size[0]))  # compile now, not in the first timed call

    def call():
        return session(x)
    # any batch, image by image through the same session (quality checks)
    call.run = lambda images: torch.cat([session(images[i:i + 1]) for i in range(len(images))])
    if profile:
        call.op_times = session.op_times
    return call, info
