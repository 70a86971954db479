"""A user's own generator from the command line: --arch module.path:ClassName [--arch-args JSON]
[--pin LAYERS] with its weights file (a state dict, plain or wrapped) as MODEL / --teacher, on
profile and compress; the results reopen without the flags while the module is importable."""
from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from gancompress.cli import main
from gancompress.metrics.cost import count_macs_both
from gancompress.models.checkpoint import load_generator
from gancompress.models.traced import TracedGenerator
from helpers import make_inverted_pairs
from user_models.johnson import TransformerNet

ARCH = ["--arch", "user_models.johnson:TransformerNet", "--arch-args", '{"width": 4}']
COMPRESS = ["compress.held_out=4", "compress.supernet_epochs=1", "compress.supernet_epochs_decay=0",
            "compress.finetune_epochs=1", "compress.finetune_epochs_decay=0",
            "compress.generations=2", "compress.population=6", "compress.parents=2",
            "compress.mutants=2", "compress.crossovers=2", "train.progress=false",
            "train.batch_size=4", "train.max_steps=2", "model.ndf=8", "model.disc_layers=2",
            "data.load_size=36", "data.crop_size=32", "data.num_workers=0", "train.n_samples=2",
            "train.device=cpu"]


def test_profile_counts_the_users_module(capsys):
    assert main(["profile", *ARCH, "--size", "32", "32", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    torch.manual_seed(0)
    plain = count_macs_both(TransformerNet(width=4), (1, 3, 32, 32))
    assert out["arch"] == "traced" and (out["macs"], out["macs_true"]) == plain
    assert out["widths"]["conv3.conv2d"] == 16


def test_weights_file_wrapped_or_plain_and_clear_errors(tmp_path, capsys):
    torch.manual_seed(1)
    net = TransformerNet(width=4)
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}},
               tmp_path / "wrapped.pth")
    torch.save(net.state_dict(), tmp_path / "plain.pth")
    for name in ("wrapped.pth", "plain.pth"):
        assert main(["profile", str(tmp_path / name), *ARCH, "--size", "32", "32", "--json"]) == 0
        capsys.readouterr()
    assert main(["profile", str(tmp_path / "plain.pth"), "--arch",
                 "user_models.johnson:TransformerNet", "--size", "32", "32"]) == 2
    err = capsys.readouterr().err  # built with the default width 32: the tensors do not fit
    assert "conv1.conv2d.weight" in err and "(4, 3, 9, 9)" in err
    assert main(["profile", "--arch", "no_such_module:Net"]) == 2
    assert "make it importable" in capsys.readouterr().err
    assert main(["profile", *ARCH, "--pin", "nope"]) == 2
    assert "not modules of this model" in capsys.readouterr().err
    assert main(["profile", *ARCH, "--ngf", "8"]) == 2
    assert "--arch-args" in capsys.readouterr().err


