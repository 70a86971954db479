"""One inference session: a model on one backend, called with tensors.

    session = open_session("onnx", "g.onnx", threads=2)      # or bytes of an ONNX model
    out = session(batch, *extra)                               # output tensor
    session.close()

Kinds (what `model_or_file` is):
    torch        an nn.Module, run eagerly under inference_mode on `device`
    torchscript  a TorchScript file or its bytes (loaded; its metadata in `.metadata`) or an
                 nn.Module with
                 `example=(inputs...)` (traced and frozen, torch.jit.freeze)
    compile      an nn.Module through torch.compile (inductor, weights frozen); compiled on the
                 first call
    onnx         an ONNX file or its bytes, onnxruntime CPU (graph optimisation level `level`,
                 default ALL; `spinning=False` stops idle threads from busy-waiting)
    openvino     an OpenVINO IR (.xml) or model, compiled for the CPU per batch size in
                 `precision` (fp32 / bf16); `profile=True` records per-op times (`op_times()`)

This is the bottom of deploy/: it imports nothing else of gancompress.deploy, so the runners of
files (runtime.py), the latency backends (backends.py), the exporters' verification, the latency
model of a search space (compress/latency.py) and the web demo (serve/runners.py) all run a
model the same way. Outputs are what the backend returns, as a tensor (torch kinds: on `device`;
ONNX / OpenVINO: CPU float32); callers that hand results to users convert with `.float().cpu()`.

onnxruntime sessions use graph optimisation level ALL (constant folding, conv+bias/activation
fusion, NCHWc blocked layout on x86; 4-20% faster than EXTENDED on the compressed ResNet), one
inter-op thread and an explicit intra-op thread count (what a latency figure depends on).
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gancompress.errors import UserError

KINDS = ("torch", "torchscript", "compile", "onnx", "openvino")
INSTALL_HINT = "pip install 'gancompress[openvino]'"
# OpenVINO inference precision recorded by an export -> INFERENCE_PRECISION_HINT
OV_PRECISIONS = {"fp32": "f32", "bf16": "bf16"}
OV_RT_PATH = ["gancompress", "metadata"]   # rt_info key holding an IR's metadata JSON
TORCHSCRIPT_META = "gancompress.json"      # extra file of a TorchScript archive with metadata


def default_threads() -> int:
    return max(1, torch.get_num_threads())


def first_line(err: BaseException) -> str:
    """First line of a runtime's error (C++ traces follow it), or the exception's type."""
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence exporter progress lines and deprecation warnings (they are not the user's fault)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript",
                                               "torch._dynamo", "torch.fx")]
    loggers.append(logging.getLogger())  # onnxruntime.quantization logs on the root logger
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


# ----------------------------------------------------------------------------------------------
# onnxruntime


def ort_session(model: str | Path | bytes, threads: int | None = None, level: str = "all",
                optimized_path: str | Path | None = None, spinning: bool = True):
    """An onnxruntime CPU InferenceSession (`level`: basic | extended | all | none).
    spinning=False stops idle intra-op threads from busy-waiting for work: slower on an idle
    machine by a few %, but ~1.8x faster when the cores are shared (measured, bench/bench_demo.py's
    machine under load), as with several sessions serving side by side."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
        name = "model" if isinstance(model, bytes) else str(model)
        raise UserError(f"onnxruntime cannot load {name}: {first_line(err)} (is it a complete "
                        f"ONNX file?)") from None


# ----------------------------------------------------------------------------------------------
# OpenVINO (an optional extra)


def require_openvino():
    """The openvino module, or UserError saying how to install it."""
    try:
        import openvino
    except ImportError:
        raise UserError(f"the OpenVINO backend needs the openvino package, which is not "
                        f"installed: {INSTALL_HINT}") from None
    return openvino


@functools.lru_cache(maxsize=1)
def core():
    return require_openvino().Core()


