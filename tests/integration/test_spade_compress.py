"""GAN Compression of a GauGAN (SPADE) teacher: label-map data through the compress pipeline, the
label channels checked against the teacher, search by mIoU. (Training a tiny GauGAN teacher and
compressing it from the CLI: test_family_cli.py.)"""
from __future__ import annotations

import json

import pytest
import torch
from helpers import tiny_gaugan, write_cityscapes_with_val

from gancompress.cli import main
from gancompress.compress.heldout import held_out_batches, held_out_names
from gancompress.compress.pipeline import compress_config
from gancompress.compress.tasks import DistillTask
from gancompress.config import apply_overrides
from gancompress.compress.tasks import train

TINY = ["compress.space=2,1", "compress.held_out=2", "compress.supernet_epochs=1",
        "compress.supernet_epochs_decay=0", "compress.finetune_epochs=1",
        "compress.finetune_epochs_decay=0", "compress.generations=2", "compress.population=6",
        "compress.parents=2", "compress.mutants=2", "compress.crossovers=2",
        "train.progress=false", "train.batch_size=2", "train.max_steps=2", "train.n_samples=2"]


@pytest.fixture(scope="module")
def gaugan(tmp_path_factory):
    root = tmp_path_factory.mktemp("spade-compress")
    data = write_cityscapes_with_val(root / "data", n=5)  # + a val split of 2 maps
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
