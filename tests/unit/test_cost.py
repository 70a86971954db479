"""MACs by the published convention reproduce docs/reference.md sec. 5 exactly; latency sanity."""
from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest
import torch

from gancompress.cli import main
from gancompress.metrics.cost import count_macs, count_macs_both, count_params, measure_latency
from gancompress.models.elastic import using_widths
from gancompress.models.resnet import ResnetGenerator, decode_config

PUBLISHED = [  # (conv, config string or None, params, MACs) from docs/reference.md sec. 5
    ("dense", None, 11_378_179, 56_831_770_624),
    ("separable", "16_16_32_16_32_32_16_16", 356_867, 2_546_204_672),
    ("separable", "32_32_48_32_48_48_16_16", 822_051, 4_993_843_200),
    ("separable", "24_24_40_56_24_56_16_40", 702_835, 4_863_164_416),
]


@pytest.mark.parametrize("conv,config,params,macs", PUBLISHED)
def test_published_macs_and_params(conv, config, params, macs):
    model = ResnetGenerator(conv=conv, widths=config)
    assert count_params(model) == params
    assert count_macs(model) == macs


def test_supernet_at_config_counts_like_compact():
    config = "16_16_32_16_32_32_16_16"
    supernet = ResnetGenerator(conv="separable", ngf=64)
    with using_widths(supernet, decode_config(config)):
        assert count_macs(supernet) == 2_546_204_672


def test_true_macs_count_transposed_conv_by_input():
    # one 3x3 stride-2 convT 4->2 on 8x8 -> 16x16: published 16*16*2*4*9, true 8*8*4*2*9
    conv = torch.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
    published, true = count_macs_both(conv, (1, 4, 8, 8))
    assert published == 16 * 16 * 2 * 4 * 9 and true == 8 * 8 * 4 * 2 * 9


def _fake_clock(monkeypatch, durations_ms):
    """The timer of metrics/cost.py replaced by a clock whose timed calls last `durations_ms` in
    turn (the fake-timer pattern of test_latency.py): results are exact, nothing is timed."""
    from gancompress.metrics import cost

    ticks, now = [], 100.0
    for ms in durations_ms:
        ticks += [now, now + ms / 1e3]
        now += ms / 1e3 + 1.0  # the time between calls is not measured
    clock = iter(ticks)
    monkeypatch.setattr(cost, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))


def test_latency_reports_conditions(monkeypatch):
    model = ResnetGenerator(ngf=4, n_blocks=3).eval()
    _fake_clock(monkeypatch, [3.0, 1.0, 2.0])
    result = measure_latency(model, torch.rand(1, 3, 32, 32), warmup=1, runs=3)
    assert result["runs"] == 3 and result["warmup"] == 1
    assert (result["min_ms"], result["median_ms"], result["p90_ms"]) == pytest.approx((1, 2, 3))
    assert result["mean_ms"] == pytest.approx(2.0) and result["spread"] == pytest.approx(1.0)
    assert result["threads"] == torch.get_num_threads() and result["torch"] == torch.__version__
    # min_time_s adds runs until that much time was measured: 4 + 4 < 10 ms, 4 + 4 + 4 >= 10 ms
    _fake_clock(monkeypatch, [4.0] * 4)
    result = measure_latency(lambda: None, warmup=0, runs=2, min_time_s=0.010)
    assert result["runs"] == 3 and result["median_ms"] == pytest.approx(4.0)


def test_profile_cli_json_prints_published_full_macs(capsys):
    assert main(["profile", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["macs"] == 56_831_770_624 and out["params"] == 11_378_179
    assert out["macs_true"] < out["macs"]


def test_profile_cli_arch_with_latency(capsys, monkeypatch):
    _fake_clock(monkeypatch, [3.0, 5.0])
    assert main(["profile", "--conv", "separable", "--widths", "16_16_32_16_32_32_16_16",
                 "--ngf", "16", "--size", "32", "32", "--latency", "--runs", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["latency_ms"] == pytest.approx(4.0) and out["widths"]["trunk"] == 128
    assert out["macs"] == 2_546_204_672 // 64  # MACs scale with pixels: 256^2 / 32^2


def test_profile_cli_text_shows_56_8g(capsys):
    assert main(["profile"]) == 0
    assert "56.83G" in capsys.readouterr().out


def test_module_entry_point_reports_user_error_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "gancompress", "profile", "--widths", "16_16_x"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "position 2 is 'x'" in proc.stderr and "Traceback" not in proc.stderr