def supports_bf16() -> bool:
    """Whether this CPU has native bf16 (AVX-512 BF16 / AMX), where OpenVINO's bf16 pays."""
    return "BF16" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


# CPU flags of the int8 dot-product units (VNNI, AMX) that make int8 convolutions faster than
# fp32; without them OpenVINO still runs int8 graphs, through slower emulation.
INT8_CPU_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "avx_vnni_int8")


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags (/proc/cpuinfo), or None where they cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def supports_int8() -> bool:
    """Whether this CPU has int8 dot-product units (VNNI / AMX), where OpenVINO int8 pays.
    Where the flags cannot be read, OpenVINO's own INT8 capability decides."""
    flags = cpu_flags()
    if flags is not None:
        return any(f in flags for f in INT8_CPU_FLAGS)
    return "INT8" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def check_precision(precision: str) -> str:
    if precision not in OV_PRECISIONS:
        raise UserError(f"unknown OpenVINO precision {precision!r}; use fp32 or bf16")
    if precision == "bf16" and not supports_bf16():
        raise UserError("this CPU has no native bf16 (AVX-512 BF16 / AMX): OpenVINO would run "
                        "fp32 anyway; export without --bf16")
    return precision


def compile_model(model, threads: int | None = None, precision: str = "fp32",
                  batch: int | None = 1, profile: bool = False):
    """A CPU-compiled copy of the OpenVINO `model`, static shape at `batch` (None: as the model
    has it), one stream, latency hint, `threads` inference threads."""
    if batch is not None:
        model = model.clone()
        shape = model.inputs[0].get_partial_shape()
        model.reshape([batch, *[d.get_length() for d in list(shape)[1:]]])
    # threads pinned to cores (ENABLE_CPU_PINNING): a latency session keeps its worker threads
    # where their caches are instead of letting the OS migrate them between calls
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                              "INFERENCE_PRECISION_HINT": OV_PRECISIONS[precision],
                              "INFERENCE_NUM_THREADS": int(threads or default_threads()),
                              "ENABLE_CPU_PINNING": True}
    if profile:
        config["PERF_COUNT"] = True
    try:
        return core().compile_model(model, "CPU", config)
    except Exception as err:  # noqa: BLE001 - OpenVINO raises RuntimeError with C++ traces
        raise UserError(f"OpenVINO cannot compile the model for the CPU: {first_line(err)}"
                        ) from None


