"""Deployment: exact rewrites, verified ONNX / TorchScript / int8 exports, generate, profile."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from gancompress.cli import main
from gancompress.deploy import graph
from gancompress.deploy.graph import PhaseConv2d, SubpixelConvTranspose2d, deploy_module
from gancompress.deploy.onnx_export import export_onnx, read_metadata
from gancompress.deploy.runtime import open_model
from gancompress.deploy.torchscript import export_torchscript
from gancompress.errors import UserError
from gancompress.models.checkpoint import save_generator
from gancompress.models.resnet import ResnetGenerator
from helpers import trained_batchnorm

SIZE = (1, 3, 32, 32)


pytestmark = pytest.mark.usefixtures("one_thread")


def _generator(conv: str, norm: str, ngf: int = 4, n_blocks: int = 3) -> ResnetGenerator:
    model = ResnetGenerator(ngf=ngf, n_blocks=n_blocks, conv=conv, norm=norm).eval()
    if norm == "batch":  # non-trivial statistics, so that folding them is actually tested
        trained_batchnorm(model, weight=True, bias=True)
    return model


def _images(folder, count: int = 6, size: int = 40) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        base = rng.integers(0, 256, (5, 5, 3)).astype(np.uint8)
        img = Image.fromarray(base).resize((size, size), Image.BILINEAR)
        img.save(folder / f"img{i}.png")


@pytest.mark.parametrize("cin,cout,k,s,p,op,h", [(8, 4, 3, 2, 1, 1, 9), (5, 3, 4, 2, 1, 0, 7),
                                                (6, 2, 3, 3, 1, 2, 5), (4, 3, 5, 2, 3, 1, 6)])
def test_subpixel_transposed_conv_is_exact(cin, cout, k, s, p, op, h):
    conv = nn.ConvTranspose2d(cin, cout, k, s, p, op)
    x = torch.randn(2, cin, h, h + 1)
    assert torch.allclose(SubpixelConvTranspose2d(conv)(x), conv(x), atol=1e-5)


@pytest.mark.parametrize("cout,k,r,h", [(3, 7, 4, 38), (2, 3, 2, 11), (1, 5, 3, 10)])
def test_output_phase_conv_is_exact(cout, k, r, h):
    conv = nn.Conv2d(6, cout, k)
    x = torch.randn(2, 6, h, h + 3)
    assert torch.allclose(PhaseConv2d(conv, r)(x), conv(x), atol=1e-5)


@pytest.mark.parametrize("conv", ["dense", "separable"])
@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_deploy_module_matches_model(conv, norm):
    model = _generator(conv, norm)
    deployed = deploy_module(model)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(deployed(x), model(x), atol=1e-5)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in deployed.modules())
    notes = " ".join(deployed.deploy_notes)
    assert "output phases" in notes and "sub-pixel" in notes
    if norm == "batch":
        assert "folded" in notes


def test_deploy_module_of_supernet_uses_active_widths():
    from gancompress.models.elastic import using_widths
    from gancompress.models.resnet import decode_config

    model = ResnetGenerator(ngf=8, n_blocks=3, conv="separable").eval()
    widths = decode_config("4_4_8_4_8_4_4_8")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with using_widths(model, widths), torch.no_grad():
        deployed = deploy_module(model)
        expected = model(x)
    assert torch.allclose(deployed(x), expected, atol=1e-5)
    assert deployed.down1.conv.out_channels == 8  # cropped, not the supernet's 16


@pytest.mark.parametrize("conv,norm", [("dense", "instance"), ("dense", "batch"),
                                       ("separable", "instance"), ("separable", "batch")])
def test_onnx_export_legacy_equivalence(tmp_path, conv, norm):
    model = _generator(conv, norm)
    path = tmp_path / "g.onnx"
    meta = export_onnx(model, path, SIZE, exporter="legacy", opset=17)
    assert meta["verify"]["max_abs"] < 1e-4 and meta["opset"] == 17
    runner = open_model(path)
    x = torch.rand(3, 3, 32, 32) * 2 - 1  # batch 3: the batch dimension is dynamic
    with torch.no_grad():
        assert torch.allclose(runner(x), model(x), atol=1e-4)
    stored = read_metadata(path)
    assert stored["input_size"] == list(SIZE) and stored["arch"]["norm"] == norm
    assert stored["config"] == "4_4_4_4_4_4_4_4" and stored["precision"] == "fp32"


def test_onnx_export_dynamo_default(tmp_path):
    model = _generator("separable", "instance")
    path = tmp_path / "g.onnx"
    meta = export_onnx(model, path, SIZE)
    assert meta["exporter"] == "dynamo" and meta["opset"] == 18
    import onnx
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == 18
    assert {n.op_type for n in proto.graph.node} >= {"Conv", "InstanceNormalization", "Pad"}
    assert "ConvTranspose" not in {n.op_type for n in proto.graph.node}  # rewritten
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(open_model(path)(x), model(x), atol=1e-4)


def test_torchscript_export(tmp_path):
    model = _generator("separable", "batch")
    path = tmp_path / "g.pt"
    export_torchscript(model, path, SIZE)
    runner = open_model(path)
    assert runner.kind == "torchscript" and runner.input_size == SIZE
    assert runner.metadata["arch"]["conv"] == "separable"
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(runner(x), model(x), atol=1e-4)


def test_export_that_changes_output_fails_without_file(tmp_path, monkeypatch):
    model = _generator("dense", "instance")
    original = graph.deploy_module

    def broken(m, **kwargs):
        deployed = original(m, **kwargs)
        with torch.no_grad():
            deployed.head.conv.bias.add_(0.5)
        return deployed

    monkeypatch.setattr("gancompress.deploy.onnx_export.deploy_module", broken)
    monkeypatch.setattr("gancompress.deploy.torchscript.deploy_module", broken)
    for export, name in ((export_onnx, "g.onnx"), (export_torchscript, "g.pt")):
        with pytest.raises(UserError, match="changes the model's output"):
            export(model, tmp_path / name, SIZE)
        assert not (tmp_path / name).exists()
    assert list(tmp_path.iterdir()) == []  # no temporary files left either


def test_export_cli_int8_and_generate(tmp_path, capsys):
    model = _generator("separable", "instance", ngf=8)
    ckpt = tmp_path / "g.pth"
    save_generator(model, ckpt)
    calib, inputs = tmp_path / "calib", tmp_path / "inputs"
    _images(calib, 8)
    _images(inputs, 2, size=48)
    out = tmp_path / "g.int8.onnx"
    assert main(["export", str(ckpt), "--out", str(out), "--int8", "--calib", str(calib),
                 "--size", "32", "32", "--keep-float", "none"]) == 0
    printed = capsys.readouterr().out
    assert "int8" in printed and "PSNR vs fp32" in printed
    meta = read_metadata(out)
    assert meta["precision"] == "int8" and meta["quantization"]["calibration_images"] == 6
    assert meta["quantization"]["psnr_db"] > 20  # loose floor: random weights, 6 images
    import onnx
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops

    # generate with the checkpoint and with the int8 file: same images, close outputs
    for model_file, folder in ((ckpt, "from_ckpt"), (out, "from_int8")):
        assert main(["generate", str(model_file), "--input", str(inputs), "--out",
                     str(tmp_path / folder), "--size", "32", "32"]) == 0
    a = np.asarray(Image.open(tmp_path / "from_ckpt" / "img0.png"), dtype=float)
    b = np.asarray(Image.open(tmp_path / "from_int8" / "img0.png"), dtype=float)
    assert a.shape == (32, 32, 3) and np.abs(a - b).mean() < 8
    # existing outputs are not replaced silently
    assert main(["generate", str(out), "--input", str(inputs), "--out",
                 str(tmp_path / "from_int8")]) == 2
    assert "exist already" in capsys.readouterr().err


def test_generate_uses_recorded_size(tmp_path):
    model = _generator("dense", "instance")
    path = tmp_path / "g.pt"
    export_torchscript(model, path, SIZE)
    _images(tmp_path / "in", 1, size=50)
    assert main(["generate", str(path), "--input", str(tmp_path / "in" / "img0.png"),
                 "--out", str(tmp_path / "out")]) == 0
    from gancompress.imaging import read_image
    x = read_image(tmp_path / "in" / "img0.png", 3, (32, 32))
    with torch.no_grad():
        expected = ((model(x[None])[0] + 1) / 2 * 255).clamp(0, 255).to(torch.uint8)
    got = torch.from_numpy(np.array(Image.open(tmp_path / "out" / "img0.png"))).permute(2, 0, 1)
    assert got.shape == (3, 32, 32) and (got.int() - expected.int()).abs().max() <= 1


def test_int8_sensitivity_keeps_worst_convs_float(tmp_path):
    from gancompress.deploy.onnx_export import onnx_bytes, reference_output, sample_inputs
    from gancompress.deploy.quantize import quantize_onnx

    model = _generator("dense", "instance", n_blocks=3)
    data = onnx_bytes(deploy_module(model), SIZE, 17, "legacy")
    calib = sample_inputs(SIZE, count=4, seed=3)
    _, report = quantize_onnx(data, calib, lambda b: reference_output(model, b),
                              keep_float="auto", target_psnr=200.0, max_float=0.2)
    assert report["convs"] == 12  # 3 + 2 x 3 + 2 + head
    # the stem (3 input channels) is float from the start; every other conv is scored
    assert len(report["sensitivity_db"]) == 11
    assert 2 <= len(report["float_convs"]) <= int(0.2 * 12)
    assert report["psnr_db"] > report["psnr_start"]
    worst = next(iter(report["sensitivity_db"]))
    assert report["float_convs"][1] == worst and report["float_convs"][0] not in \
        report["sensitivity_db"]


@pytest.mark.parametrize("argv,message", [
    (["--format", "tflite"], "unsupported export target 'tflite'"),
    (["--opset", "9", "--exporter", "legacy"], "opset 9 is not supported"),
    (["--opset", "17"], "legacy exporter writes opsets below 18"),
    (["--int8", "--calib", "EMPTY"], "holds no images"),
    (["--int8"], "needs calibration images"),
    (["--format", "torchscript", "--int8", "--calib", "EMPTY"], "ONNX and OpenVINO only"),
])
def test_export_cli_bad_input(tmp_path, capsys, argv, message):
    ckpt = tmp_path / "g.pth"
    save_generator(_generator("dense", "instance"), ckpt)
    (tmp_path / "empty").mkdir()
    argv = [str(tmp_path / "empty") if a == "EMPTY" else a for a in argv]
    code = main(["export", str(ckpt), "--out", str(tmp_path / "g.onnx"), "--size", "32", "32",
                 *argv])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "g.onnx").exists()


def test_profile_backends_side_by_side(tmp_path, capsys):
    ckpt = tmp_path / "g.pth"
    save_generator(_generator("separable", "instance"), ckpt)
    assert main(["profile", str(ckpt), "--size", "32", "32", "--latency", "--runs", "3",
                 "--warmup", "1", "--backends", "torch,onnx", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("params", "macs", "macs_true", "latency_ms"):
        assert key in result
    assert set(result["backends"]) == {"torch", "onnx"}
    assert result["latency_ms"] == result["backends"]["torch"]["median_ms"] > 0
    assert result["backends"]["onnx"]["runs"] == 3
    assert main(["profile", str(ckpt), "--latency", "--backends", "tensorrt"]) == 2
    assert "unknown backend" in capsys.readouterr().err


def test_calibration_from_dataset_folder_and_int8_floor(tmp_path):
    from gancompress.deploy.quantize import calibration_images

    _images(tmp_path / "data" / "trainA", 5, size=36)
    _images(tmp_path / "data" / "trainB", 5, size=36)
    images = calibration_images(tmp_path / "data", SIZE, limit=4)
    assert images.shape == (4, 3, 32, 32) and images.min() >= -1 and images.max() <= 1
    model = _generator("dense", "instance")
    with pytest.raises(UserError, match="loses too much quality"):
        export_onnx(model, tmp_path / "g.onnx", SIZE, exporter="legacy", opset=17, int8=True,
                    calib_images=images, keep_float="none", min_psnr=200.0)
    assert not (tmp_path / "g.onnx").exists()
