"""Shared test fixtures and helpers: paths to tests/fixtures (published-format files, see its
README.md), small deterministic settings, tiny datasets and configs (imported by test modules with `from conftest import ...`)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gancompress.config import Config, apply_overrides, preset

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"  # inside the repository: a clone needs nothing beside it
OFFICIAL = FIXTURES / "official"

# The evaluation-network fixtures are random weights in the published layouts, so their SHA-256
# is not the published file's: tests allow unverified weights explicitly (results are marked
# "verified": false). tests/test_reliability.py checks the refusal without this switch.
os.environ["GANCOMPRESS_ALLOW_UNVERIFIED_WEIGHTS"] = "1"


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture
def one_thread():
    """Tiny models: a second thread only adds synchronisation (and stalls on a loaded machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_config(root: Path, task: str = "pix2pix", *extra: str) -> Config:
    """ngf 4, 3 blocks, 32 px crops; 8 train images at batch 2 -> 4 steps per epoch."""
    # (train() restores the caller's torch thread count when it returns)
    base = preset("cyclegan-horse2zebra" if task == "cyclegan" else "demo")
    return apply_overrides(base, [
        f"data.root={root}", "data.load_size=36", "data.crop_size=32", "data.num_workers=0",
        "model.ngf=4", "model.n_blocks=3", "model.ndf=8", "model.disc_layers=2",
        "train.batch_size=2", "train.epochs=2", "train.epochs_decay=2", "train.log_every=2",
        "train.eval_every=8", "train.checkpoint_every=4", "train.n_samples=2",
        "train.progress=false", "train.lr_update=epoch", "loss.pool_size=3",
        "train.threads=1", *extra])  # one thread: tiny tensors, and robust on a busy CPU


def make_pairs(root: Path, n: int = 8) -> Path:
    """Aligned A | B images: B is a smooth function of A, learnable in a few steps."""
    for phase, count in (("train", n), ("test", 2)):
        (root / phase).mkdir(parents=True)
        for i in range(count):
            rng = np.random.default_rng(i + 100 * len(phase))
            a = np.kron(rng.integers(0, 256, (5, 5, 3)), np.ones((8, 8, 1))).astype(np.uint8)
            Image.fromarray(np.concatenate([a, a[:, :, ::-1]], 1)).save(root / phase / f"{i}.png")
    return root


def make_domains(root: Path) -> Path:
    for name, n in (("trainA", 8), ("trainB", 6), ("testA", 2), ("testB", 2)):
        (root / name).mkdir(parents=True)
        for i in range(n):
            rng = np.random.default_rng(i + 7 * len(name) + ord(name[-1]))
            pixels = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


@pytest.fixture
def demo_run(tmp_path):
    """A tiny finished compression run folder (the layout compress/pipeline.py writes), with
    random trained-looking weights: teacher, supernet, compact, report, search front, data."""
    import json

    from gancompress.compress.space import SearchSpace
    from gancompress.compress.supernet import extract_file
    from gancompress.models.checkpoint import save_generator
    from gancompress.models.resnet import ResnetGenerator, decode_config

    def randomise(model):
        for p in model.parameters():  # not the zero-bias init: outputs vary with the input
            p.data.normal_(0, 0.3)
        return model.eval()

    run = tmp_path / "run"
    torch.manual_seed(1)
    teacher = randomise(ResnetGenerator(ngf=8, n_blocks=3))
    save_generator(teacher, tmp_path / "teacher.pth")
    space = SearchSpace("tiny", ((8, 4),) * 8, decode_config)
    supernet = randomise(ResnetGenerator(ngf=8, n_blocks=3, conv="separable"))
    save_generator(supernet, run / "supernet" / "supernet.pth",
                   meta={"kind": "supernet", "space": space.to_meta()})
    chosen, other = "4_8_4_4_8_4_4_8", "4_4_4_4_4_4_4_4"
    extract_file(run / "supernet" / "supernet.pth", chosen, run / "compact.pth")
    rng = np.random.default_rng(0)
    for side in ("trainA", "trainB"):
        (tmp_path / "data" / side).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(
                tmp_path / "data" / side / f"{i}.png")
    (run / "held_out.txt").write_text("trainA/1.png\ntrainA/2.png\n")
    (run / "compress.json").write_text(json.dumps({
        "data": {"root": str(tmp_path / "data"), "mode": "auto", "crop_size": 32,
                 "direction": "AtoB"},
        "compress": {"teacher": str(tmp_path / "teacher.pth"), "budget": "1/2"}}))
    (run / "search").mkdir()
    (run / "search" / "best.json").write_text(json.dumps({
        "best": chosen, "metric": "l1", "pareto": [
            {"config": other, "cost": 1.0e6, "score": 0.31, "macs": 1.0e6},
            {"config": chosen, "cost": 2.0e6, "score": 0.22, "macs": 2.0e6}]}))
    (run / "report").mkdir()
    (run / "report" / "report.json").write_text(json.dumps({
        "config": chosen, "budget": "1/2", "reference": "teacher output", "held_out_images": 2,
        "teacher_path": str(tmp_path / "teacher.pth"),
        "models": {"teacher": {"quality": {"l1": 0.0, "psnr": None}, "macs_256": 1},
                   "compact": {"quality": {"l1": 0.25, "psnr": 18.5}, "macs_256": 1}}}))
    return {"run": run, "teacher": teacher, "chosen": chosen, "other": other,
            "supernet": run / "supernet" / "supernet.pth", "data": tmp_path / "data"}


@pytest.fixture
def label_generator(monkeypatch):
    """A registered stand-in for a label-map family: a ResNet generator that reads one-hot
    labels + the instance-edge channel and says so through `label_map_args()`."""
    from gancompress.models import GENERATORS
    from gancompress.models.resnet import ResnetGenerator

    class LabelStandIn(ResnetGenerator):
        arch_name = "label-standin"

        def __init__(self, label_nc: int = 8, out_channels: int = 3, ngf: int = 4,
                     n_blocks: int = 3, conv: str = "dense", norm: str = "instance",
                     dropout: float = 0.0, widths: dict | None = None):
            super().__init__(label_nc + 1, out_channels, ngf, n_blocks, conv, norm, dropout,
                             widths)
            self.arch = {"label_nc": label_nc,
                         **{k: v for k, v in self.arch.items() if k != "in_channels"}}

        @property
        def in_channels(self) -> int:
            return self.arch["label_nc"] + 1

        def label_map_args(self) -> dict:
            return {"label_nc": self.arch["label_nc"], "contain_dontcare": False,
                    "no_instance": False}

    monkeypatch.setitem(GENERATORS, LabelStandIn.arch_name, LabelStandIn)
    return LabelStandIn
