"""Deployment: verified ONNX / int8 / TorchScript export, runtimes, latency measurement and model.

    session.py      open_session(kind, model_or_file, threads, device, precision): the one way a
                    model runs on a backend (torch, torchscript, compile, onnx, openvino)
    verify.py       what an export is checked on and how (reference_output, compare, tolerance)
    graph.py        deploy_module(model): plain layers, folded norms (BatchNorm, fold_into
                    layers), zero pads fused into conv padding, exact CPU rewrites
    onnx_export.py  export_onnx(model, path, input_size, ...): fp32 or int8, verified, metadata
    openvino.py     export_openvino(model, path.xml, ...): OpenVINO IR from the same ONNX graph,
                    fp32 / bf16 / int8 (NNCF), verified, metadata in rt_info
                    (optional extra: pip install 'gancompress[openvino]')
    quantize.py     int8 static quantization (onnxruntime QDQ), calibration images, sensitivity
    torchscript.py  export_torchscript(model, path, input_size, ...): traced + frozen, verified
    runtime.py      open_model(path) -> runner for checkpoints, .onnx, .xml (OpenVinoRunner) and
                    TorchScript files, each on a session
    backends.py     latency backends (torch, torch-cl, torchscript, compile, onnx, onnx-int8,
                    openvino, openvino-bf16, openvino-int8, openvino-int8-bf16), side by side
    (the latency model of search-space configs, per runtime and precision, lives in
    compress/latency.py; `compress --runtime NAME` picks the runtime)

Within deploy/ the modules import one way only: session, verify, graph -> quantize ->
onnx_export -> torchscript -> runtime -> openvino -> backends (tests/contract/test_layers.py keeps it so).

Measured (bench/bench_deploy.py, compressed ResNet `16_16_24_16_32_64_16_24`, 256x256, batch 1,
2-core AVX-512 VNNI EPYC, torch 2.13, onnxruntime 1.32, side by side in one run; medians in ms,
speed-up vs the compressed model in eager PyTorch / vs the teacher in eager PyTorch):

    2 threads   teacher eager 290 | compressed: eager 39.7 (1.0x / 7.3x), TorchScript 33.0,
                torch.compile 18.4 (2.16x / 15.7x), onnxruntime fp32 plain export 30.7,
                fp32 with the rewrites 24.8 (1.60x / 11.7x), int8 22.6 (1.76x / 12.8x)
    1 thread    teacher eager 520 | compressed: eager 78.3, torch.compile 38.4 (2.04x / 13.5x),
                onnxruntime fp32 35.1 (2.23x / 14.8x), int8 24.5 (3.20x / 21.2x)

Where the time goes: the teacher (49.6G true MACs) runs at ~175 GMAC/s, about the 2-core FP32
FMA peak; the compressed model (1.96G true MACs) would need the same efficiency to be 21.5x
faster. It cannot: its 41 InstanceNorms (two passes each), 20 reflection pads and 18 depthwise
convs are memory-bound. In a plain onnxruntime export the 7x7 head conv with 3 outputs alone took
~50% of the time (NCHWc pads 3 outputs to 16 channels); the output-phase rewrite (graph.py) cut
it ~5x. In onnxruntime int8 at 2 threads only QLinearConv is multi-threaded (4.0 ms);
InstanceNorm (5.1 ms), the NHWC Transposes around QLinearConv (6.4 ms), Pad (2.2 ms),
Quantize/Dequantize (3.6 ms) and DepthToSpace (1.9 ms) run on one thread, so int8 gains 3.2x
over eager on one thread but only 1.8x on two. torch.compile (inductor) fuses norm + ReLU + pad
into parallel loops: the fastest path on two threads, but a compiled function, not a file; ONNX
int8 is the fastest file.
"""
from gancompress.deploy.graph import deploy_module, model_info
from gancompress.deploy.onnx_export import export_onnx, read_metadata
from gancompress.deploy.runtime import open_model
from gancompress.deploy.session import open_session
from gancompress.deploy.torchscript import export_torchscript
from gancompress.metrics.quality import psnr

__all__ = ["deploy_module", "model_info", "psnr", "export_onnx", "read_metadata", "open_model",
           "open_session", "export_torchscript"]
