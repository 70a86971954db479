"""The latency model per deployment runtime and precision (compress --runtime), with a fake
timer: deterministic fits, runtime-specific caching, held-out error, the --runtime flag and its
UserErrors, and the runtime recorded in exported students."""
from __future__ import annotations

import json
import random
import sys

import numpy as np
import pytest

from gancompress.compress.budget import LatencyCost
from gancompress.compress.latency import (
    LatencyModel,
    check_runtime,
    runtime_backend,
    runtime_name,
    runtime_precision,
)
from gancompress.compress.space import SearchSpace
from gancompress.deploy.graph import latency_target, model_info
from gancompress.errors import UserError
from gancompress.models.resnet import ResnetGenerator

SIZE = (1, 3, 32, 32)
# per runtime: (overhead ms, ms per channel, ms per channel product) of a fake device
DEVICES = {"onnx": (1.0, 0.05, 0.002), "openvino-int8": (0.4, 0.01, 0.0004),
           "openvino": (0.6, 0.02, 0.001), "openvino-bf16": (0.5, 0.015, 0.0006)}


@pytest.fixture(scope="module")
def setup():
    model = ResnetGenerator(ngf=8, n_blocks=3, conv="separable").eval()
    space = SearchSpace.uniform(model, 8, fractions=(1, 0.75, 0.5))
    return model, space


def fake_timer(space, runtime, calls=None, noise=0.0):
    """configs -> ms of a device whose latency is a known function of the widths."""
    a, b, c = DEVICES[runtime]
    rng = np.random.default_rng(1)

    def timer(configs):
        if calls is not None:
            calls.append(len(configs))
        out = []
        for config in configs:
            w = space.widths(config)
            ms = a + b * sum(w.values()) + c * w["trunk"] * w["res1"]
            out.append(ms * (1 + noise * rng.uniform(-1, 1)))
        return out
    timer.__name__ = f"fake_{runtime}"
    return timer


def true_ms(space, runtime, config):
    return fake_timer(space, runtime)([config])[0]


def test_fit_per_runtime_is_deterministic_and_cached_per_runtime(setup, tmp_path):
    model, space = setup
    fits = {}
    for runtime in ("onnx", "openvino-int8"):
        calls: list[int] = []
        latency = LatencyModel.load_or_build(model, space, SIZE, backend=runtime,
                                             cache_dir=tmp_path, threads=1,
                                             timer=fake_timer(space, runtime, calls))
        assert calls and latency.fit["runtime"] == runtime
        assert latency.fit["precision"] == runtime_precision(runtime)
        assert latency.fit["holdout_mape"] < 5.0, latency.fit["holdout"]
        fits[runtime] = latency
    files = sorted(p.name for p in tmp_path.glob("latency-*.json"))
    assert len(files) == 2 and files[0].startswith("latency-onnx-cpu-t1-32x32-")
    assert files[1].startswith("latency-openvino-int8-cpu-t1-32x32-")
    config = space.sample(random.Random(4))
    for runtime, latency in fits.items():
        assert latency.predict(config) == pytest.approx(true_ms(space, runtime, config), rel=0.1)
    # each runtime's ms are its own: int8 predicted well below onnxruntime on the fake devices
    assert fits["openvino-int8"].predict(config) < 0.5 * fits["onnx"].predict(config)
    # the cache is per runtime and precision: a reload measures nothing, the old spelling
    # (onnxruntime) reads the onnx fit
    again = LatencyModel.load_or_build(model, space, SIZE, backend="onnxruntime",
                                       cache_dir=tmp_path, threads=1,
                                       timer=_failing("fake_onnx"))
    assert again.predict(config) == pytest.approx(fits["onnx"].predict(config))
    assert again.fit["backend"] == "onnx" and again.runtime == "onnx"


def test_precision_is_part_of_the_cache_key(setup, tmp_path):
    model, space = setup
    fp32 = LatencyModel.load_or_build(model, space, SIZE, backend="openvino", cache_dir=tmp_path,
                                      threads=1, timer=fake_timer(space, "openvino"))
    # the same timer name on bf16 must not read the fp32 fit
    timer = fake_timer(space, "openvino-bf16")
    timer.__name__ = "fake_openvino"
    bf16 = LatencyModel.load_or_build(model, space, SIZE, backend="openvino-bf16",
                                      cache_dir=tmp_path, threads=1, timer=timer)
    assert fp32.fit["key"] != bf16.fit["key"] and len(list(tmp_path.glob("*.json"))) == 2
    assert (fp32.fit["precision"], bf16.fit["precision"]) == ("fp32", "bf16")


