"""Deployment: verified ONNX / int8 / TorchScript export, runtimes, latency measurement and model.

    graph.py        deploy_module(model): plain layers, folded BatchNorm, exact CPU rewrites
    onnx_export.py  export_onnx(model, path, input_size, ...): fp32 or int8, verified, metadata
    quantize.py     int8 static quantization (onnxruntime QDQ), calibration images, sensitivity
    torchscript.py  export_torchscript(model, path, input_size, ...): traced + frozen, verified
    runtime.py      open_model(path) -> runner for checkpoints, .onnx and TorchScript files
    backends.py     latency backends (torch, torchscript, compile, onnx, onnx-int8), side by side
    latency.py      LatencyModel: predicted latency of search-space configs (latency budgets)

Where the time goes (compressed ResNet `16_16_24_16_32_64_16_24`, 256x256, 2-core AVX-512 CPU,
onnxruntime profiler): in a plain export, the 7x7 head conv with 3 outputs took ~50% of the
onnxruntime time (its NCHWc kernel pads 3 outputs to 16 channels; im2col without NCHWc is as
slow), the two ConvTranspose ~15%, InstanceNorm ~15%, NCHWc reorders around every InstanceNorm /
Pad ~15%, reflection pads ~8%. The output-phase rewrite of the head (graph.py) cut it ~5x; int8
QLinearConv halves the conv time but adds Q/DQ and NHWC transposes around the float
InstanceNorms. bench/bench_deploy.py prints the side-by-side table.
"""
from gancompress.deploy.graph import deploy_module, model_info, psnr
from gancompress.deploy.onnx_export import export_onnx, read_metadata
from gancompress.deploy.runtime import open_model
from gancompress.deploy.torchscript import export_torchscript

__all__ = ["deploy_module", "model_info", "psnr", "export_onnx", "read_metadata", "open_model",
           "export_torchscript"]
