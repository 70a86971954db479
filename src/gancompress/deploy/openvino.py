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
import functools
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

from gancompress.deploy.graph import deploy_module, model_info
from gancompress.deploy.runtime import Runner
from gancompress.errors import UserError
from gancompress.metrics.quality import psnr

INSTALL_HINT = "pip install 'gancompress[openvino]'"
IR_SUFFIX = ".xml"
RT_PATH = ["gancompress", "metadata"]   # rt_info key holding the metadata JSON
PRECISIONS = {"fp32": "f32", "bf16": "bf16"}  # recorded precision -> INFERENCE_PRECISION_HINT
CONV_TYPES = ("Convolution", "GroupConvolution", "ConvolutionBackpropData")
# deploy_module's sub-pixel rewrite of ConvTranspose2d pays in onnxruntime, not here: OpenVINO
# runs transposed convs with oneDNN's brgemm kernels (compressed ResNet, fp32, 2 threads, one
# round-robin run: 22.3 ms median keeping ConvTranspose2d, 23.6 ms with the rewrite). The
# output-phase rewrite of the 3-output head pays here too (without it: +26% conv time).
TRANSPOSED_REWRITE = False


def require_openvino():
    """The openvino module, or UserError saying how to install it."""
    try:
        import openvino
    except ImportError:
        raise UserError(f"the OpenVINO backend needs the openvino package, which is not "
                        f"installed: {INSTALL_HINT}") from None
    return openvino


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
    from gancompress.deploy.onnx_export import quiet

    nncf_logger = logging.getLogger("nncf")
    level = nncf_logger.level
    nncf_logger.setLevel(logging.ERROR)
    try:
        with quiet(), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        nncf_logger.setLevel(level)


@functools.lru_cache(maxsize=1)
def core():
    return require_openvino().Core()


def supports_bf16() -> bool:
    """Whether this CPU has native bf16 (AVX-512 BF16 / AMX), where OpenVINO's bf16 pays."""
    return "BF16" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise UserError(f"unknown OpenVINO precision {precision!r}; use fp32 or bf16")
    if precision == "bf16" and not supports_bf16():
        raise UserError("this CPU has no native bf16 (AVX-512 BF16 / AMX): OpenVINO would run "
                        "fp32 anyway; export without --bf16")
    return precision


def compile_model(model, threads: int | None = None, precision: str = "fp32",
                  batch: int | None = 1, profile: bool = False):
    """A CPU-compiled copy of `model`, static shape at `batch` (None: as the model has it),
    one stream, latency hint, `threads` inference threads."""
    if batch is not None:
        model = model.clone()
        shape = model.inputs[0].get_partial_shape()
        model.reshape([batch, *[d.get_length() for d in list(shape)[1:]]])
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                              "INFERENCE_PRECISION_HINT": PRECISIONS[precision]}
    threads = threads or max(1, torch.get_num_threads())
    config["INFERENCE_NUM_THREADS"] = int(threads)
    if profile:
        config["PERF_COUNT"] = True
    try:
        return core().compile_model(model, "CPU", config)
    except Exception as err:  # noqa: BLE001 - OpenVINO raises RuntimeError with C++ traces
        raise UserError(f"OpenVINO cannot compile the model for the CPU: {_first_line(err)}"
                        ) from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


def from_onnx(onnx_data: bytes):
    """The OpenVINO model of a serialized ONNX graph."""
    with tempfile.TemporaryDirectory(prefix="gancompress-ov-") as tmp:
        source = Path(tmp) / "model.onnx"
        source.write_bytes(onnx_data)
        try:
            return core().read_model(str(source))
        except Exception as err:  # noqa: BLE001
            raise UserError(f"OpenVINO cannot read the exported ONNX graph: {_first_line(err)}"
                            ) from None


