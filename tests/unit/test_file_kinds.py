"""The one file sniffer (sniff.py) and the one checked image reader (imaging.open_checked):
files named for what they are where a model or an image is expected, the pixel limit checked
from the header, EXIF orientation for photos only, 16-bit and palette images (issue 26)."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from helpers import png_declaring
import torch
from PIL import Image

from gancompress.errors import UserError
from gancompress.imaging import (
    DEFAULT_MAX_PIXELS,
    ImageTooLarge,
    check_images,
    image_size,
    open_checked,
    open_image,
)
from gancompress.labelmaps import read_id_map, read_label_ids, read_label_input
from gancompress.models import build_generator
from gancompress.models.checkpoint import load_generator, save_generator
from gancompress.sniff import declared_size, model_kind, sniff
from gancompress.weights import read_state_dict


# ----------------------------------------------------------------------------------------------
# Tiny crafted files



def encoded(img: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def top_white_jpeg(orientation: int) -> bytes:
    """32 wide x 16 high, top half white, bottom black, with an EXIF orientation tag."""
    array = np.zeros((16, 32, 3), np.uint8)
    array[:8] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encoded(Image.fromarray(array), "JPEG", quality=95, exif=exif.tobytes())


def onnx_file(path) -> None:
    """A valid ONNX model (Identity), made with onnx's helpers (no exporter run)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, producer_name="test"), str(path))


