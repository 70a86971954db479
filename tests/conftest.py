"""Shared test fixtures and helpers: paths to ../shared/fixtures, small deterministic settings,
tiny datasets and configs (imported by test modules with `from conftest import ...`)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gancompress.config import Config, apply_overrides, preset

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
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