def infer(compiled, images: torch.Tensor | np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(np.asarray(images, dtype=np.float32))
    return np.asarray(compiled.create_infer_request().infer({0: array})[0])


def run_model(model, images: torch.Tensor, threads: int | None = None,
              precision: str = "fp32") -> torch.Tensor:
    """Outputs of the OpenVINO `model` on `images` (compiled for that batch size)."""
    compiled = compile_model(model, threads, precision, batch=len(images))
    return torch.from_numpy(infer(compiled, images.float().cpu().numpy()).copy())


def set_metadata(model, metadata: Mapping[str, Any]) -> None:
    model.set_rt_info(json.dumps(dict(metadata), default=str), RT_PATH)


def read_metadata(model) -> dict[str, Any]:
    """The gancompress metadata of an OpenVINO model or .xml file ({} if none)."""
    if isinstance(model, (str, Path)):
        model = core().read_model(str(model))
    if not model.has_rt_info(RT_PATH):
        return {}
    try:
        return json.loads(model.get_rt_info(RT_PATH).astype(str))
    except (json.JSONDecodeError, RuntimeError):
        return {}


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
            raise UserError(f"OpenVINO cannot save {path}: {_first_line(err)}") from None
        os.replace(bin_path(staged), bin_path(path))
        try:
            os.replace(staged, path)
        except BaseException:
            bin_path(path).unlink(missing_ok=True)
            raise


def quantize_ov(model, calib: torch.Tensor, reference_fn: Callable[[torch.Tensor], torch.Tensor],
                keep_float: str | Sequence[str] = "auto", target_psnr: float | None = None,
                max_float: float = 0.25, threads: int | None = None, precision: str = "fp32"
                ) -> tuple[Any, dict[str, Any]]:
    """int8 OpenVINO model of `model` by NNCF post-training quantization, and a report.

    calib: (N, C, H, W) training images (with N >= 4 a quarter is held out for scoring).
    keep_float: "auto" (accuracy-aware fallback, module docstring), "none", or op names
    ("first", "last" allowed) kept in float through NNCF's ignored scope.
    """
    from gancompress.deploy import quantize

    nncf = require_nncf()
    if len(calib) == 0:
        raise UserError("no calibration images")
    target_psnr = quantize.DEFAULT_TARGET_PSNR if target_psnr is None else target_psnr
    fit, score_on = quantize.split_holdout(calib)
    reference = reference_fn(score_on)
    convs, _ = conv_names(model)
    samples = [fit[i:i + 1].float().numpy() for i in range(len(fit))]

    def build(exclude: Sequence[str]):
        scope = nncf.IgnoredScope(names=list(exclude)) if exclude else None
        with _quiet():
            try:
                return nncf.quantize(model, nncf.Dataset(samples), subset_size=len(samples),
                                     preset=nncf.QuantizationPreset.MIXED, ignored_scope=scope)
            except Exception as err:  # noqa: BLE001 - NNCF raises its own error types
                raise UserError(f"NNCF cannot quantize this model: {_first_line(err)}") from None

    def score(candidate) -> float:
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
    quality = score(quantized)
    report: dict[str, Any] = {
        "method": "NNCF post-training quantization (OpenVINO), MIXED preset: symmetric int8 "
                  "weights, asymmetric int8 activations, fast bias correction",
        "calibration_images": len(fit), "scored_images": len(score_on), "convs": len(convs),
        "psnr_start": quality, "float_convs_start": list(excluded)}
    if keep_float == "auto" and quality < target_psnr and convs:
        quantized, quality, excluded, gains = quantize.sensitivity_search(
            build, score, convs, excluded, quantized, quality, target_psnr,
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
    from gancompress.deploy import quantize
    from gancompress.deploy.onnx_export import (
        DEFAULT_OPSET,
        FP32_TOLERANCE,
        compare,
        onnx_bytes,
        reference_output,
        verification_inputs,
    )

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


class OpenVinoRunner(Runner):
    """Runs an OpenVINO IR (.xml) on (B, C, H, W) float batches in [-1, 1]; one compiled model per
    batch size, in the precision recorded at export (fp32 if none)."""

    kind = "openvino"

    def __init__(self, path: str | Path | Any, threads: int | None = None,
                 precision: str | None = None):
        if isinstance(path, (str, Path)):
            try:
                self.model = core().read_model(str(path))
            except Exception as err:  # noqa: BLE001
                raise UserError(f"OpenVINO cannot read {path}: {_first_line(err)} (is its .bin "
                                f"next to it?)") from None
        else:
            self.model = path
        self.metadata = read_metadata(self.model)
        self.threads = threads
        self.precision = precision or self.metadata.get("inference_precision", "fp32")
        if self.precision == "bf16" and not supports_bf16():
            self.precision = "fp32"  # recorded for a bf16 CPU; this one runs fp32 exactly
        shape = self.model.inputs[0].get_partial_shape()
        if shape.rank.get_length() != 4:
            raise UserError(f"{path} takes a {shape.rank.get_length()}-d input; an image "
                            f"generator takes (B, C, H, W)")
        dims = list(shape)
        self.in_channels = dims[1].get_length() if dims[1].is_static else 3
        self.input_size = tuple(self.metadata["input_size"]) if "input_size" in self.metadata \
            else (1, *[d.get_length() for d in dims[1:]])
        self._compiled: dict[int, Any] = {}

    def compiled(self, batch: int = 1):
        if batch not in self._compiled:
            self._compiled[batch] = compile_model(self.model, self.threads, self.precision, batch)
        return self._compiled[batch]

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        self.check_input(batch)
        array = batch.detach().float().cpu().numpy()
        return torch.from_numpy(infer(self.compiled(len(array)), array).copy())


def latency_call(model: nn.Module, input_size: Sequence[int], threads: int | None = None,
                 int8: bool = False, precision: str = "fp32",
                 calib_images: torch.Tensor | None = None, optimize: bool = True,
                 exporter: str = "dynamo", profile: bool = False
                 ) -> tuple[Callable[[], Any], dict[str, Any]]:
    """(call, info) running one batch of `input_size` through `model` on OpenVINO (the profile /
    bench / latency-model backend). int8 without calibration images calibrates on smooth random
    images: right for speed, not a quality figure."""
    from gancompress.deploy.onnx_export import DEFAULT_OPSET, onnx_bytes, reference_output

    require_openvino()
    if int8:
        require_nncf()
    precision = check_precision(precision)
    deployed = deploy_module(model, optimize=optimize, transposed=TRANSPOSED_REWRITE)
    ov_model = from_onnx(onnx_bytes(deployed, input_size,
                                    DEFAULT_OPSET if exporter == "dynamo" else 17, exporter))
    info: dict[str, Any] = {"precision": precision}
    if int8:
        from gancompress.deploy.onnx_export import sample_inputs

        synthetic = calib_images is None
        images = sample_inputs(input_size, count=8, seed=1) if synthetic else calib_images
        ov_model, report = quantize_ov(ov_model, images, lambda b: reference_output(model, b),
                                       target_psnr=0.0 if synthetic else None, threads=threads,
                                       precision=precision)
        info.update(psnr_db=report["psnr_db"], float_convs=len(report["float_convs"]),
                    calibration="synthetic (speed only)" if synthetic else "images")
    request = compile_model(ov_model, threads, precision, batch=int(input_size[0]),
                            profile=profile).create_infer_request()
    x = np.random.default_rng(0).uniform(-1, 1, tuple(input_size)).astype(np.float32)

    def call():
        return request.infer({0: x})
    # any batch, image by image through the same compiled model (quality checks)
    call.run = lambda images: torch.cat([torch.from_numpy(np.array(
        request.infer({0: images[i:i + 1].float().numpy()})[0])) for i in range(len(images))])
    if profile:
        call.op_times = lambda: op_times(request)
    return call, info


def op_times(request) -> list[dict[str, Any]]:
    """Per-op times (ms) of the last inference of a request compiled with profile=True
    (OpenVINO PERF_COUNT): name, type, the kernel that ran (exec_type) and real time."""
    rows = []
    for item in request.profiling_info:
        if item.status == item.Status.EXECUTED:
            rows.append({"name": item.node_name, "type": item.node_type,
                         "kernel": item.exec_type,
                         "ms": item.real_time.total_seconds() * 1e3})
    return rows
