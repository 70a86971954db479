"""MUNIT compression: the distillation task's terms, and the Fast pipeline from the CLI (train a
tiny teacher, compress it: supernet, random-style search, extract, report)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from helpers import REPO
from gancompress.compress.heldout import held_out_batches
from gancompress.compress.pipeline import compress_config
from gancompress.models.checkpoint import load_generator
from helpers import make_domains


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gancompress", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=600)


@pytest.mark.slow
def test_tiny_munit_trains_and_compresses_from_the_cli(tmp_path):
    data = make_domains(tmp_path / "data")
    teacher_run = tmp_path / "teacher"
    overrides = [f"{k}={v}" for k, v in (o.split("=", 1) for o in [
        "data.load_size=36", "data.crop_size=32", "model.generator_args.ngf=4",
        "model.disc_args.ndf=4", "model.disc_args.n_layers=2", "model.generator_args.mlp_dim=8",
        "model.generator_args.n_res=2", "model.disc_args.num_scales=2",
        "train.batch_size=2", "train.epochs=1", "train.progress=false", "train.threads=1"])]
    done = _cli("train", "--preset", "munit-demo", "--data", str(data), "--out", str(teacher_run),
                *overrides)
    assert done.returncode == 0, done.stderr[-2000:]
    teacher = teacher_run / "generator_AtoB.pth"
    out = tmp_path / "compressed"
    done = _cli("compress", "--teacher", str(teacher), "--data", str(data), "--preset",
                "munit-demo", "--out", str(out), "compress.space=4,3,2", "compress.held_out=2",
                "compress.budget=1/2", "compress.supernet_epochs=1", "compress.generations=2",
                "compress.population=6", "compress.parents=2", "compress.mutants=3",
                "compress.crossovers=3", "train.batch_size=2", "train.progress=false",
                "train.threads=1")
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    run_cfg = json.loads((out / "supernet" / "config.json").read_text())
    assert run_cfg["train"]["task"] == "supernet"  # the MUNIT objective x uniform sampling
    assert not (out / "finetune").exists()  # no fine-tuning by default (published)
    losses = [json.loads(line)["losses"] for line in
              (out / "supernet" / "log.jsonl").read_text().splitlines() if '"losses"' in line]
    assert any("G_style" in rec for rec in losses) and all("G_content" in rec for rec in losses)
    best = json.loads((out / "search" / "best.json").read_text())
    assert best["metric"] == "l1-to-teacher"
    compact = load_generator(out / "compact.pth")
    assert compact.arch_name == "munit" and compact.config_from_widths(compact.max_widths) \
        == best["best"]
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["reference"] == "teacher output"
    assert report["ratios"]["macs"] <= 0.5


def test_held_out_reference_is_the_teacher_under_fixed_styles(tmp_path):
    from gancompress.models import build_generator

    data = make_domains(tmp_path / "data")
    teacher = build_generator("munit", ngf=4, mlp_dim=8, n_res=2).eval()
    cfg = compress_config(overrides=[f"data.root={data}", "data.crop_size=32",
                                     "data.load_size=36"])
    names = ["trainA/0.png", "trainA/1.png", "trainA/2.png"]
    batches, paired = held_out_batches(cfg, names, teacher, batch_size=2)
    assert not paired and len(batches) == 2
    for index, (source, reference) in enumerate(batches):
        again = teacher(*teacher.scoring_inputs(source, index))
        torch.testing.assert_close(reference, again)
        assert not torch.allclose(reference, teacher(source))  # not x's own style
