"""OpenVINO deployment: IR export (fp32 / int8) verified against PyTorch, generate and profile
with .xml files, the latency-model backend, and the failures (missing package, bad calibration
folder, verification failure: nothing written)."""
from __future__ import annotations

import builtins
import json

import numpy as np
import pytest
import torch
from PIL import Image

from gancompress.cli import main
from gancompress.deploy import openvino as ovx  # the extra is installed by scripts/setup.sh
from gancompress.deploy.onnx_export import sample_inputs
from gancompress.errors import UserError
from gancompress.models.checkpoint import save_generator
from gancompress.models.resnet import ResnetGenerator, decode_config

SIZE = (1, 3, 32, 32)
pytestmark = pytest.mark.usefixtures("one_thread")


def _generator(ngf: int = 8, seed: int = 0) -> ResnetGenerator:
    torch.manual_seed(seed)
    return ResnetGenerator(ngf=ngf, n_blocks=3, conv="separable").eval()


def _images(folder, count: int = 8, size: int = 40) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        base = rng.integers(0, 256, (5, 5, 3)).astype(np.uint8)
        Image.fromarray(base).resize((size, size), Image.BILINEAR).save(folder / f"img{i}.png")


def test_fp32_export_round_trip(tmp_path):
    model = _generator()
    path = tmp_path / "g.xml"
    meta = ovx.export_openvino(model, path, SIZE)
    assert path.is_file() and (tmp_path / "g.bin").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.bin", "g.xml"]  # no temp files
    assert meta["verify"]["max_abs"] < 1e-4 and meta["format"] == "openvino"
    runner = ovx.OpenVinoRunner(path)
    assert runner.metadata["config"] == meta["config"] and runner.input_size == SIZE
    assert runner.metadata["inference_precision"] == "fp32"
    x = sample_inputs(SIZE, count=3, seed=5)  # batch 3: the IR keeps a dynamic batch
    with torch.no_grad():
        expected = model(x)
    assert (runner(x) - expected).abs().max() < 1e-4
    with pytest.raises(UserError, match="exported for 32x32"):
        runner(torch.zeros(1, 3, 40, 40))
    with pytest.raises(UserError, match="exists"):
        ovx.export_openvino(model, path, SIZE)


def test_int8_export_and_generate_cli(tmp_path, capsys):
    model = _generator()
    ckpt = tmp_path / "g.pth"
    save_generator(model, ckpt)
    calib, inputs = tmp_path / "calib", tmp_path / "inputs"
    _images(calib, 8)
    _images(inputs, 2, size=48)
    out = tmp_path / "g.int8.xml"
    assert main(["export", str(ckpt), "--out", str(out), "--int8", "--calib", str(calib),
                 "--size", "32", "32", "--keep-float", "none"]) == 0
    printed = capsys.readouterr().out
    assert "PSNR vs fp32" in printed and "g.int8.bin" in printed
    meta = ovx.read_metadata(out)
    assert meta["precision"] == "int8" and meta["quantization"]["calibration_images"] == 6
    assert meta["quantization"]["psnr_db"] > 20  # loose floor: random weights, 6 images
    ops = {op.get_type_name() for op in ovx.core().read_model(str(out)).get_ordered_ops()}
    assert "FakeQuantize" in ops  # NNCF's quantized IR
    # generate with the checkpoint and with the int8 IR: same images, close outputs
    for model_file, folder in ((ckpt, "from_ckpt"), (out, "from_int8")):
        assert main(["generate", str(model_file), "--input", str(inputs), "--out",
                     str(tmp_path / folder), "--size", "32", "32"]) == 0
    assert "openvino (int8" in capsys.readouterr().out
    a = np.asarray(Image.open(tmp_path / "from_ckpt" / "img0.png"), dtype=float)
    b = np.asarray(Image.open(tmp_path / "from_int8" / "img0.png"), dtype=float)
    assert b.shape == a.shape == (32, 32, 3) and np.abs(a - b).mean() < 8


