"""Commands given a file of the wrong kind, or a hostile image, end in one line saying what the
file is and what the command expects (issue 26: the sniffer and the checked image reader at
every command that takes a model or an image)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import png_declaring
import torch
from PIL import Image

from gancompress.cli import main
from gancompress.models import build_generator
from gancompress.models.checkpoint import save_generator


def cli(*argv: str) -> int:
    try:
        return main(list(argv))
    except SystemExit as exit_:  # argparse errors
        return int(exit_.code)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]



@pytest.fixture
def files(tmp_path, one_thread) -> dict[str, Path]:
    import onnx
    from onnx import TensorProto, helper

    paths = {"pth": tmp_path / "g.pth", "png": tmp_path / "x.png", "onnx": tmp_path / "g.onnx",
             "pt": tmp_path / "g.pt", "bomb": tmp_path / "bomb" / "bomb.png"}
    save_generator(build_generator("resnet", ngf=4, n_blocks=3), paths["pth"],
                   meta={"config": {"data": {"crop_size": 32}}})
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(paths["png"])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 32, 32])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph), str(paths["onnx"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(torch.nn.Conv2d(3, 3, 1)), str(paths["pt"]))
    paths["bomb"].parent.mkdir()
    paths["bomb"].write_bytes(png_declaring(50000, 50000))
    return paths


def test_eval_given_onnx_or_png_says_what_the_file_is(files, capsys):
    assert cli("eval", str(files["onnx"]), "--metrics", "macs") == 2
    line = one_error_line(capsys)
    assert "g.onnx is an ONNX model, not a PyTorch checkpoint" in line
    assert "pickled" not in line and "run code" not in line
    assert cli("eval", str(files["png"]), "--metrics", "macs") == 2
    line = one_error_line(capsys)
    assert "x.png is a PNG image, not a PyTorch checkpoint" in line and "pickled" not in line


def test_export_given_torchscript_says_so(files, tmp_path, capsys):
    assert cli("export", str(files["pt"]), "--out", str(tmp_path / "y.onnx")) == 2
    line = one_error_line(capsys)
    assert "g.pt is a TorchScript program" in line and "not a PyTorch checkpoint" in line
    assert "is the file complete" not in line


@pytest.mark.parametrize("extra", [[], ["--format", "onnx"]])
def test_export_out_naming_a_folder_does_not_offer_overwrite(files, tmp_path, capsys, extra):
    folder = tmp_path / "exports"
    folder.mkdir()
    assert cli("export", str(files["pth"]), "--out", str(folder), *extra) == 2
    line = one_error_line(capsys)
    assert f"--out {folder} is a folder; give a file name, e.g. --out {folder / 'g.onnx'}" in line
    assert "--overwrite" not in line
    assert cli("export", str(files["pth"]), "--out", str(folder), "--overwrite", *extra) == 2
    assert "is a folder" in one_error_line(capsys)


def test_generate_given_an_image_as_model_names_it(files, tmp_path, capsys):
    assert cli("generate", str(files["png"]), "--input", str(files["png"]),
               "--out", str(tmp_path / "o")) == 2
    assert "x.png is a PNG image, not a generator file" in one_error_line(capsys)
    assert cli("generate", str(files["onnx"]), "--input", str(files["png"]),  # accepted
               "--out", str(tmp_path / "o")) == 0


def test_bomb_inputs_are_one_line_in_generate_and_export_calib(files, tmp_path, capsys):
    assert cli("generate", str(files["pth"]), "--input", str(files["bomb"]),
               "--out", str(tmp_path / "o")) == 2
    line = one_error_line(capsys)
    assert "50000x50000 = 2,500,000,000 pixels, over the limit" in line
    assert not (tmp_path / "o").exists()
    assert cli("export", str(files["pth"]), "--out", str(tmp_path / "q.onnx"), "--int8",
               "--calib", str(files["bomb"].parent)) == 2
    line = one_error_line(capsys)
    assert "bomb.png is 50000x50000" in line and "GANCOMPRESS_MAX_IMAGE_PIXELS" in line
    assert not (tmp_path / "q.onnx").exists()


def test_train_and_eval_data_with_a_bomb_is_one_line(files, tmp_path, capsys):
    from helpers import make_pairs

    data = make_pairs(tmp_path / "data")
    (data / "train" / "0.png").write_bytes(png_declaring(50000, 50000))
    (data / "test" / "0.png").write_bytes(png_declaring(50000, 50000))
    assert cli("train", "--preset", "demo", "--data", str(data), "--out", str(tmp_path / "run"),
               "train.max_steps=1") == 2
    assert "0.png is 50000x50000 = 2,500,000,000 pixels" in one_error_line(capsys)
    assert cli("eval", str(files["pth"]), "--data", str(data), "--metrics", "psnr") == 2
    assert "50000x50000" in capsys.readouterr().err


def test_munit_style_bomb_is_one_line(files, tmp_path, capsys, one_thread):
    munit = tmp_path / "munit.pth"
    save_generator(build_generator("munit", ngf=4, mlp_dim=8, n_res=2), munit)
    assert cli("generate", str(munit), "--input", str(files["png"]), "--out", str(tmp_path / "o"),
               "--size", "32", "32", "--style", str(files["bomb"])) == 2
    assert "bomb.png is 50000x50000" in one_error_line(capsys)


def test_text_label_map_is_named(tmp_path, capsys, one_thread):
    spade = tmp_path / "spade.pth"
    save_generator(build_generator("spade", in_channels=4, ngf=4, instance_edge=False), spade)
    (tmp_path / "labels.txt").write_text("road road sky\n")
    assert cli("generate", str(spade), "--input", str(tmp_path / "labels.txt"),
               "--out", str(tmp_path / "o"), "--size", "64", "64") == 2
    line = one_error_line(capsys)
    assert "labels.txt: it is a text file (it begins 'road road sky'), not an image" in line
    assert "check the path and the device" not in line
