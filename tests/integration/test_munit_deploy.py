"""MUNIT deployment: ONNX export with the style code as a second input (verified), generate with
random or reference styles (--n-styles K writes K distinct translations per input)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import REPO
from gancompress.deploy.runtime import open_model
from gancompress.models import build_generator
from gancompress.models.checkpoint import save_generator
from gancompress.training.parts import kaiming_init


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gancompress", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=300)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(checkpoint, ONNX file, export stdout): one export for the module (it takes seconds)."""
    folder = tmp_path_factory.mktemp("munit")
    torch.manual_seed(3)
    g = kaiming_init(build_generator("munit", ngf=4, mlp_dim=8, n_res=2, conv="separable"))
    path = folder / "munit.pth"
    save_generator(g.eval(), path)
    onnx = folder / "munit.onnx"
    done = _cli("export", str(path), "--out", str(onnx), "--size", "32", "32")
    assert done.returncode == 0, done.stderr
    return path, onnx, done.stdout


@pytest.fixture
def munit_file(exported):
    return exported[0]


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(2):
        pixels = np.random.default_rng(i).integers(0, 256, (48, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    return folder


@pytest.mark.slow
def test_onnx_export_takes_the_style_code_as_second_input(exported):
    munit_file, out, stdout = exported
    assert "style: (B, 8, 1, 1)" in stdout
    onnx_runner, torch_runner = open_model(out), open_model(munit_file)
    assert onnx_runner.extra_inputs == {"style": (8, 1, 1)} == torch_runner.extra_inputs
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    style = torch.randn(3, 8, 1, 1)
    torch.testing.assert_close(onnx_runner(x, style), torch_runner(x, style), atol=1e-4,
                               rtol=0)
    other = torch.randn(3, 8, 1, 1)
    assert not torch.allclose(onnx_runner(x, style), onnx_runner(x, other))


def test_torchscript_and_int8_exports_are_refused_with_a_reason(munit_file, tmp_path):
    done = _cli("export", str(munit_file), "--out", str(tmp_path / "m.pt"), "--size", "32", "32")
    assert done.returncode == 2 and "--format onnx" in done.stderr
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("kind", ["pth", "onnx"])
@pytest.mark.slow
def test_generate_writes_a_row_of_distinct_translations(exported, images, tmp_path, kind):
    model = exported[0] if kind == "pth" else exported[1]
    out = tmp_path / f"out_{kind}"
    done = _cli("generate", str(model), "--input", str(images), "--out", str(out), "--size", "32",
                "32", "--n-styles", "4")
    assert done.returncode == 0, done.stderr
    row = np.asarray(Image.open(out / "0.png")).astype(int)
    assert row.shape == (32, 4 * 32, 3)
    tiles = [row[:, 32 * k:32 * (k + 1)] for k in range(4)]
    for a in range(4):
        for b in range(a + 1, 4):
            assert np.abs(tiles[a] - tiles[b]).mean() > 0.5, (a, b)
    again = tmp_path / f"again_{kind}"  # seeded: the same styles again
    assert _cli("generate", str(model), "--input", str(images), "--out", str(again), "--size",
                "32", "32", "--n-styles", "4").returncode == 0
    assert np.array_equal(np.asarray(Image.open(again / "0.png")), row.astype(np.uint8))


def test_generate_with_a_reference_style(munit_file, images, tmp_path):
    out = tmp_path / "out"
    done = _cli("generate", str(munit_file), "--input", str(images), "--out", str(out), "--size",
                "32", "32", "--style", str(images / "1.png"))
    assert done.returncode == 0, done.stderr
    assert np.asarray(Image.open(out / "0.png")).shape == (32, 32, 3)
    done = _cli("generate", str(munit_file), "--input", str(images), "--out", str(tmp_path / "x"),
                "--style", str(images / "1.png"), "--n-styles", "2")
    assert done.returncode == 2 and "with --style IMAGE there is one" in done.stderr


def test_style_options_on_a_one_input_generator_are_user_errors(images, tmp_path):
    path = tmp_path / "resnet.pth"
    save_generator(build_generator("resnet", ngf=4, n_blocks=3).eval(), path)
    done = _cli("generate", str(path), "--input", str(images), "--out", str(tmp_path / "o"),
                "--n-styles", "3")
    assert done.returncode == 2 and "multimodal" in done.stderr


def test_eval_translates_with_seeded_random_styles(munit_file, tmp_path):
    from gancompress.cli import main
    from helpers import make_pairs

    data = make_pairs(tmp_path / "data")
    out = tmp_path / "eval.json"
    args = ["eval", "--model", str(munit_file), "--data", str(data), "--metrics", "psnr,macs",
            "--json", "--out", str(out)]
    assert main(args) == 0
    first = json.loads(out.read_text())
    assert "seeded 233" in first["style_protocol"]
    assert main([*args, "--force"]) == 0  # the same styles again: the same score
    assert json.loads(out.read_text())["metrics"]["psnr"]["value"] == \
        first["metrics"]["psnr"]["value"]
