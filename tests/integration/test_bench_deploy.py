"""bench/bench_deploy.py keeps its --json row contract (model, backend, median_ms, macs, runtime,
precision, p10/p90, PSNR vs fp32, speed-ups) on a tiny run: two backends, 32 px, one run."""
from __future__ import annotations

import importlib.util
import json

import pytest
from helpers import REPO

pytestmark = pytest.mark.usefixtures("one_thread")


def _bench():
    path = REPO / "bench" / "bench_deploy.py"
    spec = importlib.util.spec_from_file_location("bench_deploy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_json_rows_of_a_tiny_run(capsys):
    bench = _bench()
    bench.main(["--size", "32", "--runs", "1", "--repeat", "1", "--warmup", "0", "--threads",
                "1", "--backends", "torch,onnx", "--no-gaugan", "--models", "compressed-fast",
                "--json"])
    result = json.loads(capsys.readouterr().out)
    rows = {(r["model"], r["backend"]): r for r in result["rows"]}
    # the filter keeps the named student; the teacher comes along for the speed-ups
    assert set(rows) == {(m, b) for m in ("teacher", "compressed-fast") for b in ("torch", "onnx")}
    for r in rows.values():
        assert r["model"] == "teacher" or r["model"].startswith("compressed")
        assert r["median_ms"] > 0 and r["p10_ms"] <= r["p90_ms"] and r["macs"] > 0
        assert r["precision"] == "fp32" and r["runtime"] in ("pytorch eager", "onnxruntime")
    student = rows[("compressed-fast", "onnx")]
    assert student["psnr_vs_fp32_db"] > 60  # exact export of folded BatchNorm
    assert student["speedup_same_runtime"] == pytest.approx(
        rows[("teacher", "onnx")]["median_ms"] / student["median_ms"])
    assert student["speedup_vs_eager_teacher"] == pytest.approx(
        rows[("teacher", "torch")]["median_ms"] / student["median_ms"])
    assert student["mac_ratio"] == pytest.approx(
        rows[("teacher", "torch")]["macs"] / student["macs"])
    assert rows[("teacher", "torch")]["psnr_vs_fp32_db"] is None  # identical output
    args = bench.parse_args(["--quick"])
    assert args.runs == 5 and args.repeat == 1 and "openvino-int8" in bench.QUICK_BACKENDS
    assert bench.wanted("compressed-fast-latency", ["compressed*"])
    assert not bench.wanted("teacher-gaugan", ["compressed*", "teacher"])