def torchscript_file(path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit: still the format we read
        torch.jit.save(torch.jit.script(torch.nn.Conv2d(3, 3, 1)), str(path))


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "g.pth"
    save_generator(build_generator("resnet", ngf=4, n_blocks=3), path)
    return path


# ----------------------------------------------------------------------------------------------
# The sniffer


def test_sniffer_tells_each_kind(tmp_path, checkpoint):
    onnx_file(tmp_path / "m.onnx")
    torchscript_file(tmp_path / "m.pt")
    torch.save({"w": torch.zeros(2)}, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    (tmp_path / "ir.xml").write_text('<?xml version="1.0"?>\n<net name="g" version="11">\n</net>\n')
    (tmp_path / "ir.bin").write_bytes(bytes(range(7, 200)))
    (tmp_path / "t.txt").write_text("labels 1 2 3\n")
    (tmp_path / "empty").write_bytes(b"")
    np.savez(tmp_path / "a.npz", x=np.zeros(3))
    kinds = {name: sniff(tmp_path / name).kind for name in
             ("m.onnx", "m.pt", "legacy.pth", "ir.xml", "ir.bin", "t.txt", "empty", "a.npz")}
    assert kinds == {"m.onnx": "onnx", "m.pt": "torchscript", "legacy.pth": "pickle",
                     "ir.xml": "openvino", "ir.bin": "openvino-bin", "t.txt": "text",
                     "empty": "empty", "a.npz": "zip"}
    assert sniff(checkpoint).kind == "checkpoint"
    assert sniff(checkpoint.read_bytes()[:3000]).kind == "zip-damaged"
    for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"):
        found = sniff(encoded(Image.new("RGB", (4, 4)), fmt))
        assert found.kind == "image" and found.detail == fmt
    assert sniff(tmp_path).kind == "folder" and sniff(tmp_path / "none").kind == "missing"
    assert model_kind(tmp_path / "m.onnx") == "onnx"
    assert model_kind(checkpoint) == "checkpoint"


def test_declared_size_of_each_header():
    for fmt in ("PNG", "GIF", "BMP", "WEBP", "JPEG"):
        assert declared_size(io.BytesIO(encoded(Image.new("RGB", (21, 13)), fmt))) == (21, 13)
    # a JPEG whose frame header comes after a large EXIF segment
    exif = Image.Exif()
    exif[0x010E] = "x" * 30000
    data = encoded(Image.new("RGB", (21, 13)), "JPEG", exif=exif.tobytes())
    assert declared_size(io.BytesIO(data)) == (21, 13)
    assert declared_size(io.BytesIO(png_declaring(50000, 50000))) == (50000, 50000)


# ----------------------------------------------------------------------------------------------
# Files given where a checkpoint is read


def test_onnx_given_as_checkpoint_is_named_not_called_pickled_code(tmp_path):
    onnx_file(tmp_path / "m.onnx")
    with pytest.raises(UserError) as err:
        load_generator(tmp_path / "m.onnx")
    text = str(err.value)
    assert "is an ONNX model, not a PyTorch checkpoint" in text and "pickled" not in text
    assert "generate" in text and "\n" not in text


def test_png_given_as_checkpoint_is_named(tmp_path):
    (tmp_path / "x.png").write_bytes(encoded(Image.new("RGB", (8, 8))))
    with pytest.raises(UserError, match="is a PNG image, not a PyTorch checkpoint.*--input") as err:
        load_generator(tmp_path / "x.png")
    assert "pickled" not in str(err.value)
    with pytest.raises(UserError, match="is a PNG image"):
        read_state_dict(tmp_path / "x.png")  # published weight files too


def test_torchscript_given_as_checkpoint_is_named(tmp_path):
    torchscript_file(tmp_path / "m.pt")
    with pytest.raises(UserError, match="is a TorchScript program.*not a PyTorch checkpoint") as e:
        load_generator(tmp_path / "m.pt")
    assert "is the file complete" not in str(e.value)


def test_text_given_as_checkpoint_is_named(tmp_path):
    (tmp_path / "notes.pth").write_text("my generator\n")
    with pytest.raises(UserError, match="is a text file \\(it begins 'my generator'\\), not a "
                                        "PyTorch checkpoint"):
        load_generator(tmp_path / "notes.pth")


def test_checkpoints_torch_reads_are_still_read(tmp_path, checkpoint):
    model = build_generator("resnet", ngf=4, n_blocks=3)
    torch.save(model.state_dict(), tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    assert set(read_state_dict(tmp_path / "legacy.pth")) == set(model.state_dict())
    assert load_generator(checkpoint).arch_name == "resnet"
    (tmp_path / "cut.pth").write_bytes(checkpoint.read_bytes()[:4000])
    with pytest.raises(UserError, match="cannot read checkpoint"):  # damage: torch's words
        load_generator(tmp_path / "cut.pth")


# ----------------------------------------------------------------------------------------------
# The checked image reader


def test_pixel_bomb_is_refused_from_the_header(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_declaring(50000, 50000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither Pillow's error nor its warning escapes
        with pytest.raises(ImageTooLarge, match=f"50000x50000 = 2,500,000,000 pixels, over the "
                                                f"limit of {DEFAULT_MAX_PIXELS:,}.*"
                                                f"GANCOMPRESS_MAX_IMAGE_PIXELS"):
            open_image(path)
        with pytest.raises(ImageTooLarge):
            read_label_ids(path)
        with pytest.raises(ImageTooLarge):
            image_size(path)
    with pytest.raises(UserError, match="1 of 1 input image.*50000x50000"):
        check_images([path])


def test_pillow_bomb_error_of_unparsed_formats_becomes_the_same_refusal(tmp_path, monkeypatch):
    import gancompress.imaging as imaging

    monkeypatch.setattr(imaging, "declared_size", lambda handle: None)  # as for TIFF, ...
    with pytest.raises(ImageTooLarge, match="declares 2,500,000,000 pixels, over the limit"):
        open_checked(png_declaring(50000, 50000), name="upload")


def test_limit_setting_and_pillow_warning_range(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after
    big = png_declaring(10000, 10000)  # 1e8 pixels: over Pillow's warning level, under ours
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert open_checked(big, header_only=True).size == (10000, 10000)
        monkeypatch.setenv("GANCOMPRESS_MAX_IMAGE_PIXELS", "3000000000")
        assert open_checked(png_declaring(50000, 50000), header_only=True).size == (50000, 50000)
        monkeypatch.setenv("GANCOMPRESS_MAX_IMAGE_PIXELS", "1000")
        with pytest.raises(ImageTooLarge, match="over the limit of 1,000 pixels"):
            open_checked(encoded(Image.new("RGB", (40, 40))))
    monkeypatch.setenv("GANCOMPRESS_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(UserError, match="GANCOMPRESS_MAX_IMAGE_PIXELS='lots': give a whole"):
        open_checked(encoded(Image.new("RGB", (4, 4))))


def test_exif_orientation_is_applied_to_photos_only(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(top_white_jpeg(6))  # 6: shown rotated 90 degrees clockwise
    photo = np.asarray(open_image(path))
    assert photo.shape == (32, 16, 3)  # upright: taller than wide
    assert photo[:, -4:].mean() > 200 and photo[:, :4].mean() < 60  # the white half on the right
    labels = np.zeros((16, 32), np.uint8)
    labels[:8] = 3
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(labels).save(tmp_path / "labels.png", exif=exif.tobytes())
    ids = read_label_ids(tmp_path / "labels.png")
    assert ids.shape == (16, 32) and (ids[:8] == 3).all()  # ids keep their stored layout


def test_sixteen_bit_and_palette_images(tmp_path):
    wide = np.array([[0, 257 * 100, 65535]], np.uint16)
    Image.fromarray(wide).save(tmp_path / "grey16.png")
    assert np.asarray(open_image(tmp_path / "grey16.png", 1)).tolist() == [[0, 100, 255]]
    Image.fromarray(np.array([[0, 300, 60000]], np.uint16)).save(tmp_path / "ids16.png")
    palette = Image.fromarray(np.array([[0, 1, 2]], np.uint8), mode="P")
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    palette.save(tmp_path / "palette.png")
    assert np.asarray(open_image(tmp_path / "palette.png")).tolist() == \
        [[[255, 0, 0], [0, 255, 0], [0, 0, 255]]]  # a photo: its colours
    assert read_id_map(tmp_path / "palette.png").tolist() == [[0, 1, 2]]  # labels: the ids
    assert read_label_ids(tmp_path / "ids16.png").tolist() == [[0, 300, 60000]]


def test_truncated_corrupt_and_non_image_files_are_one_line(tmp_path):
    good = encoded(Image.fromarray(np.arange(768, dtype=np.uint8).reshape(16, 16, 3)))
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(UserError, match="cannot read image .*cut.png: .*corrupt, truncated"):
        open_image(tmp_path / "cut.png")
    onnx_file(tmp_path / "m.onnx")
    with pytest.raises(UserError, match="m.onnx: it is an ONNX model, not an image"):
        open_image(tmp_path / "m.onnx")
    with pytest.raises(UserError, match="is a folder"):
        open_image(tmp_path)


def test_text_file_given_as_label_map_is_named(tmp_path):
    (tmp_path / "labels.txt").write_text("road road car\n")
    with pytest.raises(UserError, match="cannot read label map .*labels.txt: it is a text file"):
        read_label_input(tmp_path / "labels.txt", label_nc=4, edges=False)
    with pytest.raises(UserError, match="it is a text file"):
        read_id_map(tmp_path / "labels.txt")
