"""U-Net teachers from the command line: the pix2pix-unet preset, the input-size rule, BatchNorm
re-calibrated for scored sub-networks, test-time dropout modes, export and convert, a ResNet
student. (Training a tiny U-Net teacher and compressing it from the CLI: test_family_cli.py.)"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import OFFICIAL, make_inverted_pairs
from PIL import Image

from gancompress.cli import main
from gancompress.config import apply_overrides, preset
from gancompress.models.checkpoint import load_generator, save_generator
from gancompress.models.unet import UnetGenerator
from gancompress.training.parts import generator_from_config

# 32 px, 5 levels (1x1 bottleneck), batch norm + dropout: the pix2pix defaults, scaled down
TRAIN = ["--preset", "pix2pix-unet", "model.generator_args.num_downs=5",
         "model.generator_args.ngf=4", "model.disc_args.ndf=8", "model.disc_args.n_layers=2",
         "data.load_size=36", "data.crop_size=32",
         "data.num_workers=0", "train.max_steps=3", "train.progress=false", "train.n_samples=2",
         "train.device=cpu", "train.batch_size=2"]
COMPRESS = ["compress.space=4,2", "compress.held_out=4", "compress.supernet_epochs=1",
            "compress.supernet_epochs_decay=0", "compress.finetune_epochs=1",
            "compress.finetune_epochs_decay=0", "compress.generations=2",
            "compress.population=6", "compress.parents=2", "compress.mutants=2",
            "compress.crossovers=2", "train.progress=false", "train.batch_size=2",
            "train.max_steps=2", "model.disc_args.ndf=8", "model.disc_args.n_layers=2",
            "data.load_size=36",
            "data.crop_size=32", "data.num_workers=0", "train.n_samples=2", "train.device=cpu"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """12 aligned 32 px pairs (target = inverted source)."""
    return make_inverted_pairs(tmp_path_factory.mktemp("unet_data"))


def test_pix2pix_unet_preset_keeps_the_published_defaults():
    cfg = preset("pix2pix-unet")
    assert cfg.model.generator == "unet"
    assert cfg.model.generator_args == {"num_downs": 8, "ngf": 64, "norm": "batch",
                                        "dropout": 0.5}
    assert cfg.model.disc_args["norm"] == "batch"
    assert (cfg.loss.gan_mode, cfg.loss.lambda_recon) == ("vanilla", 100.0)
    teacher = generator_from_config(apply_overrides(cfg, ["model.generator_args.ngf=2"]))
    assert teacher.arch["num_downs"] == 8 and teacher.arch["norm"] == "batch"
    demo = preset("demo-unet")  # the ResNet demo's budget, none of its generator arguments
    assert demo.model.generator_args["num_downs"] == 6 and "n_blocks" not in \
        demo.model.generator_args
    assert demo.train.epochs == preset("demo").train.epochs


def test_crop_size_not_fitting_the_levels_fails_before_training(data, tmp_path, capsys):
    sized = [o for o in TRAIN if not o.startswith(("data.crop_size=", "data.load_size="))]
    assert main(["train", *sized, "data.crop_size=24", "data.load_size=24", "--data", str(data),
                 "--out", str(tmp_path / "run")]) == 2
    assert "multiples of 2^5 = 32" in capsys.readouterr().err


def test_test_modes_of_generate_and_eval(tmp_path, capsys):
    model = load_generator(OFFICIAL / "unet256_batch_dropout_pix2pix.pth")
    io = torch.load(OFFICIAL / "unet256_batch_dropout_pix2pix.io.pt", weights_only=True)
    from gancompress.imaging import read_image, save_image, to_uint8
    (tmp_path / "in").mkdir()
    save_image(io["input"][0], tmp_path / "in" / "x.png")
    ckpt = OFFICIAL / "unet256_batch_dropout_pix2pix.pth"
    assert main(["generate", str(ckpt), "--input", str(tmp_path / "in"), "--out",
                 str(tmp_path / "eval")]) == 0
    assert "eval mode (dropout off" in capsys.readouterr().out
    assert main(["generate", str(ckpt), "--input", str(tmp_path / "in"), "--out",
                 str(tmp_path / "train"), "--test-mode", "train"]) == 0
    assert "train mode, as pix2pix test.py without --eval" in capsys.readouterr().out
    eval_img = np.asarray(Image.open(tmp_path / "eval" / "x.png"), dtype=np.int16)
    train_img = np.asarray(Image.open(tmp_path / "train" / "x.png"), dtype=np.int16)
    with torch.no_grad():  # eval mode = the deterministic eval-mode forward of the image read
        expected = to_uint8(model(read_image(tmp_path / "in" / "x.png", 3)[None])[0])
    assert np.abs(eval_img - expected).max() <= 1
    assert np.abs(eval_img - train_img).max() > 10  # dropout + batch statistics differ
    # eval reports the mode too
    assert main(["eval", "--model", str(ckpt), "--metrics", "macs", "--test-mode", "train",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_mode"].startswith("train mode")


def test_export_onnx_verified_and_convert(tmp_path, capsys):
    ckpt = OFFICIAL / "unet128_instance.pth"
    assert main(["convert", str(ckpt), "--out", str(tmp_path / "ours.pth")]) == 0
    ours = load_generator(tmp_path / "ours.pth")
    io = torch.load(OFFICIAL / "unet128_instance.io.pt", weights_only=True)
    with torch.no_grad():
        assert (ours(io["input"]) - io["output"]).abs().max().item() <= 1e-5
    capsys.readouterr()
    assert main(["export", str(tmp_path / "ours.pth"), "--out", str(tmp_path / "g.onnx"),
                 "--size", "128", "128", "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["verify"]["max_abs"] <= 1e-3
    from gancompress.deploy.runtime import open_model
    runner = open_model(tmp_path / "g.onnx")
    assert (runner(io["input"]) - io["output"]).abs().max().item() <= 1e-3
    assert main(["export", str(tmp_path / "ours.pth"), "--out", str(tmp_path / "bad.onnx"),
                 "--size", "96", "128"]) == 2
    assert "multiples of 2^7 = 128" in capsys.readouterr().err
    assert not (tmp_path / "bad.onnx").exists()


def test_export_int8_of_a_separable_unet(tmp_path, capsys, data):
    model = UnetGenerator(ngf=4, num_downs=5, conv="separable", norm="batch").eval()
    save_generator(model, tmp_path / "g.pth")
    assert main(["export", str(tmp_path / "g.pth"), "--out", str(tmp_path / "g.onnx"),
                 "--size", "32", "32", "--int8", "--calib", str(data / "train"),
                 "--min-psnr", "0", "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["precision"] == "int8"


def test_scored_and_extracted_sub_networks_use_recalibrated_batchnorm(data, tmp_path):
    from gancompress.compress.heldout import calibration_batches, held_out_names
    from gancompress.compress.pipeline import compress_config
    from gancompress.compress.scorers import make_scorer
    from gancompress.compress.space import SearchSpace
    from gancompress.compress.supernet import extract_file
    from gancompress.models.elastic import sub_network, using_widths

    supernet = UnetGenerator(ngf=4, num_downs=5, norm="batch").eval()
    for m in supernet.modules():  # statistics of no particular sub-network
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(3.0)
            m.running_var.fill_(0.1)
    save_generator(supernet, tmp_path / "teacher.pth")
    cfg = compress_config(teacher=str(tmp_path / "teacher.pth"), data=str(data), budget="1/3",
                          overrides=COMPRESS)
    names = held_out_names(cfg)
    calib = calibration_batches(cfg, names)
    assert sum(len(b) for b in calib) == 12 - len(names)  # every training image but the held-out
    space = SearchSpace.for_model(supernet, "4,2")
    scorer = make_scorer(cfg, supernet, space, None, names, "cpu")
    assert scorer.calibration is not None
    config = [2, 4, 2, 4, 2]
    widths = space.widths(config)
    with sub_network(supernet, widths, calib) as model:
        expected = scorer.evaluate(model)
    assert scorer(config) == pytest.approx(expected, rel=1e-6)
    with using_widths(supernet, widths):
        stale = scorer.evaluate(supernet)
    assert abs(stale - expected) > 1e-3  # the supernet's own statistics would mis-score it
    # a sub-network extracted straight from the supernet gets statistics of its own
    torch.save({"format": "gancompress-generator", "version": 1, "arch_name": "unet",
                "arch": supernet.arch, "state_dict": supernet.state_dict(),
                "meta": {"space": space.to_meta()}}, tmp_path / "supernet.pth")
    info = extract_file(tmp_path / "supernet.pth", space.encode(config), tmp_path / "c.pth",
                        calibration=calib)
    assert info["bn_recalibrated"]
    assert scorer.evaluate(load_generator(tmp_path / "c.pth")) == pytest.approx(expected,
                                                                                rel=1e-5)


def test_taps_of_a_resnet_student_and_a_unet_teacher_pair_by_resolution():
    from gancompress.compress.distill import FeatureMappings, distillation_loss
    from gancompress.models.resnet import ResnetGenerator

    teacher = UnetGenerator(ngf=4, num_downs=6).eval()  # taps at H/2, H/4, H/8, H/16
    student = ResnetGenerator(ngf=8, n_blocks=3)        # 4 taps at H/4
    mappings = FeatureMappings.between(student, teacher)
    assert mappings.pairs == [(3, 1)]  # the deepest student tap with the teacher's H/4 tap
    assert mappings.convs[0].weight.shape[:2] == (8, 32)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    _, s_feats = student(x, return_features=True)
    _, t_feats = teacher(x, return_features=True)
    loss = distillation_loss(s_feats, t_feats, mappings)
    loss.backward()
    assert loss.item() > 0 and mappings.convs[0].weight.grad is not None
    assert student.stem.conv.weight.grad is not None


@pytest.mark.slow  # a full compression
def test_resnet_student_for_a_unet_teacher_from_the_cli(data, tmp_path, one_thread):
    torch.manual_seed(0)
    teacher = UnetGenerator(ngf=8, num_downs=5, norm="batch", dropout=0.5).eval()
    save_generator(teacher, tmp_path / "teacher.pth")
    out = tmp_path / "cross"
    assert main(["compress", "--teacher", str(tmp_path / "teacher.pth"), "--data", str(data),
                 "--out", str(out), "--budget", "4M",
                 *(o for o in COMPRESS if not o.startswith("compress.space=")),
                 "compress.space=8,4",
                 "compress.student_family=resnet", "compress.student_args.n_blocks=3"]) == 0
    compact_model = load_generator(out / "compact.pth")
    assert compact_model.arch_name == "resnet" and compact_model.arch["n_blocks"] == 3
    assert compact_model.arch["conv"] == "separable"
    report = json.loads((out / "report" / "report.json").read_text())
    assert np.isfinite(report["models"]["compact"]["quality"]["l1"])
    # a student of another family cannot be pruned from the teacher, nor take student_args alone
    assert main(["compress", "--teacher", str(tmp_path / "teacher.pth"), "--data", str(data),
                 "--out", str(tmp_path / "bad"), "--budget", "4M", *COMPRESS,
                 "compress.student_args.n_blocks=3"]) == 2
    assert not (tmp_path / "bad").exists()