def test_held_out_error_is_reported(setup, tmp_path):
    model, space = setup
    latency = LatencyModel.load_or_build(model, space, SIZE, backend="openvino-int8",
                                         cache_dir=tmp_path, threads=1,
                                         timer=fake_timer(space, "openvino-int8", noise=0.2))
    held = latency.fit["holdout_mape"]
    assert len(latency.fit["holdout"]) >= 4 and 0 < held < 30
    text = latency.describe()
    assert "openvino-int8 (int8)" in text and f"{held:.1f}% on" in text and "held-out" in text
    summary = latency.summary()
    assert summary["runtime"] == "openvino-int8" and summary["holdout_mape"] == held
    # the budget's cost carries runtime, precision and error into best.json (cost_info)
    cost = LatencyCost(model, space, SIZE, backend="openvino-int8", fit=dict(latency.fit))
    assert cost.info["runtime"] == "openvino-int8" and cost.info["precision"] == "int8"
    assert cost.info["holdout_mape"] == held
    assert cost(space.smallest()) == pytest.approx(latency.predict(space.smallest()))


def _failing(name):
    def timer(configs):
        raise AssertionError("measured again instead of reading the cache")
    timer.__name__ = name
    return timer


def test_runtime_names_and_their_user_errors(monkeypatch):
    from gancompress.deploy import session

    assert runtime_name("onnxruntime") == "onnx" and runtime_name("OpenVINO-INT8") == \
        "openvino-int8"
    assert runtime_backend("onnxruntime") == "onnx" and runtime_precision("openvino-bf16") == \
        "bf16"
    with pytest.raises(UserError, match="unknown latency runtime 'tensorrt'"):
        runtime_name("tensorrt")
    with pytest.raises(UserError, match="measures on the CPU"):
        check_runtime("onnx", "cuda")
    monkeypatch.setattr(session, "supports_bf16", lambda: False)
    monkeypatch.setattr(session, "supports_int8", lambda: False)
    with pytest.raises(UserError, match="no native bf16.*use --runtime openvino"):
        check_runtime("openvino-bf16")
    with pytest.raises(UserError, match="no int8 dot-product units.*use --runtime openvino"):
        check_runtime("openvino-int8")
    monkeypatch.setitem(sys.modules, "nncf", None)
    monkeypatch.setattr(session, "supports_int8", lambda: True)
    with pytest.raises(UserError, match="needs the nncf package.*pip install"):
        check_runtime("openvino-int8")
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(UserError, match="needs the openvino package.*pip install"):
        check_runtime("openvino")
    assert check_runtime("torch") == "torch" and check_runtime("onnxruntime") == "onnx"