def test_generate_with_fp32_xml_matches_checkpoint(tmp_path):
    model = _generator()
    ckpt, xml = tmp_path / "g.pth", tmp_path / "g.xml"
    save_generator(model, ckpt)
    assert main(["export", str(ckpt), "--out", str(xml), "--size", "32", "32"]) == 0
    _images(tmp_path / "in", 2, size=32)
    for model_file, folder in ((ckpt, "a"), (xml, "b")):
        assert main(["generate", str(model_file), "--input", str(tmp_path / "in"), "--out",
                     str(tmp_path / folder), "--size", "32", "32"]) == 0
    a = np.asarray(Image.open(tmp_path / "a" / "img1.png"), dtype=int)
    b = np.asarray(Image.open(tmp_path / "b" / "img1.png"), dtype=int)
    assert np.abs(a - b).max() <= 1  # fp32: at most one level of rounding apart


def test_sensitivity_search_order_and_limits():
    from gancompress.deploy.quantize import sensitivity_search

    # a fake quantizer: each float layer adds its own gain to a 20 dB start
    gain = {"a": 1.0, "b": 6.0, "c": 3.0, "d": -1.0}
    calls = []

    def build(exclude):
        calls.append(list(exclude))
        return list(exclude)

    def score(model):
        return 20.0 + sum(gain[n] for n in model)
    model, quality, kept, ranked = sensitivity_search(build, score, list(gain), [], [], 20.0,
                                                      target_psnr=28.0, limit=3)
    assert list(ranked) == ["b", "c", "a", "d"] and kept == ["b", "c"] and quality == 29.0
    assert model == ["b", "c"]
    _, quality, kept, _ = sensitivity_search(build, score, list(gain), [], [], 20.0,
                                             target_psnr=99.0, limit=2)
    assert kept == ["b", "c"] and quality == 29.0  # stopped by the limit
    _, _, kept, _ = sensitivity_search(build, score, list(gain), [], [], 20.0,
                                       target_psnr=99.0, limit=9)
    assert kept == ["b", "c", "a"]  # "d" gains nothing: never kept float


@pytest.mark.slow  # ~10 NNCF quantizations (~1-2 s each)
def test_sensitivity_fallback_keeps_layers_float():
    torch.manual_seed(3)
    model = ResnetGenerator(ngf=4, n_blocks=3, conv="dense").eval()  # 9 convs
    calib = sample_inputs(SIZE, count=8, seed=2)
    deployed = ovx.deploy_module(model)
    from gancompress.deploy.onnx_export import DEFAULT_OPSET, onnx_bytes, reference_output

    fp32 = ovx.from_onnx(onnx_bytes(deployed, SIZE, DEFAULT_OPSET))
    quantized, report = ovx.quantize_ov(fp32, calib, lambda b: reference_output(model, b),
                                        target_psnr=200.0, max_float=0.25)
    # an unreachable target: the search ranks every conv and keeps the most sensitive float
    convs = report["convs"]
    assert len(report["sensitivity_db"]) == convs
    assert 1 <= len(report["float_convs"]) <= int(0.25 * convs)
    assert report["psnr_db"] >= report["psnr_start"]
    assert report["float_convs"][0] == next(iter(report["sensitivity_db"]))
    # the float convs really are float: an fp32 weight constant, where the quantized convs read
    # int8 weights through Convert -> Multiply (dequantization)
    ops = {op.get_friendly_name(): op for op in quantized.get_ordered_ops()}

    def weight_type(name):
        return ops[name].input_value(1).get_node().get_type_name()
    assert all(weight_type(n) == "Constant" for n in report["float_convs"])
    others = [n for n in report["sensitivity_db"] if n not in report["float_convs"]]
    assert others and all(weight_type(n) == "Multiply" for n in others)


def test_verification_failure_writes_nothing(tmp_path, monkeypatch):
    model = _generator()
    real = ovx.run_model

    def broken(ov_model, images, threads=None, precision="fp32"):
        return real(ov_model, images, threads, precision) + 0.1
    monkeypatch.setattr(ovx, "run_model", broken)
    with pytest.raises(UserError, match="changes the model's output"):
        ovx.export_openvino(model, tmp_path / "g.xml", SIZE)
    assert list(tmp_path.iterdir()) == []


