"""Contract suites over the other registries: every discriminator and every training task
(tiny settings, 2 steps: finite losses; compression tasks leave the teacher unchanged)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from helpers import make_domains, make_pairs, tiny_config

from gancompress.files import sha256_file
from gancompress.models.discriminators import DISCRIMINATORS, build_discriminator
from gancompress.compress.tasks import TASKS
from gancompress.compress.tasks import train

# Tiny constructor arguments per discriminator; every registered one must be listed.
DISC_ARGS = {"patch": dict(ndf=8, n_layers=2),
             "ms_image": dict(ndf=4, n_layers=2, num_scales=2),
             "multiscale": dict(ndf=8, n_layers=2)}


def _flat(out):
    """Logit maps of a discriminator output: a tensor, or (nested) lists of them."""
    return [out] if isinstance(out, torch.Tensor) else [t for o in out for t in _flat(o)]


def test_every_discriminator_is_covered():
    assert set(DISC_ARGS) == set(DISCRIMINATORS)


@pytest.mark.parametrize("name", sorted(DISC_ARGS))
def test_discriminator_contract(name):
    disc = build_discriminator(name, in_channels=6, **DISC_ARGS[name])
    x = torch.rand(2, 6, 32, 32, requires_grad=True) * 2 - 1
    out = disc(x)
    logits = out if isinstance(out, torch.Tensor) else torch.cat([o.flatten(1) for o in _flat(out)], 1)
    assert logits.shape[0] == 2 and torch.isfinite(logits).all()
    logits.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in disc.parameters())


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("contract")
    from helpers import write_cityscapes as _write_cityscapes
    return {"paired": make_pairs(root / "paired"), "unpaired": make_domains(root / "unpaired"),
            "labels": _write_cityscapes(root / "labels", n=2)}


@pytest.fixture(scope="module")
def teacher(data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("teacher") / "run"
    train(tiny_config(data["paired"], "pix2pix", "train.max_steps=2"), run)
    return run / "generator.pth"


COMPRESS = ("compress.space=4,2", "compress.held_out=1", "model.disc_args.ndf=8")
# Per task: (data kind, extra overrides); every registered task must be listed.
TASK_SETTINGS = {
    "pix2pix": ("paired", ()),
    "cyclegan": ("unpaired", ()),
    "distill": ("paired", COMPRESS),
    "supernet": ("paired", COMPRESS),
    "finetune": ("paired", (*COMPRESS, "compress.config=4_2_4_2_4_2_4_2")),
    "gaugan": ("labels", ()),
}


def test_every_task_is_covered():
    assert set(TASK_SETTINGS) | set(MUNIT_TASK_SETTINGS) >= set(TASKS)


@pytest.mark.parametrize("task", sorted(TASK_SETTINGS))
def test_task_contract(task, data, teacher, tmp_path, one_thread):
    kind, extra = TASK_SETTINGS[task]
    compressing = any(k.startswith("compress.") for k in extra)
    overrides = [f"train.task={task}", "train.max_steps=2", "train.log_every=1", *extra]
    if compressing:
        overrides.append(f"compress.teacher={teacher}")
        before = sha256_file(teacher)
    if kind == "labels":  # label maps -> photos: the GauGAN recipe, tiny
        from helpers import tiny_gaugan
        from gancompress.config import apply_overrides
        config = apply_overrides(tiny_gaugan(data[kind], 2), overrides)
    else:
        config = tiny_config(data[kind], task, *overrides)
    result = train(config, tmp_path / "run")
    assert result["steps"] == 2
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [v for r in records for k, v in r.items() if isinstance(v, float) and k not in
              ("time", "elapsed_s", "lr", "images_per_s")]
    assert losses and all(math.isfinite(v) for v in losses)
    if compressing:
        assert sha256_file(teacher) == before


# MUNIT's tasks need MUNIT settings (generator_args, ms_image D) and a MUNIT teacher.
MUNIT_COMPRESS = ("compress.space=4,2", "compress.held_out=1")
MUNIT_TASK_SETTINGS = {
    "munit": (),
    "munit-distill": MUNIT_COMPRESS,
    "munit-supernet": MUNIT_COMPRESS,
    "munit-finetune": (*MUNIT_COMPRESS, "compress.config=4_2_4_2_4_2_4_2_4_2"),
}


@pytest.fixture(scope="module")
def munit_teacher(data, tmp_path_factory) -> Path:
    from helpers import tiny_munit

    run = tmp_path_factory.mktemp("munit_teacher") / "run"
    train(tiny_munit(data["unpaired"], "train.max_steps=2"), run)
    return run / "generator_AtoB.pth"


@pytest.mark.parametrize("task", sorted(MUNIT_TASK_SETTINGS))
def test_munit_task_contract(task, data, munit_teacher, tmp_path, one_thread):
    from helpers import tiny_munit

    extra = MUNIT_TASK_SETTINGS[task]
    overrides = [f"train.task={task}", "train.max_steps=2", "train.log_every=1", *extra]
    if extra:
        overrides.append(f"compress.teacher={munit_teacher}")
        before = sha256_file(munit_teacher)
    result = train(tiny_munit(data["unpaired"], *overrides), tmp_path / "run")
    assert result["steps"] == 2
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [v for r in records for v in r.get("losses", {}).values()]
    assert losses and all(math.isfinite(v) for v in losses)
    if extra:
        assert sha256_file(munit_teacher) == before
