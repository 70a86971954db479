"""GAN Compression of a GauGAN (SPADE) teacher: label-map data through the compress pipeline."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from PIL import Image
from helpers import tiny_gaugan
from helpers import write_cityscapes as _write_cityscapes

from gancompress.cli import main
from gancompress.compress.heldout import held_out_batches, held_out_names
from gancompress.compress.pipeline import compress_config
from gancompress.compress.tasks import DistillTask
from gancompress.config import apply_overrides
from gancompress.models.checkpoint import load_generator
from gancompress.training.loop import train

TINY = ["compress.space=2,1", "compress.held_out=2", "compress.supernet_epochs=1",
        "compress.supernet_epochs_decay=0", "compress.finetune_epochs=1",
        "compress.finetune_epochs_decay=0", "compress.generations=2", "compress.population=6",
        "compress.parents=2", "compress.mutants=2", "compress.crossovers=2",
        "train.progress=false", "train.batch_size=2", "train.max_steps=2", "train.n_samples=2"]


@pytest.fixture(scope="module")
def gaugan(tmp_path_factory):
    root = tmp_path_factory.mktemp("spade-compress")
    data = _write_cityscapes(root / "data", n=5)
    for top in ("gtFine", "leftImg8bit"):  # a val split (the layout's test phase): 2 maps
        (data / top / "val" / "aachen").mkdir(parents=True)
        for f in sorted((data / top / "train" / "aachen").iterdir())[:2 * (1 + (top == "gtFine"))]:
            shutil.copy(f, data / top / "val" / "aachen" / f.name)
    torch.set_num_threads(1)
    train(tiny_gaugan(data), root / "teacher")
    return root


def test_label_data_feeds_the_compression(gaugan):
    cfg = compress_config(teacher=str(gaugan / "teacher" / "generator.pth"),
                          data=str(gaugan / "data"), budget="1/2", overrides=TINY)
    names = held_out_names(cfg)
    assert len(names) == 2 and all(n.endswith("_gtFine_labelIds.png") for n in names)
    batches, paired = held_out_batches(cfg, names)
    source, target = batches[0]
    assert paired and source.shape == (2, 36, 32, 64) and target.shape == (2, 3, 32, 64)
    task = DistillTask(apply_overrides(cfg, {"train.task": "supernet"}), torch.device("cpu"))
    batch = {"source": source, "target": target}
    logs = task.step(batch, 0)
    # GauGAN's multiscale D shows its stages: feature matching joins the distillation losses
    assert {"D", "G_gan", "G_feat", "G_distill"} <= set(logs)
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())
    picture = task.teacher.input_picture(source)
    assert picture.shape == (2, 3, 32, 64)  # label colours, not 36 one-hot channels


@pytest.mark.slow  # a full compression
def test_compress_a_gaugan_teacher_from_the_cli(gaugan, capsys):
    out = gaugan / "run"
    assert main(["compress", "--teacher", str(gaugan / "teacher" / "generator.pth"), "--data",
                 str(gaugan / "data"), "--budget", "1/2", "--out", str(out), *TINY]) == 0
    compact = load_generator(out / "compact.pth")
    teacher = load_generator(gaugan / "teacher" / "generator.pth")
    assert compact.arch_name == "spade" and compact.in_channels == 36
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["ratios"]["macs"] <= 0.5
    assert report["test_images"] == 2  # scored on the val maps too (never trained on)
    x = torch.rand(1, 36, 32, 64)
    assert compact(x).shape == teacher(x).shape == (1, 3, 32, 64)
    with Image.open(out / "report" / "grid.png") as grid:
        assert grid.mode == "RGB"


def test_label_channels_that_do_not_fit_the_teacher(gaugan, capsys):
    code = main(["compress", "--teacher", str(gaugan / "teacher" / "generator.pth"), "--data",
                 str(gaugan / "data"), "--budget", "1/2", "--out", str(gaugan / "bad"),
                 "data.label_nc=35", "data.no_instance=true", *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "35-channel inputs" in err and "takes 36" in err
    assert not (gaugan / "bad").exists()


@pytest.mark.slow  # a full compression
def test_search_by_miou_with_the_segmenter(gaugan, tmp_path, monkeypatch):
    """compress.metric=miou: candidates scored by DRN-D-105 (random weights in the published
    layout) on the held-out label maps' train ids; a missing segmenter fails before training."""
    from helpers import random_drn_file
    monkeypatch.setenv("GANCOMPRESS_WEIGHTS_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    teacher, data = str(gaugan / "teacher" / "generator.pth"), str(gaugan / "data")
    def args(out):
        return ["compress", "--teacher", teacher, "--data", data, "--budget", "1/2", "--out",
                str(out), *TINY, "compress.metric=miou"]
    assert main(args(tmp_path / "none")) == 2
    assert not (tmp_path / "none").exists()
    drn = random_drn_file()
    out = tmp_path / "miou"
    assert main([*args(out), f"compress.drn_weights={drn}"]) == 0
    best = json.loads((out / "search" / "best.json").read_text())
    assert best["metric"] == "miou" and best["higher_is_better"] is True
    assert 0 <= best["score"] <= 100


def test_train_ids_of_cityscapes_label_ids():
    from gancompress.data.segmaps import train_ids
    ids = torch.tensor([[7, 8, 0, 33], [26, 255, 6, 24]])
    assert train_ids(ids).tolist() == [[0, 1, 255, 18], [13, 255, 255, 11]]
