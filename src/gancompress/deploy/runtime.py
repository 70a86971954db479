"""Running any generator file on images: PyTorch checkpoints, ONNX files, OpenVINO IRs (.xml),
TorchScript files.

`open_model(path)` detects the kind of file and returns a `Runner`: `runner(batch)` maps a float
tensor (B, C, H, W) in [-1, 1] to the output in [-1, 1]; `runner.input_size` is the size recorded
at export (None for checkpoints, which are fully convolutional and record none). Generators with
further inputs (MUNIT's style code) list them in `runner.extra_inputs` (name -> shape without the
batch) and take them as further arguments: `runner(batch, style)`.

Every runner checks its inputs and runs through one inference session (deploy/session.py,
`open_session`), the same sessions the latency backends, the latency model and the demo use.
Note: loading a TorchScript file runs the TorchScript code stored in it; open only files you trust
(our PyTorch checkpoints, by contrast, never unpickle code).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from gancompress.deploy.session import (
    OV_PRECISIONS,
    Session,
    default_threads,
    open_session,
    ort_session,
    require_openvino,
    supports_bf16,
)
from gancompress.errors import UserError

__all__ = ["ONNX_SUFFIXES", "OPENVINO_SUFFIXES", "OnnxRunner", "OpenVinoRunner", "Runner",
           "TEST_MODES", "TorchRunner", "TorchScriptRunner", "apply_test_mode", "default_threads",
           "describe", "file_kind", "open_model", "ort_session"]

ONNX_SUFFIXES = (".onnx",)
OPENVINO_SUFFIXES = (".xml",)


class Runner:
    """A loaded generator: call with (B, C, H, W) float in [-1, 1]."""

    kind = "?"
    session: Session
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
# statistics (docs/families.md sec. 2); eval mode is the deterministic default here.
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
        self.session = open_session("torch", model, device=device)
        self.model = self.session.model
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
        return self.session(batch, *extra).float().cpu()


class OnnxRunner(Runner):
    kind = "onnx"

    def __init__(self, path: str | Path | bytes, threads: int | None = None, level: str = "all",
                 spinning: bool = True):
        from gancompress.deploy.onnx_export import read_metadata

        self.session = open_session("onnx", path, threads, level=level, spinning=spinning)
        self.metadata = read_metadata(path)
        inputs = self.session.inputs
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
        return self.session(batch, *extra)


class TorchScriptRunner(Runner):
    kind = "torchscript"

    def __init__(self, path: str | Path, device: str | torch.device = "cpu"):
        self.session = open_session("torchscript", path, device=device)
        self.metadata = self.session.metadata
        self.device = torch.device(device)
        if "input_size" in self.metadata:
            self.input_size = tuple(self.metadata["input_size"])
            self.in_channels = int(self.input_size[1])

    def __call__(self, batch: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        self.check_input(batch)
        self.check_extra(extra)
        return self.session(batch).float().cpu()


class OpenVinoRunner(Runner):
    """Runs an OpenVINO IR (.xml) on (B, C, H, W) float batches in [-1, 1]; one compiled model per
    batch size, in the precision recorded at export (fp32 if none)."""

    kind = "openvino"

    def __init__(self, path: str | Path | Any, threads: int | None = None,
                 precision: str | None = None):
        require_openvino()
        self.session = open_session("openvino", path, threads, precision="fp32")
        self.model = self.session.ov_model
        self.metadata = self.session.metadata
        self.threads = threads
        self.precision = precision or self.metadata.get("inference_precision", "fp32")
        if self.precision not in OV_PRECISIONS:
            raise UserError(f"{path}: unknown inference precision {self.precision!r}")
        if self.precision == "bf16" and not supports_bf16():
            self.precision = "fp32"  # recorded for a bf16 CPU; this one runs fp32 exactly
        self.session.precision = self.precision
        shape = self.model.inputs[0].get_partial_shape()
        if shape.rank.get_length() != 4:
            raise UserError(f"{path} takes a {shape.rank.get_length()}-d input; an image "
                            f"generator takes (B, C, H, W)")
        dims = list(shape)
        self.in_channels = dims[1].get_length() if dims[1].is_static else 3
        self.input_size = tuple(self.metadata["input_size"]) if "input_size" in self.metadata \
            else (1, *[d.get_length() for d in dims[1:]])

    def compiled(self, batch: int = 1):
        return self.session.compiled(batch)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        self.check_input(batch)
        return self.session(batch)


def file_kind(path: str | Path) -> str:
    """'onnx', 'openvino' (an IR .xml), 'torchscript' or 'checkpoint' (our / published PyTorch
    weights)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file not found: {path}")
    from gancompress.sniff import model_kind

    return model_kind(path)  # the one sniffer: the content decides, and names any other file


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