def test_int8_floor_refused_and_bad_calib(tmp_path, capsys):
    model = _generator()
    calib = sample_inputs(SIZE, count=4, seed=2)
    with pytest.raises(UserError, match="loses too much quality"):
        ovx.export_openvino(model, tmp_path / "g.xml", SIZE, int8=True, calib_images=calib,
                            keep_float="none", min_psnr=200.0)
    assert list(tmp_path.iterdir()) == []
    ckpt = tmp_path / "g.pth"
    save_generator(model, ckpt)
    (tmp_path / "empty").mkdir()
    for extra, message in (([], "needs calibration images"),
                           (["--calib", str(tmp_path / "empty")], "holds no images"),
                           (["--calib", str(tmp_path / "nope")], "does not exist")):
        assert main(["export", str(ckpt), "--out", str(tmp_path / "o.xml"), "--int8",
                     "--size", "32", "32", *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert main(["export", str(ckpt), "--out", str(tmp_path / "o.onnx"), "--format",
                 "openvino", "--size", "32", "32"]) == 2
    assert ".xml" in capsys.readouterr().err
    assert not any(p.suffix in (".xml", ".bin") for p in tmp_path.iterdir())


def test_missing_package_message(tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name.split(".")[0] in ("openvino", "nncf"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_openvino)
    ovx.core.cache_clear()
    ckpt = tmp_path / "g.pth"
    save_generator(_generator(), ckpt)
    try:
        assert main(["export", str(ckpt), "--out", str(tmp_path / "g.xml")]) == 2
        assert "pip install 'gancompress[openvino]'" in capsys.readouterr().err
        assert main(["profile", str(ckpt), "--latency", "--backends", "openvino"]) == 2
        assert "gancompress[openvino]" in capsys.readouterr().err
    finally:
        ovx.core.cache_clear()
    assert list(tmp_path.iterdir()) == [ckpt]


def test_profile_backends_openvino(tmp_path, capsys):
    ckpt = tmp_path / "g.pth"
    save_generator(_generator(ngf=4), ckpt)
    assert main(["profile", str(ckpt), "--size", "32", "32", "--latency", "--runs", "3",
                 "--warmup", "1", "--backends", "torch,openvino,openvino-int8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["backends"]) == {"torch", "openvino", "openvino-int8"}
    assert result["backends"]["openvino"]["runs"] == 3
    assert result["backends"]["openvino-int8"]["calibration"] == "synthetic (speed only)"


def test_profile_of_deployed_file(tmp_path, capsys):
    model = _generator(ngf=4)
    path = tmp_path / "g.xml"
    ovx.export_openvino(model, path, SIZE)
    assert main(["profile", str(path), "--latency", "--runs", "3", "--warmup", "1",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    from gancompress.metrics.cost import count_macs
    assert result["file"] == "openvino" and result["input_size"] == list(SIZE)
    assert result["macs_true"] == count_macs(model, SIZE, "true")
    assert result["latency_ms"] > 0 and result["backends"]["openvino"]["runs"] == 3


def test_latency_model_openvino_backend(tmp_path):
    from gancompress.compress.latency import LatencyModel
    from gancompress.compress.space import SearchSpace

    model = ResnetGenerator(ngf=4, n_blocks=3, conv="separable").eval()
    space = SearchSpace("two", ((4, 2),) + ((4,),) * 7, decode_config)
    latency = LatencyModel.load_or_build(model, space, SIZE, backend="openvino",
                                         cache_dir=tmp_path, threads=1, runs=3)
    assert latency.fit["backend"] == "openvino" and latency.predict(space.largest()) > 0
    assert list(tmp_path.glob("latency-openvino-cpu-t1-32x32-*.json"))


def test_latency_budget_backend_from_config(monkeypatch):
    """compress.latency_backend=openvino: a latency budget is predicted by an OpenVINO-measured
    latency model (the config choice reaches the latency model; no timing here)."""
    from gancompress.compress import costs
    from gancompress.compress.budget import parse_budget
    from gancompress.compress.latency import LatencyModel
    from gancompress.config import Config, apply_overrides, validate

    seen = {}

    def fake_build(cls, model, space, input_size=None, device="cpu", backend="torch", **kw):
        seen["backend"] = backend
        return "latency model"
    monkeypatch.setattr(LatencyModel, "load_or_build", classmethod(fake_build))
    cfg = apply_overrides(Config(), ["compress.latency_backend=openvino"])
    model = ResnetGenerator(ngf=8, conv="separable").eval()
    from gancompress.compress.space import SearchSpace
    space = SearchSpace.uniform(model, 8, fractions=(1, 0.5))
    cost = costs.make_cost(cfg, model, space, parse_budget("30ms"), "cpu", None)
    assert seen["backend"] == "openvino" and cost.latency == "latency model"
    with pytest.raises(UserError, match="latency_backend"):
        validate(apply_overrides(Config(), ["compress.latency_backend=tensorrt"]))
