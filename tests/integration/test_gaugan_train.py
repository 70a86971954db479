"""GauGAN training: multiscale discriminator layout, VGG19 weights without torchvision, a tiny
teacher trained from the CLI and resumed exactly, and compressed."""
from __future__ import annotations


import pytest
import torch

from gancompress.config import apply_overrides
from gancompress.errors import UserError
from gancompress.metrics.cost import count_params
from gancompress.models.checkpoint import load_generator, safe_load
from gancompress.models.discriminators import MultiscaleDiscriminator
from helpers import tiny_gaugan
from helpers import write_cityscapes as _write_cityscapes


def test_multiscale_discriminator_layout():
    with torch.device("meta"):
        disc = MultiscaleDiscriminator(in_channels=39)
    assert count_params(disc) == 5_601_410
    keys = set(disc.state_dict())
    assert {"discriminator_0.model0.0.weight", "discriminator_1.model1.0.0.weight_orig",
            "discriminator_0.model3.0.0.weight_v", "discriminator_1.model4.0.bias"} <= keys
    with torch.device("meta"):  # shapes only
        outs = disc(torch.zeros(1, 39, 256, 512))
    assert [tuple(o.shape[-2:]) for o in outs[0]] == [(129, 257), (65, 129), (33, 65), (34, 66),
                                                     (35, 67)]
    assert len(outs) == 2


@pytest.mark.slow  # writes a 52 MB weights file
def test_vgg19_reads_torchvision_layout(tmp_path, monkeypatch):
    from gancompress.models.vgg import VGG19Features, full_layout, load_vgg19, vgg_loss
    layout = full_layout()
    needed = VGG19Features().state_dict()
    state = {k: torch.randn(layout[k]) * 0.01 for k in needed}  # random weights, published names
    torch.save(state, tmp_path / "vgg19-dcbb9e9d.pth")
    monkeypatch.setenv("GANCOMPRESS_WEIGHTS_DIR", str(tmp_path))
    vgg, record = load_vgg19()
    assert record.name == "vgg19-dcbb9e9d.pth" and len(record.sha256) == 64
    torch.testing.assert_close(vgg.features[28].weight, state["features.28.weight"])
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert vgg_loss(vgg, x, x).item() == 0
    assert vgg_loss(vgg, x, -x).item() > 0
    state["features.2.weight"] = torch.zeros(64, 3, 3, 3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(UserError, match="wrong shape"):
        load_vgg19(tmp_path / "bad.pth")
    monkeypatch.setenv("GANCOMPRESS_WEIGHTS_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(UserError, match=r"vgg19-dcbb9e9d.pth not found.*download.pytorch.org"):
        load_vgg19()


def test_tiny_gaugan_trains_resumes_exactly(tmp_path, one_thread):
    from gancompress.compress.tasks import train
    root = _write_cityscapes(tmp_path / "cs", n=4)
    cfg = tiny_gaugan(root)
    train(cfg, tmp_path / "full")
    half = apply_overrides(cfg, ["train.max_steps=2"])
    train(half, tmp_path / "resumed")
    train(cfg, tmp_path / "resumed", resume=True)
    a = safe_load(tmp_path / "full" / "checkpoint.pt")["task"]
    b = safe_load(tmp_path / "resumed" / "checkpoint.pt")["task"]
    for name in ("generator", "disc"):
        sa, sb = a["models"][name], b["models"][name]
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), name
    g = load_generator(tmp_path / "full" / "generator.pth")
    assert g.arch_name == "spade" and not g.arch["spectral"] and g.in_channels == 36
    x = g.example_inputs((32, 64))[0]
    assert g(x).shape == (1, 3, 32, 64)
