"""Inference backends for latency measurement, and side-by-side timing.

    torch        the model as loaded, eager PyTorch (the baseline the papers' speed-ups refer to)
    torch-cl     deploy module (folded norms, fused zero pads) eager, channels-last (NHWC)
    torchscript  deploy module traced + frozen (torch.jit.freeze)
    compile      deploy module through torch.compile (inductor, weights frozen); compiles once
    onnx         deploy module exported to ONNX, onnxruntime fp32, graph optimisation level ALL
    onnx-int8    the same, int8 QDQ (deploy/quantize.py)
    openvino     the same ONNX graph in OpenVINO (CPU plugin), fp32 inference precision
    openvino-bf16  the same in bf16 (CPUs with AMX / AVX-512 BF16)
    openvino-int8  NNCF post-training int8 of the OpenVINO model (deploy/openvino.py), the
                   ops left in float (norms, pads) in fp32
    openvino-int8-bf16  the same with the float ops in bf16 (CPUs with bf16; export --int8 --bf16)

All CPU backends use the same thread count. `measure_side_by_side` times the backends round-robin
(one call of each in turn), so a change of machine load during the measurement hits them alike and
their ratios stay meaningful on a shared machine.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from gancompress.deploy.graph import deploy_module
from gancompress.deploy.onnx_export import DEFAULT_OPSET, onnx_bytes
from gancompress.deploy.quantize import quantize_onnx
from gancompress.deploy.session import Session, open_session
from gancompress.deploy.verify import reference_output, sample_inputs
from gancompress.errors import UserError
from gancompress.metrics.cost import summarize_times

BACKENDS = ("torch", "torch-cl", "torchscript", "compile", "onnx", "onnx-int8", "openvino",
            "openvino-bf16", "openvino-int8", "openvino-int8-bf16")


# TorchScript on NHWC weights and activations (oneDNN's NHWC conv kernels); measured with
# torch-cl vs eager on the deployed compressed ResNet (see TorchSession)
CHANNELS_LAST = True


def parse_backends(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in BACKENDS]
    if unknown or not names:
        raise UserError(f"unknown backend(s) {unknown or text!r}; choose from "
                        f"{', '.join(BACKENDS)}")
    return names


def build_backend(name: str, model: nn.Module, input_size: Sequence[int],
                  threads: int | None = None, device: str = "cpu",
                  calib_images: torch.Tensor | None = None, optimize: bool = True,
                  exporter: str = "dynamo", speed_only: bool = False,
                  channels_last: bool | None = None, search: bool | None = None
                  ) -> tuple[Callable[[], Any], dict[str, Any]]:
    """(call, info): `call()` runs one batch of `input_size` through `model` on backend `name`,
    through one inference session (deploy/session.py); `call.run(images)` runs any batch
    through the same session (quality checks of the reduced precisions). `exporter` "legacy"
    exports faster (the latency model builds dozens of sessions) with the same kernels.
    `speed_only`: int8 calibrates on two random images without a quality check (the latency
    model: the graph, not the values, sets the time). `search` (default: with calibration
    images): int8's accuracy-aware search that keeps sensitive convs float (one quantization
    per conv; False: quantize once, as the benchmark does). `channels_last` (torchscript;
    default CHANNELS_LAST): NHWC activations and weights."""
    if name not in BACKENDS:
        raise UserError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    threads = threads or torch.get_num_threads()
    example = torch.rand(tuple(input_size)) * 2 - 1
    info: dict[str, Any] = {"backend": name, "threads": threads}
    if name == "torch":
        return _calls(open_session("torch", model.eval(), threads, device), example), info
    if device != "cpu" and name.startswith(("onnx", "openvino")):
        raise UserError(f"backend {name} runs on the CPU only")
    if name.startswith("openvino"):
        from gancompress.deploy.openvino import latency_call

        int8 = name.startswith("openvino-int8")
        if speed_only and int8 and calib_images is None:
            calib_images = sample_inputs(input_size, count=2, seed=1)
        call, extra = latency_call(model, input_size, threads=threads, int8=int8,
                                   precision="bf16" if name.endswith("bf16") else "fp32",
                                   calib_images=calib_images, optimize=optimize,
                                   exporter=exporter, score=not speed_only,
                                   search=search)
        return call, {**info, **extra}
    # The sub-pixel rewrite of ConvTranspose2d helps onnxruntime (int8 QLinearConv) but not
    # oneDNN, whose transposed conv is fast (measured with torch.compile: 18.4 ms without it,
    # 21.0 ms with it, 2 threads): the PyTorch paths keep ConvTranspose2d.
    deployed = deploy_module(model, optimize=optimize,
                             transposed=name not in ("torch-cl", "torchscript", "compile"))
    if name == "torch-cl":
        return _calls(open_session("torch", deployed, threads, device, channels_last=True),
                      example), info
    if name == "torchscript":
        cl = CHANNELS_LAST if channels_last is None else channels_last
        info["channels_last"] = cl
        return _calls(open_session("torchscript", deployed, threads, device,
                                   example=(example,), channels_last=cl), example), info
    if name == "compile":
        session = open_session("compile", deployed, threads, device)
        call = _calls(session, example)
        call()  # compiles once, outside the timed runs
        info["compile_s"] = session.compile_s
        return call, info
    data = onnx_bytes(deployed, input_size, DEFAULT_OPSET if exporter == "dynamo" else 17,
                      exporter)
    if name == "onnx-int8":
        synthetic = calib_images is None
        images = sample_inputs(input_size, count=8, seed=1) if synthetic else calib_images
        # synthetic images: the default layout (image conv float) without the sensitivity search
        searching = not synthetic if search is None else search
        data, report = quantize_onnx(data, images, lambda b: reference_output(model, b),
                                     keep_float="auto", target_psnr=30.0 if searching else 0.0,
                                     threads=threads)
        info.update(psnr_db=report["psnr_db"], float_convs=len(report["float_convs"]),
                    calibration="synthetic (speed only)" if synthetic else "images")
    return _calls(open_session("onnx", data, threads), example), info


def _calls(session: Session, example: torch.Tensor) -> Callable[[], Any]:
    """call() on the fixed example; call.run(images) on any batch."""
    x = example.to(getattr(session, "device", "cpu"))

    def call():
        return session(x)
    call.run = lambda images: session(images).float().cpu()
    call.session = session
    return call


def measure_side_by_side(calls: dict[str, Callable[[], Any]], warmup: int = 3, runs: int = 20,
                         device: str = "cpu", block: int = 5, settle: bool = True
                         ) -> dict[str, dict[str, float]]:
    """Median / min / p10 / p90 / spread (ms) of each call, `runs` timed calls each.

    Calls are timed in blocks of `block` consecutive runs, the backends taking turns, and the
    first call of every block is not counted: idle worker threads of the backend that ran just
    before (onnxruntime and OpenMP spin-wait for a while after each run) would otherwise slow it.
    Taking turns spreads any change of machine load over all backends alike. `settle=False`
    (calls that share one thread pool, e.g. several eager PyTorch models) skips that call.
    """
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    for call in calls.values():
        for _ in range(warmup):
            call()
    sync()
    times: dict[str, list[float]] = {name: [] for name in calls}
    block = max(1, min(block, runs))
    while any(len(t) < runs for t in times.values()):
        for name, call in calls.items():
            if settle:
                call()  # not timed
                sync()
            for _ in range(min(block, runs - len(times[name]))):
                start = time.perf_counter()
                call()
                sync()
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: summarize_times(values) for name, values in times.items()}
