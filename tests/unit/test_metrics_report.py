"""The compression report's distribution rows (SWD, colour) and its seed: values equal the
metric functions on the outputs and references, the reference scored against itself is 0,
non-RGB outputs get no colour row value, and the Markdown shows every row and the seed."""
from __future__ import annotations

import pytest
import torch

from gancompress.compress.report import compare, markdown, quality
from gancompress.metrics.colour import colour_distance
from gancompress.metrics.swd import swd
from gancompress.models.resnet import ResnetGenerator


def _batches(seed: int = 0, channels: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(2, 3, 32, 32, generator=g) * 2 - 1,
             torch.rand(2, channels, 32, 32, generator=g) * 2 - 1) for _ in range(2)]


def test_quality_rows_are_the_metrics_of_outputs_and_references():
    torch.manual_seed(0)
    model = ResnetGenerator(ngf=4, n_blocks=3).eval()
    batches = _batches()
    q = quality(model, batches)
    with torch.no_grad():
        fake = torch.cat([model(s) for s, _ in batches])
    target = torch.cat([t for _, t in batches])
    assert q["swd"] == pytest.approx(swd(fake, target), rel=1e-6)
    assert q["colour"] == pytest.approx(colour_distance(fake, target), rel=1e-6)
    grey = ResnetGenerator(ngf=4, n_blocks=3, out_channels=1).eval()
    q1 = quality(grey, _batches(channels=1))
    assert q1["colour"] is None and q1["swd"] > 0


def test_report_states_the_metrics_and_the_seed():
    torch.manual_seed(0)
    teacher = ResnetGenerator(ngf=8, n_blocks=3).eval()
    compact = ResnetGenerator(ngf=4, n_blocks=3).eval()
    batches = _batches()
    report, _ = compare(teacher, compact, batches, paired=False, input_size=(1, 3, 32, 32),
                        latency_runs=1, meta={"seed": 7})
    t, c = report["models"]["teacher"]["quality"], report["models"]["compact"]["quality"]
    assert t == {"l1": 0.0, "psnr": None, "swd": 0.0, "colour": 0.0}  # the reference itself
    assert c["swd"] > 0 and c["colour"] > 0 and report["seed"] == 7
    text = markdown(report)
    assert "| SWD x1e3 to teacher output (lower is better) | 0.0000 |" in text
    assert "colour distance to teacher output, CIELAB a*b*" in text
    assert "Seed of the run (train.seed): 7." in text and "4 x 128 random projections" in text
    del report["seed"]  # a report written without a seed says nothing about it
    assert "Seed of the run" not in markdown(report)