def test_export_a_users_weights_at_a_sub_network(tmp_path, capsys):
    torch.manual_seed(3)
    torch.save(TransformerNet(width=4).state_dict(), tmp_path / "w.pth")
    half = "_".join(["2", "4", "8"] + ["8"] * 5 + ["4", "2"])  # one width per group
    assert main(["export", str(tmp_path / "w.pth"), *ARCH, "--widths", half, "--size", "32",
                 "32", "--out", str(tmp_path / "g.onnx"), "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["arch_name"] == "traced" and meta["config"] == half
    assert meta["verify"]["max_abs"] <= 1e-4


def test_compress_a_users_generator_end_to_end(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("test", 2)):
        (tmp_path / "data" / split).mkdir(parents=True)
        for i in range(n):
            a = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            pair = Image.fromarray(np.concatenate([a, 255 - a], 1))
            pair.save(tmp_path / "data" / split / f"{i}.png")
    torch.manual_seed(2)
    net = TransformerNet(width=4)
    torch.save({"model": net.state_dict()}, tmp_path / "weights.pth")
    out = tmp_path / "run"
    # two search workers: the supernet travels to spawned processes pickled
    assert main(["compress", *ARCH, "--pin", "res5.conv2.conv2d", "--teacher",
                 str(tmp_path / "weights.pth"), "--data", str(tmp_path / "data"), "--budget",
                 "1/3", "--out", str(out), *COMPRESS, "compress.search_workers=2"]) == 0
    capsys.readouterr()
    teacher = load_generator(tmp_path / "run.teacher.pth")
    compact = load_generator(out / "compact.pth")
    assert isinstance(compact, TracedGenerator) and compact.arch["module"] == ARCH[1]
    assert "res5.conv2.conv2d" in teacher.analysis.pinned
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():  # the teacher is the user's module with the user's weights
        torch.testing.assert_close(teacher(x), net.eval()(x), atol=1e-5, rtol=1e-5)
    assert count_macs_both(compact, x)[0] <= count_macs_both(teacher, x)[0] / 3
    # later commands open the run's files with no flag (the module is importable)
    assert main(["export", str(out / "compact.pth"), "--out", str(tmp_path / "c.onnx"),
                 "--size", "32", "32"]) == 0
    assert (tmp_path / "c.onnx").is_file()
    assert main(["generate", str(out / "compact.pth"), "--input", str(tmp_path / "data" / "test"),
                 "--out", str(tmp_path / "gen")]) == 0
    assert len(list((tmp_path / "gen").glob("*.png"))) == 2


def _images(folder, n=2, size=32):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(
            folder / f"{i}.png")
    return folder


def test_generate_runs_a_users_weights(tmp_path, capsys):
    torch.manual_seed(6)
    net = TransformerNet(width=4).eval()
    torch.save({"state_dict": net.state_dict()}, tmp_path / "w.pth")
    photos = _images(tmp_path / "photos")
    assert main(["generate", str(tmp_path / "w.pth"), *ARCH, "--input", str(photos), "--out",
                 str(tmp_path / "out"), "--size", "32", "32"]) == 0
    assert "pytorch" in capsys.readouterr().out
    from gancompress.imaging import read_image
    x = read_image(photos / "0.png", 3, (32, 32)).unsqueeze(0)
    with torch.no_grad():
        expected = ((net(x)[0].clamp(-1, 1) + 1) / 2 * 255).permute(1, 2, 0).numpy()
    written = np.asarray(Image.open(tmp_path / "out" / "0.png")).astype(float)
    assert np.abs(written - expected).max() <= 1.0  # the user's module, uint8 truncation
    # an exported file needs no --arch; a bad class is one clear error
    import onnx  # a real (empty-graph) ONNX file: the file is sniffed by content
    onnx.save(onnx.helper.make_model(onnx.helper.make_graph([], "g", [], [])),
              str(tmp_path / "g.onnx"))
    assert main(["generate", str(tmp_path / "g.onnx"), *ARCH, "--input", str(photos), "--out",
                 str(tmp_path / "o2")]) == 2
    assert "exported onnx file, which runs without --arch" in capsys.readouterr().err
    assert main(["generate", str(tmp_path / "w.pth"), "--arch", "user_models.johnson:Nope",
                 "--input", str(photos), "--out", str(tmp_path / "o3")]) == 2
    assert "has no 'Nope'" in capsys.readouterr().err


def test_demo_serves_a_users_weights(tmp_path, monkeypatch, capsys):
    import gancompress.serve.server as server

    served = {}

    def fake_serve(demo, host, port, **kwargs):  # what the page would serve, without a server
        served["demo"] = demo
        served["out"] = demo.models["w"].session(torch.zeros(1, 3, 32, 32))

    monkeypatch.setattr(server, "serve", fake_serve)
    torch.manual_seed(7)
    net = TransformerNet(width=4).eval()
    torch.save(net.state_dict(), tmp_path / "w.pth")
    assert main(["demo", str(tmp_path / "w.pth"), *ARCH, "--size", "32", "32", "--backend",
                 "torch", "--threads", "1", "--cache", str(tmp_path / "cache")]) == 0
    demo = served["demo"]
    assert [m.label for m in demo.models.values()] == ["w.pth"]
    model = demo.models["w"]
    assert model.macs == count_macs_both(net, (1, 3, 32, 32))[0]
    with torch.no_grad():
        torch.testing.assert_close(served["out"].float(), net(torch.zeros(1, 3, 32, 32)),
                                   atol=1e-5, rtol=1e-5)
    assert not model.path.exists()  # the converted checkpoint was temporary
    assert main(["demo", str(tmp_path), *ARCH]) == 2
    assert "opens without --arch" in capsys.readouterr().err
    # a two-input generator without its condition hook: refused before serving
    from user_models.stargan import Generator
    torch.save(Generator(conv_dim=4, repeat_num=2).state_dict(), tmp_path / "star.pth")
    served.clear()
    assert main(["demo", str(tmp_path / "star.pth"), "--arch", "user_models.stargan:Generator",
                 "--arch-args", '{"conv_dim": 4, "repeat_num": 2}', "--size", "32", "32"]) == 2
    assert "forward takes 2 inputs" in capsys.readouterr().err and not served
    from gancompress.models.checkpoint import save_generator
    from gancompress.models.traced import load_traced
    save_generator(load_traced("user_models.stargan:Generator", {"conv_dim": 4, "repeat_num": 2},
                               tmp_path / "star.pth", [[1, 3, 32, 32], [1, 5]]),
                   tmp_path / "two.pth")  # converted with both inputs, no hook
    assert main(["demo", str(tmp_path / "two.pth"), "--size", "32", "32", "--backend", "torch",
                 "--cache", str(tmp_path / "cache")]) == 2
    assert "given the image only" in capsys.readouterr().err and not served


def test_a_two_input_generator_on_the_command_line_needs_its_condition(capsys):
    star = ["--arch", "user_models.stargan:Generator", "--arch-args",
            '{"conv_dim": 4, "repeat_num": 2}', "--size", "32", "32"]
    assert main(["profile", *star]) == 2
    err = capsys.readouterr().err
    assert "forward takes 2 inputs (x, c)" in err and "--condition pkg.mod:function" in err
    assert main(["profile", *star, "--condition", "user_models.stargan:first_domain",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["arch"] == "traced" and out["widths"]["main.0"] == 4
    assert main(["profile", *star, "--condition", "user_models.stargan:nope"]) == 2
    assert "has no 'nope'" in capsys.readouterr().err


def test_two_input_generator_in_generate_and_compress_needs_its_condition(tmp_path, capsys):
    torch.manual_seed(8)
    from user_models.stargan import Generator
    torch.save(Generator(conv_dim=4, repeat_num=2).state_dict(), tmp_path / "star.pth")
    star = ["--arch", "user_models.stargan:Generator", "--arch-args",
            '{"conv_dim": 4, "repeat_num": 2}']
    photos = _images(tmp_path / "photos", n=1)
    # converted from a checkpoint recorded with both inputs (no hook): generate says what to do
    from gancompress.models.checkpoint import save_generator
    from gancompress.models.traced import load_traced
    save_generator(load_traced(star[1], {"conv_dim": 4, "repeat_num": 2}, tmp_path / "star.pth",
                               [[1, 3, 32, 32], [1, 5]]), tmp_path / "two.pth")
    assert main(["generate", str(tmp_path / "two.pth"), "--input", str(photos), "--out",
                 str(tmp_path / "o1"), "--size", "32", "32"]) == 2
    assert "given the image only" in capsys.readouterr().err
    assert main(["generate", str(tmp_path / "star.pth"), *star, "--condition",
                 "user_models.stargan:first_domain", "--input", str(photos), "--out",
                 str(tmp_path / "o2"), "--size", "32", "32"]) == 0
    assert (tmp_path / "o2" / "0.png").is_file()
    data = make_inverted_pairs(tmp_path / "data", n=8)
    assert main(["compress", *star, "--teacher", str(tmp_path / "star.pth"), "--data", str(data),
                 "--budget", "1/3", "--out", str(tmp_path / "run0"), "--dry-run", *COMPRESS]) == 2
    assert "forward takes 2 inputs (x, c)" in capsys.readouterr().err
    assert main(["compress", *star, "--condition", "user_models.stargan:first_domain",
                 "--teacher", str(tmp_path / "star.pth"), "--data", str(data), "--budget",
                 "1/3", "--out", str(tmp_path / "run"), "--dry-run", *COMPRESS]) == 0
    assert "checks passed" in capsys.readouterr().out
