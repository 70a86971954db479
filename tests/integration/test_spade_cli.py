"""SPADE (GauGAN) from the command line: the built-in label demo data, generate (PyTorch and ONNX,
ids or Cityscapes colours in), export (verified), eval (mIoU with random DRN weights in the
published layout, FID, PSNR) and profile; each bad input ends in one clear message."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from helpers import random_drn_file, random_inception_file

from gancompress.cli import main
from gancompress.config import preset
from gancompress.data.demo import (
    DEMO_CLASSES,
    LABEL_NC,
    TEST_PHOTOS,
    TRAIN_PHOTOS,
    write_label_demo_data,
)
from gancompress.data.segmaps import CITYSCAPES_PALETTE, LabelMapDataset, instance_edges
from gancompress.errors import UserError
from gancompress.models.checkpoint import evaluation_size, load_generator, save_generator
from gancompress.models.spade import SpadeGenerator


@pytest.fixture(scope="module")
def demo_labels(tmp_path_factory):
    out = tmp_path_factory.mktemp("labels") / "demo"
    summary = write_label_demo_data(out, height=32, n_train=4, n_test=3, seed=1)
    return out, summary


@pytest.fixture(scope="module")
def spade_file(tmp_path_factory):
    torch.manual_seed(0)
    g = SpadeGenerator(in_channels=LABEL_NC + 1, ngf=2, upsampling="normal").eval()
    path = tmp_path_factory.mktemp("g") / "G.pth"
    save_generator(g, path)
    return path, g


@pytest.fixture(scope="module")
def spade_onnx(spade_file, tmp_path_factory):
    """The tiny model exported by the CLI (verified against PyTorch before it is written)."""
    import contextlib
    import io
    path = tmp_path_factory.mktemp("onnx") / "g.onnx"
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert main(["export", str(spade_file[0]), "--out", str(path), "--size", "32", "64"]) == 0
    return path, text.getvalue()


def test_label_demo_data_layout_disjoint_and_deterministic(demo_labels, tmp_path):
    out, summary = demo_labels
    assert summary["label_nc"] == LABEL_NC == len(DEMO_CLASSES)
    assert preset("gaugan-demo").data.label_nc == LABEL_NC  # the preset trains on this data
    for phase, photos, n in (("train", TRAIN_PHOTOS, 4), ("test", TEST_PHOTOS, 3)):
        names = sorted(p.name for p in (out / phase / "labels").iterdir())
        assert len(names) == n
        assert {name.split("_", 1)[1][:-4] for name in names} <= set(photos)
        for kind in ("instances", "images"):
            assert sorted(p.name for p in (out / phase / kind).iterdir()) == names
    first = min((out / "train" / "labels").iterdir()).name
    label = Image.open(out / "train" / "labels" / first)
    assert label.mode == "P" and label.size == (64, 32)  # ids, viewed in the classes' colours
    ids = np.asarray(label)
    inst = np.asarray(Image.open(out / "train" / "instances" / first)).astype(np.int64)
    assert ids.max() < LABEL_NC and np.array_equal(inst // 1000, ids)  # 1000 * class + k
    # instances are connected regions: an instance edge lies wherever the class changes
    edges = instance_edges(torch.from_numpy(inst)[None, None])[0, 0].bool()
    class_edges = instance_edges(torch.from_numpy(ids.astype(np.int64))[None, None])[0, 0].bool()
    assert bool((edges | ~class_edges).all())
    ds = LabelMapDataset(out, phase="test", label_nc=LABEL_NC, train=False)
    assert ds.layout == "folders" and ds.semantic_nc == LABEL_NC + 1
    item = ds[0]
    assert item["source"].shape == (LABEL_NC + 1, 256, 512) and item["target"].shape[0] == 3
    again = write_label_demo_data(tmp_path / "again", height=32, n_train=4, n_test=3, seed=1)
    assert again == summary
    for p in (out / "test").rglob("*.png"):
        assert (tmp_path / "again" / p.relative_to(out)).read_bytes() == p.read_bytes()
    with pytest.raises(UserError, match="not empty"):
        write_label_demo_data(out, n_train=1, n_test=1)


def test_demo_data_labels_command(tmp_path, capsys):
    assert main(["demo-data", "--labels", "--out", str(tmp_path / "d"), "--train", "2",
                 "--test", "1", "--size", "16"]) == 0
    assert "gaugan-demo" in capsys.readouterr().out
    assert (tmp_path / "d" / "test" / "instances").is_dir()
    assert main(["demo-data", "--labels", "--kind", "edges", "--out", str(tmp_path / "e")]) == 2
    assert "--kind" in capsys.readouterr().err and not (tmp_path / "e").exists()


@pytest.mark.slow
def test_generate_pytorch_and_onnx_agree_from_ids_and_colours(demo_labels, spade_file, spade_onnx,
                                                             tmp_path):
    data, _ = demo_labels
    model_path, g = spade_file
    onnx, out = spade_onnx
    labels = data / "test" / "labels"
    assert main(["generate", str(model_path), "--input", str(labels), "--out",
                 str(tmp_path / "pt"), "--size", "32", "64"]) == 0
    assert "one-hot label map" in out and "verified      max abs error" in out
    assert main(["generate", str(onnx), "--input", str(labels), "--out", str(tmp_path / "ox")]) == 0
    for p in sorted((tmp_path / "pt").iterdir()):
        a = np.asarray(Image.open(p)).astype(int)
        b = np.asarray(Image.open(tmp_path / "ox" / p.name)).astype(int)
        assert a.shape == (32, 64, 3) and np.abs(a - b).max() <= 1
    # what generate fed the model: one-hot of the ids + the edges of the instance map
    name = min(labels.iterdir())
    x = SpadeGenerator.read_input(g.arch, name, (32, 64))
    ids = torch.from_numpy(np.asarray(Image.open(name)).astype(np.int64))
    assert torch.equal(x[:LABEL_NC].argmax(0), ids) and x[:LABEL_NC].sum(0).eq(1).all()
    inst = torch.from_numpy(np.asarray(Image.open(data / "test" / "instances" / name.name))
                            .astype(np.int64))
    assert torch.equal(x[LABEL_NC], instance_edges(inst[None, None])[0, 0])
    # a Cityscapes colour PNG is read as the ids of its colours
    colour = np.zeros((32, 64, 3), np.uint8)
    colour[:, 32:] = CITYSCAPES_PALETTE[7]  # road
    Image.fromarray(colour).save(tmp_path / "c.png")
    xc = SpadeGenerator.read_input({**g.arch, "instance_edge": False, "in_channels": 35},
                                   tmp_path / "c.png", None)
    assert xc.shape == (35, 32, 64) and xc[7, :, 32:].eq(1).all() and xc[0, :, :32].eq(1).all()


@pytest.mark.slow
def test_generate_bad_label_inputs_are_one_message_each(demo_labels, spade_file, spade_onnx,
                                                        tmp_path, capsys):
    data, _ = demo_labels
    model_path, _ = spade_file
    bad = tmp_path / "bad"
    (bad / "labels").mkdir(parents=True)
    (bad / "instances").mkdir()
    Image.fromarray(np.full((32, 64), LABEL_NC, np.uint8)).save(bad / "labels" / "a.png")
    Image.fromarray(np.zeros((32, 64), np.uint16)).save(bad / "instances" / "a.png")
    cases = [
        (["--input", str(bad / "labels")], f"label id {LABEL_NC} is outside 0..{LABEL_NC - 1}"),
        (["--input", str(data / "test" / "images")], "not in the label palette"),
        (["--input", str(data / "test" / "labels"), "--instances", str(tmp_path)],
         "pass --instances DIR"),
    ]
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    Image.fromarray(np.zeros((32, 64), np.uint8)).save(lonely / "x.png")
    cases.append((["--input", str(lonely)], "takes an instance-edge channel"))
    for extra, message in cases:
        out = tmp_path / f"out{len(message)}"
        assert main(["generate", str(model_path), "--out", str(out), "--size", "32", "64",
                     *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists() or not any(out.iterdir())
    # the wrong size rule and the --instances flag for an image model
    assert main(["generate", str(model_path), "--input", str(lonely), "--out",
                 str(tmp_path / "o"), "--size", "30", "64"]) == 2
    assert "multiple of 32" in capsys.readouterr().err
    resnet = tmp_path / "r.pth"
    from gancompress.models.resnet import ResnetGenerator
    save_generator(ResnetGenerator(ngf=4, n_blocks=3), resnet)
    assert main(["generate", str(resnet), "--input", str(lonely), "--out", str(tmp_path / "o"),
                 "--instances", str(lonely)]) == 2
    assert "--instances applies to label-map generators" in capsys.readouterr().err
    # an exported SPADE file checks the channel count of what it is given
    from gancompress.deploy.runtime import OnnxRunner
    onnx = spade_onnx[0]
    with pytest.raises(UserError, match=rf"takes \(B, {LABEL_NC + 1}, H, W\)"):
        OnnxRunner(onnx)(torch.zeros(1, 3, 32, 64))
    assert main(["export", str(model_path), "--out", str(tmp_path / "q.onnx"), "--int8",
                 "--calib", str(data / "train" / "images")]) == 2
    assert "export it in fp32" in capsys.readouterr().err


def test_dontcare_id_255_is_the_recorded_dontcare_channel(tmp_path, capsys):
    # a model trained with contain_dontcare (COCO-Stuff, ADE20K) records it: generate reads
    # the id 255 as that channel, as the dataset does; without the record 255 stays an error
    from gancompress.config import apply_overrides
    from gancompress.training.objectives import TeacherTask

    labels = tmp_path / "in" / "labels"
    labels.mkdir(parents=True)
    ids = np.zeros((32, 64), np.uint8)
    ids[:, 32:] = 255
    Image.fromarray(ids).save(labels / "a.png")
    torch.manual_seed(0)
    model = SpadeGenerator(ngf=2, in_channels=4, upsampling="normal", instance_edge=False,
                           dontcare=True).eval()  # 3 labels + dontcare
    assert model.label_map_args() == {"label_nc": 3, "contain_dontcare": True,
                                      "no_instance": True}
    x = SpadeGenerator.read_input(model.arch, labels / "a.png", (32, 64))
    assert x.shape == (4, 32, 64) and x[3, :, 32:].eq(1).all() and x[0, :, :32].eq(1).all()
    save_generator(model, tmp_path / "dc.pth")
    assert main(["generate", str(tmp_path / "dc.pth"), "--input", str(labels), "--out",
                 str(tmp_path / "out"), "--size", "32", "64"]) == 0
    plain = SpadeGenerator(ngf=2, in_channels=4, upsampling="normal", instance_edge=False)
    save_generator(plain, tmp_path / "plain.pth")
    assert main(["generate", str(tmp_path / "plain.pth"), "--input", str(labels), "--out",
                 str(tmp_path / "out2"), "--size", "32", "64"]) == 2
    assert "255" in capsys.readouterr().err
    # GauGAN training records the data's dontcare rule in the generator
    cfg = apply_overrides(preset("gaugan-demo"), [
        f"data.root={tmp_path / 'in'}", "data.label_layout=folders", "data.label_nc=3",
        "data.contain_dontcare=true", "data.no_instance=true",
        "model.generator_args.ngf=2", "model.disc_args.ndf=4", "train.device=cpu"])
    task = TeacherTask(cfg, torch.device("cpu"))
    assert task.generator.arch["dontcare"] and task.generator.in_channels == 4


@pytest.mark.slow
def test_eval_and_profile_a_spade_model(demo_labels, spade_file, spade_onnx, tmp_path, monkeypatch,
                                        capsys):
    data, _ = demo_labels
    model_path, g = spade_file
    monkeypatch.setenv("GANCOMPRESS_WEIGHTS_DIR", str(random_inception_file().parent))
    truth = tmp_path / "truth"
    truth.mkdir()
    rng = np.random.default_rng(0)
    for p in (data / "test" / "labels").iterdir():  # train-id maps for the DRN scorer
        Image.fromarray(rng.integers(0, 19, (32, 64)).astype(np.uint8)).save(truth / p.name)
    assert main(["eval", "--model", str(model_path), "--data", str(data), "--load-size", "32",
                 "--metrics", "fid,psnr,miou,macs", "--labels", str(truth), "--drn-weights",
                 str(random_drn_file()), "--miou-size", "64x32", "--no-progress", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    m = result["metrics"]
    assert result["num_images"] == 3 and result["data_mode"] == "labels"
    assert np.isfinite(m["fid"]["value"]) and 0 < m["psnr"]["value"] < 60
    assert 0 <= m["miou"]["value"] <= 100 and m["miou"]["num_images"] == 3
    from gancompress.metrics.cost import count_macs
    assert m["macs"]["value"] == count_macs(g, (1, LABEL_NC + 1, 32, 64))
    # a label-map model on a photo dataset, and photos-less label maps: one message each
    photos = tmp_path / "photos" / "test"
    photos.mkdir(parents=True)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(photos / "a.png")
    assert main(["eval", "--model", str(model_path), "--data", str(photos.parent),
                 "--metrics", "psnr", "--no-progress"]) == 2
    assert "not a label-map dataset" in capsys.readouterr().err
    assert main(["profile", str(model_path), "--size", "32", "64", "--json"]) == 0
    prof = json.loads(capsys.readouterr().out)
    assert prof["arch"] == "spade" and prof["input_size"] == [1, LABEL_NC + 1, 32, 64]
    assert prof["macs"] == m["macs"]["value"]
    onnx = spade_onnx[0]
    assert main(["profile", str(onnx), "--json", "--latency", "--runs", "1", "--warmup", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["macs"] == prof["macs"]


def test_a_trained_label_model_runs_at_its_2_to_1_training_size():
    cfg = preset("gaugan-demo").to_dict()
    g = SpadeGenerator(in_channels=LABEL_NC + 1, ngf=2, upsampling="normal")
    g.meta = {"config": cfg}
    assert evaluation_size(g)[0] == (32, 64)
    from gancompress.models.resnet import ResnetGenerator
    r = ResnetGenerator(ngf=4, n_blocks=3)
    r.meta = {"config": preset("demo").to_dict()}
    assert evaluation_size(r)[0] == (64, 64)


def test_the_tiny_gaugan_preset_trains_on_the_demo_labels(demo_labels, tmp_path, one_thread):
    from gancompress.config import apply_overrides
    from gancompress.compress.tasks import train
    data, _ = demo_labels
    cfg = apply_overrides(preset("gaugan-demo"), [
        f"data.root={data}", "train.max_steps=2", "train.batch_size=2", "train.threads=1",
        "train.progress=false", "model.generator_args.ngf=2", "model.disc_args.ndf=4",
        "model.disc_args.n_layers=2", "train.eval_every=100", "train.n_samples=1"])
    train(cfg, tmp_path / "run")
    g = load_generator(tmp_path / "run" / "generator.pth")
    assert g.in_channels == LABEL_NC + 1 and evaluation_size(g)[0] == (32, 64)


def test_miou_ground_truth_matches_cityscapes_label_inputs_by_name():
    from gancompress.metrics.segmentation import match_key
    # a SPADE input X_gtFine_labelIds.png is scored against X_gtFine_trainIds.png
    assert match_key("a/x_000019_gtFine_labelIds.png") == match_key("x_000019_gtFine_trainIds.png")
