"""`compress --budget Xms --runtime openvino-int8` end to end (tiny run): the latency model is
fitted for that runtime (a fake device replaces the timing, so the test is deterministic and
fast), the search keeps the budget in that runtime's ms, best.json records runtime, precision and
held-out error next to its Pareto front, and the compact model's exports carry them."""
from __future__ import annotations

import json

import pytest
import torch
from helpers import TINY, make_inverted_pairs

from gancompress.cli import main
from gancompress.compress import costs
from gancompress.compress.latency import LatencyModel
from gancompress.deploy import session

pytestmark = pytest.mark.usefixtures("one_thread")


def test_latency_budget_on_openvino_int8_end_to_end(tmp_path, monkeypatch, capsys):
    from gancompress.models.checkpoint import save_generator
    from gancompress.models.resnet import ResnetGenerator

    data = make_inverted_pairs(tmp_path / "data")
    torch.manual_seed(0)
    save_generator(ResnetGenerator(ngf=8, n_blocks=3), tmp_path / "teacher.pth")
    measured = []

    def fake_measure(self, configs, runs):
        # a device whose int8 latency grows with the widths (ms)
        assert self.runtime == "openvino-int8" and self.precision == "int8"
        measured.extend(configs)
        return {self.space.encode(c): 1.0 + 0.02 * sum(self.space.widths(c).values())
                for c in configs}
    monkeypatch.setattr(LatencyModel, "_measure_all", fake_measure)
    monkeypatch.setattr(costs, "_teacher_latency", lambda *a, **k: 50.0)
    monkeypatch.setattr(session, "supports_int8", lambda: True)  # any CI CPU
    monkeypatch.setenv("GANCOMPRESS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    # widths of the 8,4 space: 4..8 x multipliers; every sub-network costs 2.76-4.52 fake ms
    assert main(["compress", "--teacher", str(tmp_path / "teacher.pth"), "--data", str(data),
                 "--budget", "3.5ms", "--runtime", "openvino-int8", "--out", str(out),
                 *TINY]) == 0
    log = capsys.readouterr().out
    assert measured and "[latency] latency model: openvino-int8 (int8)" in log
    assert "held-out sub-networks" in log
    best = json.loads((out / "search" / "best.json").read_text())
    assert best["cost_unit"] == "ms" and best["cost"] <= 3.5
    assert all(p["cost"] <= 3.5 for p in best["pareto"])
    info = best["cost_info"]
    assert info["runtime"] == "openvino-int8" and info["precision"] == "int8"
    assert info["holdout_configs"] >= 4 and info["holdout_mape"] < 1.0  # exact fake device
    # the compact model's ONNX export records what it was searched for
    onnx_file = tmp_path / "compact.onnx"
    assert main(["export", str(out / "compact.pth"), "--out", str(onnx_file), "--size", "32",
                 "32", "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["latency_budget"]["runtime"] == "openvino-int8"
    assert meta["latency_budget"]["precision"] == "int8" and meta["latency_budget"]["budget"] \
        == "3.5ms"