def test_runtime_flag_sets_the_config_key(tmp_path, capsys, monkeypatch):
    from helpers import make_pairs

    from gancompress.cli import main
    from gancompress.deploy import session
    from gancompress.models import build_generator
    from gancompress.models.checkpoint import save_generator

    data = make_pairs(tmp_path / "data")
    teacher = tmp_path / "g.pth"
    save_generator(build_generator("resnet", ngf=8, n_blocks=3), teacher,
                   meta={"config": {"data": {"crop_size": 32, "load_size": 32}}})
    base = ["compress", "--teacher", str(teacher), "--data", str(data), "--budget", "1/3",
            "--out", str(tmp_path / "c"), "--dry-run", "compress.space=8,4",
            "compress.held_out=4"]
    for given, expected in (("onnx", "onnx"), ("onnxruntime", "onnx"), ("torch", "torch")):
        assert main([*base, "--runtime", given]) == 0
        out = capsys.readouterr().out
        cfg = json.loads("\n".join(x for x in out.splitlines() if not x.startswith("#")))
        assert cfg["compress"]["latency_backend"] == expected
    assert main([*base, "--runtime", "tensorrt"]) == 2
    assert "unknown latency runtime" in capsys.readouterr().err
    assert main([*base, "--runtime", "onnx", "compress.latency_backend=openvino"]) == 2
    assert "disagree" in capsys.readouterr().err
    monkeypatch.setattr(session, "supports_bf16", lambda: False)
    assert main([*base, "--runtime", "openvino-bf16"]) == 2
    assert "no native bf16" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_exported_students_record_runtime_and_precision():
    model = ResnetGenerator(ngf=4, n_blocks=3).eval()
    model.meta = {"config": {"compress": {"budget": "8ms", "latency_backend": "openvino-int8"}}}
    info = model_info(model, SIZE)
    assert info["latency_budget"] == {"budget": "8ms", "runtime": "openvino-int8",
                                      "precision": "int8"}
    assert latency_target({"config": {"compress": {"budget": "1/20",
                                                   "latency_backend": "onnx"}}}) is None
    assert latency_target({"config": {"compress": {"budget": "30ms",
                                                   "latency_backend": "onnxruntime"}}}) == \
        {"budget": "30ms", "runtime": "onnx", "precision": "fp32"}
    assert latency_target({}) is None and latency_target(None) is None
    # compact.pth of a compress run: the search's cost_info, or the budget + train_config
    compact_meta = {"budget": "0.15ms", "config": "4_8_4_4_4_8_4_4",
                    "search": {"cost_unit": "ms", "cost_info": {
                        "runtime": "openvino-bf16", "precision": "bf16", "holdout_mape": 4.5}},
                    "train_config": {"compress": {"latency_backend": "openvino-bf16"}}}
    assert latency_target(compact_meta) == {"budget": "0.15ms", "runtime": "openvino-bf16",
                                            "precision": "bf16",
                                            "latency_model_holdout_error_pct": 4.5}
    del compact_meta["search"]
    assert latency_target(compact_meta)["runtime"] == "openvino-bf16"
    compact_meta["budget"] = "1/20"
    assert latency_target(compact_meta) is None


def test_int8_calibrates_on_the_runs_data_without_calib(tmp_path, capsys):
    from helpers import make_pairs

    from gancompress.cli import main
    from gancompress.deploy.onnx_export import read_metadata
    from gancompress.deploy.quantize import run_calibration_folder
    from gancompress.models.checkpoint import save_generator

    data = make_pairs(tmp_path / "data")
    assert run_calibration_folder({"train_config": {"data": {"root": str(data)}}}) == str(data)
    assert run_calibration_folder({"config": {"data": {"root": str(tmp_path / "gone")}}}) is None
    assert run_calibration_folder({"config": "4_4_4_4_4_4_4_4"}) is None
    model = ResnetGenerator(ngf=4, n_blocks=3)
    ckpt, out = tmp_path / "g.pth", tmp_path / "g.onnx"
    save_generator(model, ckpt, meta={"train_config": {"data": {"root": str(data)}}})
    assert main(["export", str(ckpt), "--out", str(out), "--int8", "--keep-float", "none",
                 "--min-psnr", "0", "--size", "32", "32"]) == 0
    assert f"int8 calibration on the run's training data: {data}" in capsys.readouterr().err
    assert read_metadata(out)["precision"] == "int8"
    save_generator(model, ckpt, meta={})
    assert main(["export", str(ckpt), "--out", str(tmp_path / "h.onnx"), "--int8",
                 "--size", "32", "32"]) == 2
    assert "needs calibration images" in capsys.readouterr().err


def test_latency_budget_size_is_the_deployment_size_when_given():
    """compress.latency_size: a latency budget measured at the deployment size, not the
    training crop (a 64 px demo teacher runs in under a millisecond: an 8ms budget needs the
    size it will be deployed at)."""
    from gancompress.compress.costs import latency_input_size
    from gancompress.config import apply_overrides, preset

    cfg = preset("demo")
    assert latency_input_size(cfg, (1, 3, 64, 64)) == (1, 3, 64, 64)
    cfg = apply_overrides(cfg, ["compress.latency_size=256x512"])
    assert latency_input_size(cfg, (1, 3, 64, 64)) == (1, 3, 256, 512)
    for bad in ("256", "ax256", "0x256", "99999x8"):
        with pytest.raises(UserError, match="latency_size"):
            latency_input_size(apply_overrides(cfg, [f"compress.latency_size={bad}"]),
                               (1, 3, 64, 64))
