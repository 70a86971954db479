"""Running any generator file on images: PyTorch checkpoints, ONNX files, OpenVINO IRs (.xml),
TorchScript files.

`open_model(path)` detects the kind of file and returns a `Runner`: `runner(batch)` maps a float
tensor (B, C, H, W) in [-1, 1] to the output in [-1, 1]; `runner.input_size` is the size recorded
at export (None for checkpoints, which are fully convolutional and record none). Generators with
further inputs (MUNIT's style code) list them in `runner.extra_inputs` (name -> shape without the
batch) and take them as further arguments: `runner(batch, style)`.

onnxruntime sessions use graph optimisation level ALL (constant folding, conv+bias/activation
fusion, NCHWc blocked layout on x86; 4-20% faster than EXTENDED on the compressed ResNet),
one inter-op thread and an explicit intra-op thread count (what a latency figure depends on).
Note: loading a TorchScript file runs the TorchScript code stored in it; open only files you trust
(our PyTorch checkpoints, by contrast, never unpickle code).
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from gancompress.errors import UserError

ONNX_SUFFIXES = (".onnx",)
OPENVINO_SUFFIXES = (".xml",)


def default_threads() -> int:
    return max(1, torch.get_num_threads())


def ort_session(model: str | Path | bytes, threads: int | None = None, level: str = "all",
                optimized_path: str | Path | None = None, spinning: bool = True):
    """An onnxruntime CPU session (`level`: basic | extended | all | none). spinning=False stops
    idle intra-op threads from busy-waiting for work: slower on an idle machine by a few %, but
    ~1.8x faster when the cores are shared (measured, bench/bench_demo.py's machine under load),
    as with several sessions serving side by side."""
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
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise UserError(f"onnxruntime cannot load {name}: {first} (is it a complete ONNX file?)"
                        ) from None


class Runner:
    """A loaded generator: call with (B, C, H, W) float in [-1, 1]."""

    kind = "?"
    input_size: tuple[int, int, int, int] | None = None
    in_channels: int = 3
    metadata: dict[str, Any]
    extra_inputs: dict[str, tuple[int, ...]] = {}

    def __call__(self, batch: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def family(self) -> tuple[Any, dict[str, Any]]:
        """(generator family class, its constructor arguments): the loaded model's, else the
        architecture recorded in an exported file; the base ElasticGenerator (an image input)
        when a file records none."""
        from gancompress.models import generator_class
        from gancompress.models.elastic import ElasticGenerator

        model = getattr(self, "model", None)
        if isinstance(model, ElasticGenerator):
            return type(model), dict(model.arch)
        name, arch = self.metadata.get("arch_name"), self.metadata.get("arch")
        if isinstance(name, str) and isinstance(arch, dict):
            return generator_class(name), {**arch, "in_channels": self.in_channels}
        return ElasticGenerator, {"in_channels": self.in_channels}

    def read_input(self, path: str | Path, size: tuple[int, int] | None,
                   instances: str | Path | None = None) -> torch.Tensor:
        """One input file -> the model's first input (C, H, W), by its family's rule (an image
        in [-1, 1]; a label map as one-hot + edges for SPADE)."""
        cls, arch = self.family()
        return cls.read_input(arch, path, size, instances)

    def check_inputs(self, paths: list[Path], size: tuple[int, int] | None,
                     instances: str | Path | None = None) -> None:
        """Every input file is usable (one UserError naming the bad ones) before any output."""
        cls, arch = self.family()
        cls.check_input_files(arch, paths, size, instances)

    def check_extra(self, extra: tuple[torch.Tensor, ...]) -> None:
        if len(extra) != len(self.extra_inputs):
            names = ", ".join(self.extra_inputs) or "none"
            raise UserError(f"this {self.kind} model takes the image and {len(self.extra_inputs)} "
                            f"further input(s) ({names}), got {len(extra)}")

    def check_input(self, batch: torch.Tensor) -> None:
        if batch.dim() != 4 or batch.shape[1] != self.in_channels:
            raise UserError(f"the model takes (B, {self.in_channels}, H, W) inputs, got "
                            f"{tuple(batch.shape)}")
        fixed = self.input_size
        if fixed is not None and tuple(batch.shape[2:]) != tuple(fixed[2:]):
            raise UserError(f"this {self.kind} file was exported for {fixed[2]}x{fixed[3]} inputs, "
                            f"got {batch.shape[2]}x{batch.shape[3]}; resize the images (generate "
                            f"does so) or export again with --size")


# How a PyTorch generator runs at test time. pix2pix's test.py calls model.eval() only with
# --eval, so its reference test images are made with dropout active and BatchNorm batch
# statistics (REFERENCE-FAMILIES.md sec. 2); eval mode is the deterministic default here.
TEST_MODES = {
    "eval": "eval mode (dropout off, BatchNorm running statistics)",
    "train": "train mode, as pix2pix test.py without --eval (dropout on, BatchNorm batch "
             "statistics)",
}


def apply_test_mode(model: nn.Module, mode: str = "eval", seed: int = 0) -> str:
    """Put `model` in test `mode` ('eval' or 'train', see TEST_MODES); returns its description.

    Train mode seeds torch's generator with `seed`, so the dropout masks are reproducible.
    """
    if mode not in TEST_MODES:
        raise UserError(f"test mode {mode!r}: use {' or '.join(TEST_MODES)}")
    model.train(mode == "train")
    if mode == "train":
        torch.manual_seed(seed)
        return f"{TEST_MODES[mode]}, seed {seed}"
    return TEST_MODES[mode]


class TorchRunner(Runner):
    kind = "pytorch"

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu",
                 test_mode: str = "eval", seed: int = 0):
        self.model = model.to(device)
        self.mode = apply_test_mode(self.model, test_mode, seed)
        self.device = torch.device(device)
        self.in_channels = int(getattr(model, "arch", {}).get("in_channels", 3))
        self.metadata = {}
        names = getattr(model, "input_names", ("input",))
        if len(names) > 1:
            examples = model.example_inputs(None, 1)[1:]
            self.extra_inputs = {n: tuple(t.shape[1:]) for n, t in zip(names[1:], examples)}

    def __call__(self, batch: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        self.check_input(batch)
        if extra:
            self.check_extra(extra)
        with torch.inference_mode():
            return self.model(batch.to(self.device),
                              *(t.to(self.device) for t in extra)).float().cpu()


class OnnxRunner(Runner):
    kind = "onnx"

    def __init__(self, path: str | Path | bytes, threads: int | None = None, level: str = "all",
                 spinning: bool = True):
        from gancompress.deploy.onnx_export import read_metadata

        self.session = ort_session(path, threads, level, spinning=spinning)
        self.metadata = read_metadata(path)
        inputs = self.session.get_inputs()
        inp = inputs[0]
        self.input_name = inp.name
        self.extra_inputs = {i.name: tuple(int(v) if isinstance(v, int) else -1
                                           for v in i.shape[1:]) for i in inputs[1:]}
        shape = list(inp.shape)
        if len(shape) != 4:
            raise UserError(f"{path if not isinstance(path, bytes) else 'the ONNX model'} takes a "
                            f"{len(shape)}-d input; an image generator takes (B, C, H, W)")
        self.in_channels = int(shape[1]) if isinstance(shape[1], int) else 3
        if all(isinstance(v, int) for v in shape[1:]):
            self.input_size = (1, *map(int, shape[1:]))
        elif "input_size" in self.metadata:
            self.input_size = tuple(self.metadata["input_size"])

    def __call__(self, batch: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        self.check_input(batch)
        self.check_extra(extra)
        feeds = {self.input_name: batch.detach().float().cpu().numpy()}
        feeds.update({name: t.detach().float().cpu().numpy()
                      for name, t in zip(self.extra_inputs, extra)})
        return torch.from_numpy(np.asarray(self.session.run(None, feeds)[0]))


class TorchScriptRunner(Runner):
    kind = "torchscript"

    def __init__(self, path: str | Path, device: str | torch.device = "cpu"):
        from gancompress.deploy.torchscript import META_FILE

        extra = {META_FILE: ""}
        from gancompress.deploy.onnx_export import quiet

        try:
            with quiet():  # torch.jit.load is deprecated upstream; the file format is still read
                self.module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
        except Exception as err:  # noqa: BLE001 - torch.jit raises RuntimeError with C++ traces
            text = str(err).strip()
            first = text.splitlines()[0][:300] if text else type(err).__name__
            raise UserError(f"cannot load TorchScript file {path}: {first}") from None
        self.metadata = json.loads(extra[META_FILE]) if extra[META_FILE] else {}
        self.device = torch.device(device)
        if "input_size" in self.metadata:
            self.input_size = tuple(self.metadata["input_size"])
            self.in_channels = int(self.input_size[1])

    def __call__(self, batch: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        self.check_input(batch)
        self.check_extra(extra)
        with torch.inference_mode():
            return self.module(batch.to(self.device)).float().cpu()


def file_kind(path: str | Path) -> str:
    """'onnx', 'openvino' (an IR .xml), 'torchscript' or 'checkpoint' (our / published PyTorch
    weights)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file not found: {path}")
    if path.suffix.lower() in ONNX_SUFFIXES:
        return "onnx"
    if path.suffix.lower() in OPENVINO_SUFFIXES:
        if not path.with_suffix(".bin").is_file():
            raise UserError(f"{path} is an OpenVINO IR without its weights: "
                            f"{path.with_suffix('.bin').name} is missing next to it")
        return "openvino"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        # TorchScript archives hold compiled code (<name>/code/...) and constants.pkl;
        # torch.save checkpoints only data.pkl and tensor storages.
        if any("/code/" in n or n.endswith("constants.pkl") for n in names):
            return "torchscript"
        return "checkpoint"
    with open(path, "rb") as handle:
        head = handle.read(64)
    # An ONNX ModelProto starts with field 1 (ir_version, varint): byte 0x08.
    if head[:1] == b"\x08":
        return "onnx"
    return "checkpoint"


def open_model(path: str | Path, device: str = "cpu", threads: int | None = None,
               test_mode: str = "eval", seed: int = 0) -> Runner:
    """Open a generator file of any supported kind for inference (`test_mode`: TEST_MODES;
    exported files hold the eval-mode graph only)."""
    kind = file_kind(path)
    if test_mode != "eval" and kind != "checkpoint":
        raise UserError(f"--test-mode {test_mode} needs a PyTorch checkpoint: an exported "
                        f"{kind} file holds only the eval-mode graph")
    if kind == "onnx":
        if device != "cpu":
            raise UserError("ONNX files run on the CPU here (onnxruntime CPU provider); drop "
                            "--device or use the PyTorch checkpoint for GPU inference")
        return OnnxRunner(path, threads=threads)
    if kind == "openvino":
        if device != "cpu":
            raise UserError("OpenVINO IR files run on the CPU here; drop --device or use the "
                            "PyTorch checkpoint for GPU inference")
        from gancompress.deploy.openvino import OpenVinoRunner

        return OpenVinoRunner(path, threads=threads)
    if kind == "torchscript":
        return TorchScriptRunner(path, device=device)
    from gancompress.models.checkpoint import load_generator

    return TorchRunner(load_generator(path, device=device), device=device, test_mode=test_mode,
                       seed=seed)


def describe(runner: Runner) -> str:
    size = "any size" if runner.input_size is None else \
        f"{runner.input_size[2]}x{runner.input_size[3]}"
    extra = runner.metadata.get("config") or ""
    precision = runner.metadata.get("precision", "fp32")
    mode = getattr(runner, "mode", TEST_MODES["eval"])
    return f"{runner.kind} ({precision}{', ' + extra if extra else ''}), input {size}, {mode}"
