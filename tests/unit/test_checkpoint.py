"""Published checkpoint formats reproduce the recorded outputs; our format round-trips;
crafted or mismatched files are refused with clear messages."""
from __future__ import annotations

import json
import pickle

import pytest
import torch
from helpers import OFFICIAL

from gancompress.cli import main
from gancompress.errors import UserError
from gancompress.metrics.cost import count_params
from gancompress.models.checkpoint import load_generator, save_generator
from gancompress.models.resnet import ResnetGenerator, encode_config

MANIFEST = json.loads((OFFICIAL / "MANIFEST.json").read_text())
RESNET_FIXTURES = sorted(k for k, v in MANIFEST.items() if v.get("family", "resnet") == "resnet")


@pytest.mark.parametrize("name", RESNET_FIXTURES)
def test_published_fixture_outputs_reproduced(name):
    model = load_generator(OFFICIAL / f"{name}.pth")
    io = torch.load(OFFICIAL / f"{name}.io.pt", weights_only=True)
    with torch.no_grad():
        out = model(io["input"])
    assert (out - io["output"]).abs().max().item() <= 1e-5
    assert count_params(model) == MANIFEST[name]["params"]
    assert not model.training
    spec = MANIFEST[name]
    if "config_str" in spec:
        assert encode_config(model.arch["widths"]) == spec["config_str"]
        assert model.arch["conv"] == "separable"
    if "norm" in spec:
        assert model.arch["norm"] == spec["norm"]


@pytest.mark.parametrize("name", ["resnet9_batch_dropout_pix2pix", "ganc_compressed_16_16_32_16_32_32_16_16"])
def test_convert_then_load_without_flags(tmp_path, name, capsys):
    out = tmp_path / "ours.pth"
    assert main(["convert", str(OFFICIAL / f"{name}.pth"), "--out", str(out)]) == 0
    model = load_generator(out)
    io = torch.load(OFFICIAL / f"{name}.io.pt", weights_only=True)
    with torch.no_grad():
        assert (model(io["input"]) - io["output"]).abs().max().item() <= 1e-5
    assert model.source_format.startswith("gancompress")
    # a second convert onto the same file is refused, the file is untouched
    before = out.read_bytes()
    assert main(["convert", str(OFFICIAL / f"{name}.pth"), "--out", str(out)]) == 2
    assert out.read_bytes() == before


def test_module_prefix_and_stray_instance_norm_stats(tmp_path):
    state = torch.load(OFFICIAL / "resnet9_instance_cyclegan.pth", weights_only=True)
    state = {f"module.{k}": v for k, v in state.items()}
    state["module.model.2.running_mean"] = torch.zeros(8)  # old PyTorch InstanceNorm leftovers
    state["module.model.2.running_var"] = torch.ones(8)
    torch.save(state, tmp_path / "g.pth")
    model = load_generator(tmp_path / "g.pth")
    io = torch.load(OFFICIAL / "resnet9_instance_cyclegan.io.pt", weights_only=True)
    with torch.no_grad():
        assert (model(io["input"]) - io["output"]).abs().max().item() <= 1e-5


def test_our_format_round_trip(tmp_path):
    model = ResnetGenerator(ngf=8, n_blocks=6, conv="separable", widths="8_4_8_4_8_4_8_4").eval()
    save_generator(model, tmp_path / "g.pth", meta={"note": "x"})
    loaded = load_generator(tmp_path / "g.pth")
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(loaded(x), model(x))
    assert loaded.arch == model.arch
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temporary file


class _Exploit:
    def __reduce__(self):
        import os
        return (os.system, ("touch PWNED_MARKER",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_pickle_is_refused_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"model.1.weight": torch.zeros(1)}, "payload": _Exploit()}, path)
    with pytest.raises(UserError, match="refused to load"):
        load_generator(path)
    assert not (tmp_path / "PWNED_MARKER").exists()
    with open(tmp_path / "raw.pkl", "wb") as f:  # a plain pickle (not a torch zip) too
        pickle.dump(_Exploit(), f)
    with pytest.raises(UserError):
        load_generator(tmp_path / "raw.pkl")
    assert not (tmp_path / "PWNED_MARKER").exists()


def test_unknown_format_lists_expected_and_found(tmp_path):
    torch.save({"encoder.weight": torch.zeros(2)}, tmp_path / "x.pth")
    with pytest.raises(UserError, match=r"unrecognised checkpoint format.*model\.1\.weight.*encoder\.weight"):
        load_generator(tmp_path / "x.pth")


def test_shape_mismatch_names_tensor(tmp_path):
    model = ResnetGenerator(ngf=8, n_blocks=3)
    save_generator(model, tmp_path / "g.pth")
    obj = torch.load(tmp_path / "g.pth", weights_only=True)
    obj["state_dict"]["down1.conv.weight"] = torch.zeros(16, 8, 5, 5)
    torch.save(obj, tmp_path / "bad.pth")
    with pytest.raises(UserError, match=r"down1\.conv\.weight has shape \(16, 8, 5, 5\), expected \(16, 8, 3, 3\)"):
        load_generator(tmp_path / "bad.pth")


def test_truncated_and_missing_files(tmp_path):
    src = OFFICIAL / "ganc_resnet9_full.pth"
    (tmp_path / "cut.pth").write_bytes(src.read_bytes()[:5000])
    with pytest.raises(UserError, match="cannot read checkpoint"):
        load_generator(tmp_path / "cut.pth")
    with pytest.raises(UserError, match="checkpoint not found"):
        load_generator(tmp_path / "none.pth")


def test_inconsistent_block_widths_refused(tmp_path):
    state = torch.load(OFFICIAL / "ganc_compressed_16_16_32_16_32_32_16_16.pth", weights_only=True)
    # block 11 (2nd of the first third) gets another hidden width than block 10
    state["model.11.conv_block.1.conv.2.weight"] = torch.zeros(8, 128, 1, 1)
    state["model.11.conv_block.1.conv.2.bias"] = torch.zeros(8)
    torch.save(state, tmp_path / "odd.pth")
    with pytest.raises(UserError, match="different hidden widths"):
        load_generator(tmp_path / "odd.pth")
