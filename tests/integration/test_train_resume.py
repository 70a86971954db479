"""Exact resume, for real: a training process is SIGKILLed (mid-step, and mid-checkpoint-write),
resumed, and must end with bitwise the same weights, optimiser state and logged losses as an
uninterrupted run (CPU, one thread in every process): pix2pix (killed mid-step and mid-checkpoint),
CycleGAN and MUNIT (killed mid-step)."""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers import compare_runs as _compare
from helpers import killed_run as _killed_run
from helpers import make_domains, make_pairs, tiny_config, tiny_munit

from gancompress.models.checkpoint import safe_load
from gancompress.compress.tasks import train


def _uninterrupted(cfg, run: Path) -> None:
    train(cfg, run)  # tiny_config sets train.threads=1, like the driver


def test_pix2pix_sigkill_and_resume_is_bitwise_exact(tmp_path):
    # 8 images, batch 2 -> 4 steps/epoch, 4 epochs = 16 steps; checkpoints at 4, 8, 12, 16;
    # dropout on, so the torch RNG state matters too.
    cfg = tiny_config(make_pairs(tmp_path / "data"), "pix2pix", "model.dropout=0.5",
                      "train.lr_update=step", "train.log_every=1")
    _uninterrupted(cfg, tmp_path / "reference")
    run = tmp_path / "run"
    # Killed between the D and G updates of step 6 (optimize call 13): checkpoint 4 survives.
    _killed_run(tmp_path, cfg, run, "optimize:13", resume=False)
    assert safe_load(run / "checkpoint.pt")["step"] == 4
    # Resumed, then killed while writing checkpoint 12: a temp file is left, checkpoint 8 intact.
    _killed_run(tmp_path, cfg, run, "save:12", resume=True)
    assert safe_load(run / "checkpoint.pt")["step"] == 8
    assert list(run.glob(".checkpoint.pt.*.tmp"))
    train(cfg, run, resume=True)
    _compare(tmp_path / "reference", run)


# Killed mid-step (between the two optimiser updates of a step), resumed from the last
# checkpoint: one row per objective with state beyond the pix2pix one (CycleGAN's image pool,
# which must survive the kill; MUNIT's two translators, step lr schedule and weight decay).
KILLED = {
    "cyclegan": (lambda data: tiny_config(make_domains(data), "cyclegan", "train.epochs=2",
                                          "train.epochs_decay=1", "train.log_every=1"),
                 "optimize:17", 8),  # mid step 9 (2 updates/step)
    "munit": (lambda data: tiny_munit(make_domains(data)), "optimize:11", 4),  # mid step 6
}


@pytest.mark.parametrize("objective", [
    "cyclegan", pytest.param("munit", marks=pytest.mark.slow)])
def test_sigkill_mid_step_and_resume_is_bitwise_exact(tmp_path, objective):
    make_cfg, kill, survived = KILLED[objective]
    cfg = make_cfg(tmp_path / "data")
    _uninterrupted(cfg, tmp_path / "reference")
    run = tmp_path / "run"
    _killed_run(tmp_path, cfg, run, kill, resume=False)
    assert safe_load(run / "checkpoint.pt")["step"] == survived
    train(cfg, run, resume=True)
    _compare(tmp_path / "reference", run)
