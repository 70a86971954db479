"""Property-based fuzzing of the checkpoint and image readers (issue 26 item 5): random bytes,
truncations and mutated headers of real small files end in success or one UserError, never
another exception. Deterministic (derandomized, no example database) and bounded, for CI."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from gancompress.errors import UserError
from gancompress.imaging import open_checked, open_image
from gancompress.labelmaps import read_label_ids
from gancompress.models import build_generator
from gancompress.models.checkpoint import load_generator, save_generator
from gancompress.sniff import sniff

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def _images() -> list[bytes]:
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8))
    out = []
    for fmt, img, options in (("PNG", photo, {}), ("JPEG", photo, {"quality": 80}),
                              ("GIF", photo.convert("P"), {}), ("BMP", photo, {}),
                              ("TIFF", photo, {}), ("WEBP", photo, {}),
                              ("PNG", Image.fromarray(np.arange(120, dtype=np.uint16)
                                                      .reshape(12, 10) * 500), {})):
        buffer = io.BytesIO()
        img.save(buffer, format=fmt, **options)
        out.append(buffer.getvalue())
    return out


IMAGES = _images()


def mutated(data: bytes, edits: list[tuple[int, int]], span: int) -> bytes:
    out = bytearray(data)
    for pos, value in edits:
        out[pos % min(span, len(out))] = value
    return bytes(out)


def image_inputs() -> st.SearchStrategy[bytes]:
    files = st.sampled_from(IMAGES)
    edits = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1,
                     max_size=6)
    return st.one_of(
        st.binary(max_size=600),
        st.tuples(files, st.integers(0, 2000)).map(lambda t: t[0][:t[1]]),
        st.tuples(files, edits).map(lambda t: mutated(t[0], t[1], 64)),  # headers
        st.tuples(files, edits).map(lambda t: mutated(t[0], t[1], 10**6)),  # anywhere
    )


def _ends_well(call) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. Pillow's notes on odd metadata: not failures
        try:
            call()
        except UserError as err:
            assert str(err) and "\n" not in str(err)


@FUZZ
@given(data=image_inputs())
def test_image_reader_ends_in_an_image_or_one_user_error(tmp_path, data):
    path = tmp_path / "input.png"
    path.write_bytes(data)
    _ends_well(lambda: open_image(path, 3))
    _ends_well(lambda: open_image(path, 1))
    _ends_well(lambda: read_label_ids(path))
    _ends_well(lambda: open_checked(data, name="upload", limit=4096, orient=True))
    sniff(data)  # the sniffer never raises on content


class Files(list):
    """Files' bytes, shown by their sizes in a failing example (not 100 kB of bytes)."""

    def __repr__(self) -> str:
        return f"<files of {[len(b) for b in self]} bytes>"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> list[bytes]:
    folder = tmp_path_factory.mktemp("ckpt")
    model = build_generator("resnet", ngf=2, n_blocks=3)
    save_generator(model, folder / "ours.pth")
    torch.save(model.state_dict(), folder / "legacy.pth", _use_new_zipfile_serialization=False)
    torch.save({"state_dict": model.state_dict()}, folder / "wrapped.pth")
    return Files((folder / name).read_bytes() for name in ("ours.pth", "legacy.pth", "wrapped.pth"))


@FUZZ
@given(choice=st.integers(0, 2), how=st.sampled_from(["random", "cut", "head", "tail", "any"]),
       cut=st.integers(0, 10**6), noise=st.binary(max_size=400),
       edits=st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 255)), min_size=1,
                      max_size=8))
def test_checkpoint_reader_ends_in_a_model_or_one_user_error(tmp_path, checkpoints, choice, how,
                                                              cut, noise, edits):
    data = checkpoints[choice]
    if how == "random":
        data = noise
    elif how == "cut":
        data = data[:cut % len(data)]
    elif how == "head":  # the zip's local header and data.pkl / the pickle's opening
        data = mutated(data, edits, 1200)
    elif how == "tail":  # the zip directory
        data = bytes(reversed(mutated(bytes(reversed(data)), edits, 600)))
    else:
        data = mutated(data, edits, len(data))
    path = tmp_path / "g.pth"
    path.write_bytes(data)
    _ends_well(lambda: load_generator(path))