def infer(compiled, images: torch.Tensor | np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(np.asarray(images, dtype=np.float32))
    return np.asarray(compiled.create_infer_request().infer({0: array})[0])


def read_ir(path: str | Path):
    """The OpenVINO model of an IR file (UserError when it cannot be read)."""
    try:
        return core().read_model(str(path))
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001
        raise UserError(f"OpenVINO cannot read {path}: {first_line(err)} (is its .bin next to "
                        f"it?)") from None


def ir_metadata(model) -> dict[str, Any]:
    """The gancompress metadata of an OpenVINO model or .xml file ({} if none)."""
    if isinstance(model, (str, Path)):
        model = core().read_model(str(model))
    if not model.has_rt_info(OV_RT_PATH):
        return {}
    try:
        return json.loads(model.get_rt_info(OV_RT_PATH).astype(str))
    except (json.JSONDecodeError, RuntimeError):
        return {}


# ----------------------------------------------------------------------------------------------
# Sessions


class Session:
    """A model on one backend: `session(*inputs) -> output`."""

    kind = "?"
    threads: int = 1
    metadata: dict[str, Any]

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def close(self) -> None:
        """Release the backend's resources; the session cannot be called afterwards."""
        for name in ("model", "module", "ort", "ov_model"):
            if hasattr(self, name):
                setattr(self, name, None)
        getattr(self, "_compiled", {}).clear()


def _to_device(t: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    t = t.to(device)
    if channels_last and t.dim() == 4:
        t = t.contiguous(memory_format=torch.channels_last)
    return t


class TorchSession(Session):
    """Eager PyTorch. With `set_threads` the intra-op pool (one per process) is set to `threads`
    for each call, so sessions with different thread counts can take turns (the demo).
    `channels_last`: weights and image inputs in NHWC memory layout (oneDNN's direct NHWC conv
    kernels; the deployed compressed ResNet ran ~1.3x faster eager on the CPU, measured in
    bench/bench_deploy.py's torch-cl rows)."""

    kind = "torch"

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu",
                 threads: int | None = None, set_threads: bool = False,
                 channels_last: bool = False):
        self.device = torch.device(device)
        self.model = model.to(self.device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.channels_last = channels_last
        self.threads = threads or default_threads()
        self.set_threads = set_threads
        self.metadata = {}

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.set_threads:
            torch.set_num_threads(self.threads)
        with torch.inference_mode():
            return self.model(*(_to_device(t, self.device, self.channels_last) for t in inputs))


class TorchScriptSession(Session):
    kind = "torchscript"

    def __init__(self, source: str | Path | bytes | nn.Module,
                 device: str | torch.device = "cpu",
                 threads: int | None = None, example: Sequence[torch.Tensor] | None = None,
                 channels_last: bool = False):
        self.device = torch.device(device)
        self.threads = threads or default_threads()
        self.metadata = {}
        self.channels_last = channels_last
        if isinstance(source, nn.Module):
            if example is None:
                raise ValueError("tracing a module needs example inputs (example=...)")
            source = source.to(self.device).eval()
            if channels_last:
                source = source.to(memory_format=torch.channels_last)
            with quiet(), torch.no_grad():
                self.module = torch.jit.freeze(torch.jit.trace(
                    source, tuple(_to_device(t, self.device, channels_last) for t in example),
                    check_trace=False))
            return
        extra = {TORCHSCRIPT_META: ""}
        try:
            with quiet():  # torch.jit.load is deprecated upstream; the file format is still read
                self.module = torch.jit.load(
                    io.BytesIO(source) if isinstance(source, bytes) else str(source),
                    map_location=self.device, _extra_files=extra)
        except Exception as err:  # noqa: BLE001 - torch.jit raises RuntimeError with C++ traces
            name = "model" if isinstance(source, bytes) else f"file {source}"
            raise UserError(f"cannot load TorchScript {name}: {first_line(err)}") from None
        self.metadata = json.loads(extra[TORCHSCRIPT_META]) if extra[TORCHSCRIPT_META] else {}

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.module(*(_to_device(t, self.device, self.channels_last) for t in inputs))


class CompiledSession(Session):
    """torch.compile (inductor) with frozen weights: conv+bias fusion and constant folding.
    Compiles on the first call; `compile_s` records how long that took."""

    kind = "compile"

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu",
                 threads: int | None = None):
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True  # weights become constants
        self.device = torch.device(device)
        self.threads = threads or default_threads()
        self.metadata = {}
        self.module = torch.compile(model.to(self.device).eval())
        self.compile_s: float | None = None

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            if self.compile_s is None:
                start = time.perf_counter()
                out = self.module(*(t.to(self.device) for t in inputs))
                self.compile_s = time.perf_counter() - start
                return out
            return self.module(*(t.to(self.device) for t in inputs))


class OnnxSession(Session):
    kind = "onnx"

    def __init__(self, source: str | Path | bytes, threads: int | None = None,
                 level: str = "all", spinning: bool = True,
                 optimized_path: str | Path | None = None):
        self.threads = threads or default_threads()
        self.ort = ort_session(source, self.threads, level, optimized_path, spinning)
        self.inputs = self.ort.get_inputs()
        self.input_names = [i.name for i in self.inputs]
        self.metadata = {}

    def __call__(self, *inputs: torch.Tensor | np.ndarray) -> torch.Tensor:
        feeds = {name: _numpy(t) for name, t in zip(self.input_names, inputs)}
        return torch.from_numpy(np.asarray(self.ort.run(None, feeds)[0]))

    def run_feeds(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The raw onnxruntime call (named numpy inputs -> all outputs)."""
        return self.ort.run(None, feeds)


class OpenVinoSession(Session):
    """An OpenVINO model compiled once per batch size, one infer request each (reused)."""

    kind = "openvino"

    def __init__(self, source: str | Path | Any, threads: int | None = None,
                 precision: str = "fp32", profile: bool = False):
        require_openvino()
        self.ov_model = read_ir(source) if isinstance(source, (str, Path)) else source
        self.metadata = ir_metadata(self.ov_model)
        self.threads = threads or default_threads()
        self.precision = precision
        self.profile = profile
        self._compiled: dict[int, Any] = {}
        self._last = None

    def compiled(self, batch: int = 1):
        if batch not in self._compiled:
            model = compile_model(self.ov_model, self.threads, self.precision, batch,
                                  profile=self.profile)
            self._compiled[batch] = (model, model.create_infer_request())
        return self._compiled[batch][0]

    def __call__(self, *inputs: torch.Tensor | np.ndarray) -> torch.Tensor:
        array = np.ascontiguousarray(_numpy(inputs[0]))
        self.compiled(len(array))
        self._last = request = self._compiled[len(array)][1]
        # share_inputs: the request reads the caller's array in place (no input copy); the
        # output is the request's own buffer, reused by the next call, so it is copied once
        result = request.infer({0: array}, share_inputs=True, share_outputs=True)
        return torch.from_numpy(np.array(result[0], copy=True))

    def op_times(self) -> list[dict[str, Any]]:
        """Per-op times (ms) of the last inference (needs profile=True; OpenVINO PERF_COUNT):
        name, type, the kernel that ran (exec_type) and real time."""
        rows = []
        for item in (self._last.profiling_info if self._last is not None else []):
            if item.status == item.Status.EXECUTED:
                rows.append({"name": item.node_name, "type": item.node_type,
                             "kernel": item.exec_type,
                             "ms": item.real_time.total_seconds() * 1e3})
        return rows


def _numpy(t: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().float().cpu().numpy()
    return np.asarray(t, dtype=np.float32)


def open_session(kind: str, model_or_file: Any, threads: int | None = None,
                 device: str | torch.device = "cpu", precision: str = "fp32",
                 **options: Any) -> Session:
    """A session running `model_or_file` on backend `kind` (see the module docstring).

    options: torch `set_threads`, `channels_last`; torchscript `example`, `channels_last`;
    onnx `level`, `spinning`,
    `optimized_path`; openvino `profile`. ONNX and OpenVINO run on the CPU only.
    """
    if kind not in KINDS:
        raise UserError(f"unknown session kind {kind!r}; choose from {', '.join(KINDS)}")
    if kind in ("onnx", "openvino") and torch.device(device).type != "cpu":
        raise UserError(f"{kind} runs on the CPU only here; use the PyTorch checkpoint for "
                        f"{device}")
    if kind == "openvino" and precision not in OV_PRECISIONS:
        raise UserError(f"unknown OpenVINO precision {precision!r}; use fp32 or bf16")
    if kind in ("torchscript", "onnx", "openvino") and isinstance(model_or_file, (str, Path)):
        from gancompress.sniff import check_exported
        check_exported(model_or_file, kind)  # another kind of file is named, in one line
    if kind == "torch":
        return TorchSession(model_or_file, device, threads, **options)
    if kind == "torchscript":
        return TorchScriptSession(model_or_file, device, threads, **options)
    if kind == "compile":
        return CompiledSession(model_or_file, device, threads)
    if kind == "onnx":
        return OnnxSession(model_or_file, threads, **options)
    return OpenVinoSession(model_or_file, threads, precision, **options)
