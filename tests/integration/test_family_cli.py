"""Every registered generator family end to end from the command line: a tiny teacher trained by
`gancompress train`, compressed by `gancompress compress` (Fast pipeline: supernet, search,
extract, report) into a compact model of the same family within the budget.

One test over a family table (FAMILIES: data, train and compress arguments, budget); what only one
family does (U-Net batch norm and dropout, MUNIT's style losses and teacher-output reference,
GauGAN's label maps and test split) is checked by that row's own `check`. A new family with a
training preset adds a row: test_the_table_covers_every_registered_family fails until it does."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from helpers import make_domains, make_inverted_pairs, write_cityscapes_with_val
from PIL import Image

from gancompress.cli import main
from gancompress.metrics.cost import count_macs
from gancompress.models import GENERATORS
from gancompress.models.checkpoint import load_generator

# the Fast pipeline's settings shared by every row: tiny epochs, a 2-generation search
SEARCH = ["compress.supernet_epochs=1", "compress.supernet_epochs_decay=0",
          "compress.generations=2", "compress.population=6", "compress.parents=2",
          "train.progress=false", "train.batch_size=2"]


@dataclass
class Run:
    data: Path
    teacher: Path   # the trained teacher's generator file
    out: Path       # the compression run folder
    compact: torch.nn.Module
    best: dict      # search/best.json
    report: dict    # report/report.json


@dataclass
class Family:
    make_data: Callable[[Path], Path]
    train: list[str]                 # `gancompress train` arguments besides --data / --out
    compress: list[str]              # `gancompress compress` arguments besides the paths
    budget: float                    # the report's MAC ratio is at most this
    teacher_file: str = "generator.pth"
    check: Callable[[Run], None] = field(default=lambda run: None)


def _check_resnet(run: Run) -> None:
    teacher = load_generator(run.teacher)
    assert run.compact.arch["conv"] == "separable" and teacher.arch["n_blocks"] == 3
    assert count_macs(run.compact, (1, 3, 32, 32)) == run.best["macs"]


def _check_unet(run: Run) -> None:
    teacher = load_generator(run.teacher)
    assert teacher.arch["num_downs"] == 5
    assert teacher.arch["norm"] == "batch" and teacher.arch["dropout"] == 0.5
    assert run.compact.arch["conv"] == "separable" and run.compact.arch["dropout"] == 0.0
    assert run.best["macs"] <= count_macs(teacher, (1, 3, 32, 32)) / 3
    assert count_macs(run.compact, (1, 3, 32, 32)) == run.best["macs"]
    results = [json.loads(line) for line in
               (run.out / "search" / "results.jsonl").read_text().splitlines()]
    assert results and all(np.isfinite(r["score"]) for r in results if "score" in r)


def _check_munit(run: Run) -> None:
    run_cfg = json.loads((run.out / "supernet" / "config.json").read_text())
    assert run_cfg["train"]["task"] == "supernet"  # the MUNIT objective x uniform sampling
    assert not (run.out / "finetune").exists()  # no fine-tuning by default (published)
    losses = [json.loads(line)["losses"] for line in
              (run.out / "supernet" / "log.jsonl").read_text().splitlines() if '"losses"' in line]
    assert any("G_style" in rec for rec in losses) and all("G_content" in rec for rec in losses)
    assert run.best["metric"] == "l1-to-teacher"
    assert run.report["reference"] == "teacher output"


def _check_spade(run: Run) -> None:
    teacher = load_generator(run.teacher)
    assert run.compact.in_channels == 36 and not teacher.arch["spectral"]
    assert run.report["test_images"] == 2  # scored on the val maps too (never trained on)
    x = torch.rand(1, 36, 32, 64)
    with torch.no_grad():
        assert run.compact(x).shape == teacher(x).shape == (1, 3, 32, 64)
    with Image.open(run.out / "report" / "grid.png") as grid:
        assert grid.mode == "RGB"


FAMILIES = {
    "resnet": Family(
        make_inverted_pairs,
        ["--preset", "demo", "model.generator_args.ngf=8", "model.generator_args.n_blocks=3",
         "model.disc_args.ndf=8", "data.load_size=36", "data.crop_size=32",
         "data.num_workers=0", "train.max_steps=3", "train.progress=false",
         "train.n_samples=2", "train.device=cpu", "train.batch_size=2"],
        ["--budget", "1/3", *SEARCH, "compress.space=8,4", "compress.held_out=4",
         "compress.finetune_epochs=1", "compress.finetune_epochs_decay=0",
         "compress.mutants=2", "compress.crossovers=2", "train.max_steps=2",
         "model.disc_args.ndf=8", "data.load_size=36", "data.crop_size=32",
         "data.num_workers=0", "train.n_samples=2", "train.device=cpu"],
        1 / 3, check=_check_resnet),
    # 32 px, 5 levels (1x1 bottleneck), batch norm + dropout: the pix2pix defaults, scaled down
    "unet": Family(
        make_inverted_pairs,
        ["--preset", "pix2pix-unet", "model.generator_args.num_downs=5",
         "model.generator_args.ngf=4", "model.disc_args.ndf=8", "model.disc_args.n_layers=2",
         "data.load_size=36", "data.crop_size=32", "data.num_workers=0", "train.max_steps=3",
         "train.progress=false", "train.n_samples=2", "train.device=cpu",
         "train.batch_size=2"],
        ["--budget", "1/3", *SEARCH, "compress.space=4,2", "compress.held_out=4",
         "compress.finetune_epochs=1", "compress.finetune_epochs_decay=0",
         "compress.mutants=2", "compress.crossovers=2", "train.max_steps=2",
         "model.disc_args.ndf=8", "model.disc_args.n_layers=2", "data.load_size=36",
         "data.crop_size=32", "data.num_workers=0", "train.n_samples=2", "train.device=cpu"],
        1 / 3, check=_check_unet),
    "munit": Family(
        make_domains,
        ["--preset", "munit-demo", "data.load_size=36", "data.crop_size=32",
         "model.generator_args.ngf=4", "model.disc_args.ndf=4", "model.disc_args.n_layers=2",
         "model.generator_args.mlp_dim=8", "model.generator_args.n_res=2",
         "model.disc_args.num_scales=2", "train.batch_size=2", "train.epochs=1",
         "train.progress=false", "train.threads=1"],
        ["--preset", "munit-demo", *SEARCH, "compress.space=4,3,2", "compress.held_out=2",
         "compress.budget=1/2", "compress.mutants=3", "compress.crossovers=3",
         "train.threads=1"],
        1 / 2, teacher_file="generator_AtoB.pth", check=_check_munit),
    "spade": Family(
        write_cityscapes_with_val,
        ["--preset", "gaugan-demo", "data.label_layout=cityscapes", "data.label_nc=0",
         "data.crop_size=64", "model.generator_args.ngf=2", "model.disc_args.ndf=4",
         "model.disc_args.n_layers=2", "train.batch_size=2", "train.max_steps=4",
         "train.checkpoint_every=2", "train.eval_every=100", "train.log_every=1",
         "train.threads=1", "train.progress=false", "train.n_samples=2"],
        ["--budget", "1/2", *SEARCH, "compress.space=2,1", "compress.held_out=2",
         "compress.finetune_epochs=1", "compress.finetune_epochs_decay=0",
         "compress.mutants=2", "compress.crossovers=2", "train.max_steps=2",
         "train.n_samples=2"],
        1 / 2, check=_check_spade),
}


def test_the_table_covers_every_registered_family():
    # every family a preset trains (a user's traced module has no recipe of its own)
    from gancompress.config.presets import PRESETS, preset
    trained = {preset(n).model.generator or next(iter(GENERATORS)) for n in PRESETS}
    assert trained <= set(FAMILIES) <= set(GENERATORS)
    assert {"resnet", "unet", "munit", "spade"} <= trained


@pytest.mark.slow  # a teacher trained and a full compression per family
@pytest.mark.parametrize("name", list(FAMILIES))
def test_a_tiny_teacher_trains_and_compresses_from_the_cli(name, tmp_path, one_thread):
    family = FAMILIES[name]
    data = family.make_data(tmp_path / "data")
    assert main(["train", *family.train, "--data", str(data), "--out",
                 str(tmp_path / "teacher")]) == 0
    teacher = tmp_path / "teacher" / family.teacher_file
    assert load_generator(teacher).arch_name == name
    out = tmp_path / "compressed"
    assert main(["compress", "--teacher", str(teacher), "--data", str(data), "--out", str(out),
                 *family.compress]) == 0
    compact = load_generator(out / "compact.pth")  # no flags needed
    best = json.loads((out / "search" / "best.json").read_text())
    report = json.loads((out / "report" / "report.json").read_text())
    assert compact.arch_name == name
    assert compact.config_from_widths(compact.max_widths) == best["best"]
    assert report["ratios"]["macs"] <= family.budget
    family.check(Run(data, teacher, out, compact, best, report))
