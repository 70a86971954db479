"""Weight-file lookup (explicit > --weights-dir > env var > cache), missing-file messages,
strict layout validation and SHA-256 records, with random weights in the published layouts.

The random Inception / DRN weight files (published key names) come from helpers.py.
"""
from __future__ import annotations

import hashlib
import json

import pytest
import torch

from gancompress.errors import UserError
from gancompress.files import sha256_file
from gancompress.metrics.drn import DRNSegD105
from gancompress.metrics.inception import FIDInceptionV3
from helpers import FIXTURES, random_drn_file, random_inception_file
from gancompress.weights import (
    DRN_D_105_CITYSCAPES,
    ENV_VAR,
    INCEPTION_FID,
    find_weights,
    load_published,
    read_state_dict,
)

def _layout(name: str) -> dict[str, list[int]]:
    return json.loads((FIXTURES / name).read_text())["tensors"]


# ----------------------------------------------------------------------------- layouts
def test_inception_layout_matches_published_file_exactly():
    state = FIDInceptionV3().state_dict()
    layout = _layout("pt_inception_layout.json")
    assert list(state) == list(layout)  # same names, same order (566 tensors)
    assert {k: list(v.shape) for k, v in state.items()} == layout
    assert layout["fc.weight"] == [1008, 2048] and not any("AuxLogits" in k for k in layout)


def test_drn_layout_matches_published_file_exactly():
    state = DRNSegD105().state_dict()
    layout = _layout("drn_d_105_cityscapes_layout.json")
    assert list(state) == list(layout)
    assert {k: list(v.shape) for k, v in state.items()} == layout


# ----------------------------------------------------------------------------- lookup
@pytest.fixture
def folders(tmp_path, monkeypatch):
    """Four places holding a file named like the Inception weights, each with distinct bytes."""
    places = {}
    for place in ("explicit", "weights_dir", "env", "cache"):
        folder = tmp_path / place
        (folder / "gancompress" if place == "cache" else folder).mkdir(parents=True)
        target = (folder / "gancompress" if place == "cache" else folder) / INCEPTION_FID.name
        target.write_bytes(place.encode())
        places[place] = target
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return places


def test_lookup_order_explicit_then_dir_then_env_then_cache(folders, tmp_path, monkeypatch):
    name = INCEPTION_FID.name
    kwargs = dict(explicit=folders["explicit"], weights_dir=tmp_path / "weights_dir")
    assert find_weights(name, **kwargs) == folders["explicit"]
    kwargs.pop("explicit")
    assert find_weights(name, **kwargs) == folders["weights_dir"]
    folders["weights_dir"].unlink()  # not in --weights-dir: falls through to the env var
    assert find_weights(name, **kwargs) == folders["env"]
    monkeypatch.delenv(ENV_VAR)
    assert find_weights(name, **kwargs) == folders["cache"]


def test_missing_file_message_says_where_to_get_and_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(UserError) as err:
        find_weights(INCEPTION_FID.name, weights_dir=tmp_path / "w")
    msg = str(err.value)
    assert "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" \
           "pt_inception-2015-12-05-6726825d.pth" in msg
    for place in (tmp_path / "w", tmp_path / "env", tmp_path / "cache" / "gancompress"):
        assert str(place / INCEPTION_FID.name) in msg
    assert "--weights-dir" in msg and ENV_VAR in msg and "--inception-weights" in msg
    with pytest.raises(UserError, match=r"go\.yf\.io/drn-cityscapes-models.*--drn-weights"):
        find_weights(DRN_D_105_CITYSCAPES.name)


def test_explicit_missing_file_is_an_error_not_a_fallback(folders, tmp_path):
    with pytest.raises(UserError, match="nope.pth is not found"):
        find_weights(INCEPTION_FID.name, explicit=tmp_path / "nope.pth",
                     weights_dir=tmp_path / "weights_dir")


# ----------------------------------------------------------------------------- strict loading
def test_strict_load_records_sha256():
    path = random_inception_file()
    model = FIDInceptionV3()
    record = load_published(model, INCEPTION_FID, explicit=path)
    assert record.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == sha256_file(path)
    assert record.path == str(path) and record.name == INCEPTION_FID.name
    saved = torch.load(path, weights_only=True)
    assert torch.equal(model.Mixed_7c.branch_pool.conv.weight, saved["Mixed_7c.branch_pool.conv.weight"])


def test_module_prefix_is_tolerated_for_drn(tmp_path):
    path = random_drn_file()
    assert all(k.startswith("module.") for k in torch.load(path, weights_only=True))
    model = DRNSegD105()
    record = load_published(model, DRN_D_105_CITYSCAPES, weights_dir=path.parent)
    assert record.sha256 == sha256_file(path)
    assert torch.equal(model.up.weight, read_state_dict(path)["up.weight"])


@pytest.mark.parametrize("damage", ["drop", "extra", "shape", "imagenet"])
def test_wrong_layout_is_refused(tmp_path, damage):
    state = FIDInceptionV3().state_dict()
    if damage == "drop":
        state.pop("Mixed_6e.branch7x7dbl_3.bn.running_var")
    elif damage == "extra":
        state["AuxLogits.fc.weight"] = torch.zeros(1000, 768)
    elif damage == "shape":
        state["fc.weight"] = torch.zeros(1000, 2048)
    else:  # the torchvision ImageNet Inception: 1000 classes and an aux classifier
        state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)
        state["AuxLogits.conv0.conv.weight"] = torch.zeros(128, 768, 1, 1)
    path = tmp_path / INCEPTION_FID.name
    torch.save(state, path)
    with pytest.raises(UserError, match="does not have the expected layout") as err:
        load_published(FIDInceptionV3(), INCEPTION_FID, explicit=path)
    expected = {"drop": "missing", "extra": "unexpected", "shape": "wrong shape",
                "imagenet": "unexpected"}[damage]
    assert expected in str(err.value)


def test_not_a_weights_file_is_refused(tmp_path):
    path = tmp_path / "x.pth"
    torch.save({"epoch": 3}, path)
    with pytest.raises(UserError, match="not a weights file"):
        read_state_dict(path)
    path.write_bytes(b"garbage")
    with pytest.raises(UserError) as err:
        read_state_dict(path)
    assert str(path) in str(err.value)
