"""`gancompress stats` and `gancompress eval` end to end on tiny data, a tiny generator and
random evaluation-network weights in the published layouts (found through the real lookup)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from helpers import random_drn_file, random_inception_file

from gancompress.cli import main
from gancompress.files import sha256_file
from gancompress.metrics.cost import count_macs
from gancompress.models.checkpoint import save_generator
from gancompress.models.resnet import ResnetGenerator
from gancompress.weights import ENV_VAR

N_IMAGES = 2


def _image(rng: np.random.Generator, h: int, w: int) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.fixture
def aligned(tmp_path):
    """datasets/val/{0..3}.png: A|B side by side, 32x32 each half; labels/{0..3}.png 64x32."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    (root / "val").mkdir(parents=True)
    (tmp_path / "labels").mkdir()
    for i in range(N_IMAGES):
        _image(rng, 32, 64).save(root / "val" / f"{i}.png")
        label = rng.integers(0, 19, (32, 64), dtype=np.uint8)
        label[:4] = 255
        Image.fromarray(label).save(tmp_path / "labels" / f"{i}.png")
    return root


@pytest.fixture
def weights_env(monkeypatch):
    """Random Inception weights found through $GANCOMPRESS_WEIGHTS_DIR (the real lookup)."""
    path = random_inception_file()
    monkeypatch.setenv(ENV_VAR, str(path.parent))
    monkeypatch.setenv("XDG_CACHE_HOME", "/nonexistent-cache")
    return path


@pytest.fixture
def generator_file(tmp_path):
    model = ResnetGenerator(ngf=4, n_blocks=3).eval()
    path = tmp_path / "G.pth"
    save_generator(model, path)
    return path, model


def test_stats_bad_inputs(tmp_path, aligned, weights_env, capsys):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    rng = np.random.default_rng(1)
    _image(rng, 32, 32).save(mixed / "a.png")
    _image(rng, 48, 32).save(mixed / "b.png")
    assert main(["stats", "--data", str(mixed), "--load-size", "0", "--out",
                 str(tmp_path / "m.npz"), "--no-progress"]) == 2
    assert "different sizes" in capsys.readouterr().err and not (tmp_path / "m.npz").exists()
    assert main(["stats", "--data", str(aligned), "--phase", "val", "--out",
                 str(tmp_path / "s.npz")]) == 2
    assert "choose --side A or --side B" in capsys.readouterr().err
    assert main(["stats", "--data", str(mixed), "--out", str(tmp_path / "w.npz"),
                 "--inception-weights", str(tmp_path / "missing.pth")]) == 2
    err = capsys.readouterr().err
    assert "pytorch-fid/releases" in err and "missing.pth" in err


