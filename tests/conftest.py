"""Shared test fixtures (found by pytest for every folder under tests/): deterministic seeds, one
thread, a tiny compression workspace, a finished run folder, a label-map stand-in family. Plain
helpers (paths, tiny configs and datasets) are in helpers.py: test modules never import conftest or
each other."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import make_inverted_pairs, quiet
# Re-exported only for test files written on other branches before helpers.py existed (they say
# `from conftest import ...`); new tests import helpers. Drop once those branches are merged.
from helpers import FIXTURES, OFFICIAL, REPO, make_domains, make_pairs, tiny_config  # noqa: F401


# The evaluation-network fixtures are random weights in the published layouts, so their SHA-256
# is not the published file's: tests allow unverified weights explicitly (results are marked
# "verified": false). tests/integration/test_reliability.py checks the refusal without this switch.
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


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A 12-pair aligned 32 px dataset (target = inverted source) and a tiny random teacher."""
    from gancompress.models.checkpoint import save_generator
    from gancompress.models.resnet import ResnetGenerator

    root = tmp_path_factory.mktemp("compress")
    make_inverted_pairs(root / "data")
    torch.manual_seed(0)
    save_generator(ResnetGenerator(ngf=8, n_blocks=3), root / "teacher.pth")
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
                     dropout: float = 0.0, widths: dict | None = None, pad: str = "reflect",
                     separable_norm: str = "instance"):
            super().__init__(label_nc + 1, out_channels, ngf, n_blocks, conv, norm, dropout,
                             widths, pad=pad, separable_norm=separable_norm)
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


@pytest.fixture
def demo(demo_run, one_thread):
    """The web demo's models opened on demo_run (torch backend, one thread, no log)."""
    from gancompress.serve.runners import Demo
    return Demo.open([demo_run["run"]], backend="torch", threads=1, log=quiet)