def test_stats_and_eval_end_to_end(tmp_path, aligned, weights_env, generator_file, capsys):
    model_path, model = generator_file
    drn = random_drn_file()
    args = ["eval", "--model", str(model_path), "--data", str(aligned), "--phase", "val",
            "--load-size", "32", "--batch-size", "4", "--no-progress",
            "--kid-subset-size", "2", "--kid-subsets", "5", "--latency-runs", "2",
            "--latency-warmup", "1"]
    code = main(args + ["--json","--metrics", "fid,kid,psnr,miou,macs,latency", "--drn-weights", str(drn),
                        "--labels", str(tmp_path / "labels"), "--miou-size", "64x32",
                        "--out", str(tmp_path / "result.json")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result == json.loads((tmp_path / "result.json").read_text())
    m = result["metrics"]
    assert set(m) == {"fid", "kid", "psnr", "miou", "macs", "latency"}
    assert np.isfinite(m["fid"]["value"]) and m["fid"]["value"] > 0
    assert m["fid"]["protocol"]["weights"]["sha256"] == sha256_file(weights_env)
    assert m["miou"]["protocol"]["weights"]["sha256"] == sha256_file(drn)
    assert 0 <= m["miou"]["value"] <= 100 and m["miou"]["num_images"] == N_IMAGES
    assert np.isfinite(m["kid"]["value"]) and m["kid"]["std"] >= 0
    assert 0 < m["psnr"]["value"] < 60
    assert m["macs"]["value"] == count_macs(model, (1, 3, 32, 32))
    assert m["latency"]["value"] > 0 and m["latency"]["device"] == "cpu"
    assert result["num_images"] == N_IMAGES
    assert any("only 2 images" in w for w in result["warnings"])

    # `stats` writes mu, sigma (+ features) and a record of how they were made ...
    ref = tmp_path / "ref_B.npz"
    assert main(["stats", "--data", str(aligned), "--side", "B", "--phase", "val", "--load-size",
                 "32", "--out", str(ref), "--save-features", "--no-progress"]) == 0
    with np.load(ref, allow_pickle=False) as data:
        assert data["mu"].shape == (2048,) and data["sigma"].shape == (2048, 2048)
        assert data["mu"].dtype == data["sigma"].dtype == np.float64
        assert data["features"].shape == (N_IMAGES, 2048)
        meta = json.loads(str(data["meta"]))
    assert meta["num_images"] == N_IMAGES and meta["image_size"] == [32, 32]
    assert meta["side"] == "B" and meta["mode"] == "aligned" and "bicubic" in meta["resize"]
    assert meta["weights"]["sha256"] == sha256_file(weights_env)
    err = capsys.readouterr().err
    assert f"warning: only {N_IMAGES} images for 2048-d features" in err  # too few: warned
    assert main(["stats", "--data", str(aligned), "--side", "B", "--phase", "val",
                 "--out", str(ref), "--no-progress"]) == 2  # never overwritten silently
    assert "already exists" in capsys.readouterr().err

    # ... and FID / KID against that file equal the values against the same images on the fly
    assert main(args + ["--json", "--metrics", "fid,kid", "--ref-stats", str(ref)]) == 0
    again = json.loads(capsys.readouterr().out)["metrics"]
    assert again["fid"]["value"] == pytest.approx(m["fid"]["value"], rel=1e-9, abs=1e-9)
    assert again["kid"]["value"] == pytest.approx(m["kid"]["value"], rel=1e-6, abs=1e-9)
    assert again["fid"]["protocol"]["reference_meta"]["num_images"] == N_IMAGES

    # human-readable table
    assert main(args + ["--metrics", "macs"]) == 0
    table = capsys.readouterr().out
    assert "macs" in table and "published convention" in table


def test_eval_bad_reference_statistics(tmp_path, aligned, weights_env, generator_file, capsys):
    model_path, _ = generator_file
    base = ["eval", "--model", str(model_path), "--data", str(aligned), "--phase", "val",
            "--load-size", "32", "--no-progress", "--metrics", "fid"]
    np.savez(tmp_path / "no_sigma.npz", mu=np.zeros(2048))
    assert main(base + ["--ref-stats", str(tmp_path / "no_sigma.npz")]) == 2
    assert "no 'sigma'" in capsys.readouterr().err
    np.savez(tmp_path / "small.npz", mu=np.zeros(64), sigma=np.eye(64))
    assert main(base + ["--ref-stats", str(tmp_path / "small.npz")]) == 2
    assert "64-d statistics" in capsys.readouterr().err
    assert main(base[:-1] + ["miou"]) == 2
    assert "--labels DIR" in capsys.readouterr().err
    assert main(base[:-1] + ["bleu"]) == 2
    assert "unknown metric" in capsys.readouterr().err


def test_eval_runs_on_the_requested_device(tmp_path, generator_file, capsys):
    model_path, _ = generator_file
    code = main(["eval", "--model", str(model_path), "--metrics", "macs", "--device",
                 "cuda" if torch.cuda.is_available() else "cpu", "--json", "--load-size", "32"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["macs"]["value"] > 0


def test_eval_swd_and_colour_against_the_real_targets(tmp_path, aligned, generator_file, capsys):
    """No weights needed; the values are those of the library functions on the generated
    images and the real B images (the reference side, as FID's)."""
    from gancompress.data.splits import image_batches, open_side
    from gancompress.metrics.colour import colour_distance
    from gancompress.metrics.swd import swd

    model_path, model = generator_file
    args = ["eval", "--model", str(model_path), "--data", str(aligned), "--phase", "val",
            "--load-size", "32", "--no-progress", "--json"]
    assert main(args + ["--metrics", "swd,colour,psnr"]) == 0
    result = json.loads(capsys.readouterr().out)
    m = result["metrics"]
    assert set(m) == {"swd", "colour", "psnr"}
    assert set(m["swd"]["levels"]) == {"32", "16"}
    assert m["swd"]["protocol"]["settings"]["patches_per_image"] == 128
    source = torch.cat(list(image_batches(open_side(aligned, "A", ["val"], 32, 3), 8)))
    target = torch.cat(list(image_batches(open_side(aligned, "B", ["val"], 32, 3), 8)))
    with torch.no_grad():
        fake = model(source)
    assert m["swd"]["value"] == pytest.approx(swd(fake, target), rel=1e-6)
    assert m["colour"]["value"] == pytest.approx(colour_distance(fake, target), rel=1e-6)
    assert m["swd"]["value"] > 0 and m["colour"]["value"] > 0

    single = tmp_path / "single"
    single.mkdir()
    _image(np.random.default_rng(2), 32, 32).save(single / "a.png")
    assert main(["eval", "--model", str(model_path), "--data", str(single), "--load-size", "32",
                 "--no-progress", "--metrics", "swd"]) == 2
    assert "without targets" in capsys.readouterr().err
