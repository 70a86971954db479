"""Incremental inference contract over the generator registry: for tiny variants of every
family, edits (centre, border, corner, several strokes, none, the whole image) give the dense
output (exact mode within 1e-4; fast mode within its stated behaviour), 20 edits do not drift,
an empty edit computes nothing, a size change or an unknown op is handled and reported."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from gancompress.errors import UserError
from gancompress.incremental import IncrementalSession, modes, whole_image_norms
from gancompress.incremental.edits import apply_edit, brush_stroke, demo_input
from gancompress.metrics.cost import count_macs_both
from gancompress.models import GENERATORS, build_generator
from helpers import trained_batchnorm

# Tiny variants of every registered family: (family, constructor args, input size H x W).
VARIANTS = {
    "resnet-instance": ("resnet", dict(ngf=4, n_blocks=3), (32, 32)),
    "resnet-batch": ("resnet", dict(ngf=4, n_blocks=3, norm="batch"), (32, 48)),
    "unet-batch": ("unet", dict(ngf=4, num_downs=5), (64, 64)),
    "unet-instance-separable": ("unet", dict(ngf=4, num_downs=5, norm="instance",
                                             conv="separable"), (32, 32)),
    "spade": ("spade", dict(in_channels=6, ngf=2, upsampling="normal"), (32, 64)),
    "spade-separable": ("spade", dict(in_channels=6, ngf=2, upsampling="normal",
                                      conv="separable", widths="2_2_1_2_2_2_2_1"), (32, 64)),
    "munit": ("munit", dict(ngf=4, mlp_dim=8, n_res=2), (32, 32)),
    # a user's generator converted automatically (pix2pixHD's global generator, instance norm)
    "traced-pix2pixhd": ("traced", dict(module="user_models.pix2pixhd:GlobalGenerator",
                                        args=dict(ngf=4, n_downsampling=2, n_blocks=2),
                                        inputs=[[1, 3, 32, 32]]), (32, 32)),
}


def _model(name: str) -> tuple[nn.Module, tuple[int, int]]:
    family, args, size = VARIANTS[name]
    torch.manual_seed(0)
    g = build_generator(family, **args)
    trained_batchnorm(g)
    return g.eval(), size


def _dense(g: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return g(x)


def _edits(g: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Centre, border, corner, several strokes, the whole image."""
    h, w = x.shape[-2:]
    masks = {"centre": torch.zeros(h, w, dtype=torch.bool), "border": None, "corner": None,
             "strokes": brush_stroke(h, w, 0.05, seed=3) | brush_stroke(h, w, 0.03, seed=4),
             "whole": torch.ones(h, w, dtype=torch.bool)}
    masks["centre"][h // 2 - 3:h // 2 + 3, w // 2 - 4:w // 2 + 4] = True
    masks["border"] = torch.zeros(h, w, dtype=torch.bool)
    masks["border"][h // 3:h // 2, :3] = True
    masks["corner"] = torch.zeros(h, w, dtype=torch.bool)
    masks["corner"][-4:, -5:] = True
    return {name: apply_edit(g, x, m, seed=i) for i, (name, m) in enumerate(masks.items())}


def test_every_family_is_covered():
    assert {family for family, _, _ in VARIANTS.values()} == set(GENERATORS)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_exact_mode_equals_dense_pass(name):
    g, size = _model(name)
    x0 = demo_input(g, size)
    session = IncrementalSession(g, mode="exact")
    assert torch.allclose(session(x0), _dense(g, x0), atol=1e-5)
    assert session.stats["dense"] and session.stats["reason"] == "first input"
    for edit, x in _edits(g, x0).items():
        session.refresh(x0)
        y = session(x)
        assert (y - _dense(g, x)).abs().max() <= 1e-4, edit
        assert not session.stats["dense"], edit


@pytest.mark.parametrize("name", ["resnet-batch", "spade"])
def test_exact_mode_saves_work_where_norms_allow(name):
    """Without whole-image norms a small edit recomputes a part of the MACs (a U-Net's
    innermost levels see the whole image, so exact mode saves little there)."""
    g, size = _model(name)
    assert not whole_image_norms(g)
    x0 = demo_input(g, size)
    session = IncrementalSession(g, mode="exact")
    session(x0)
    mask = torch.zeros(size, dtype=torch.bool)
    mask[:4, :4] = True
    session(apply_edit(g, x0, mask))
    assert 0 < session.stats["macs_incremental"] < 0.8 * session.stats["macs_dense"]
    assert session.stats["dense_ops"] == {}


def test_instance_norm_models_run_their_norms_densely_in_exact_mode():
    g, size = _model("resnet-instance")
    assert whole_image_norms(g) and "run densely" in modes(g)["exact"]
    x0 = demo_input(g, size)
    session = IncrementalSession(g, mode="exact")
    session(x0)
    session(_edits(g, x0)["corner"])
    assert session.stats["dense_ops"].get("instance_norm", 0) > 0


@pytest.mark.parametrize("name", ["resnet-batch", "unet-batch", "spade"])
def test_fast_mode_with_a_wide_dilation_equals_dense(name):
    """Fast mode's only approximations are the dilation and cached InstanceNorm statistics:
    without InstanceNorm and with a dilation wider than the receptive field it is exact."""
    g, size = _model(name)
    x0 = demo_input(g, size)
    session = IncrementalSession(g, mode="fast", dilation=64, coarse_dilation=None,
                                 refresh_area=100)
    session(x0)
    x1 = _edits(g, x0)["centre"]
    assert (session(x1) - _dense(g, x1)).abs().max() <= 1e-4
    assert not session.stats["dense"]


def test_fast_mode_is_close_and_cheaper_on_a_small_edit():
    g, size = _model("spade")
    x0 = demo_input(g, (64, 128))
    session = IncrementalSession(g, mode="fast", refresh_area=100)
    session(x0)
    mask = brush_stroke(64, 128, 0.02, seed=1)
    x1 = apply_edit(g, x0, mask, seed=1)
    y = session(x1)
    dense = _dense(g, x1)
    mse = ((y - dense) ** 2).mean().item()
    assert 10 * torch.log10(torch.tensor(4.0 / mse)) > 30  # PSNR in dB, range [-1, 1]
    assert session.stats["macs_incremental"] < 0.5 * session.stats["macs_dense"]
    assert 0.015 < session.stats["changed_fraction"] < 0.03


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_twenty_edits_do_not_drift(mode):
    g, size = _model("spade-separable" if mode == "fast" else "spade")
    x = demo_input(g, size)
    session = IncrementalSession(g, mode=mode, refresh_every=5, refresh_area=100)
    session(x)
    dense_calls = 0
    for i in range(20):
        x = apply_edit(g, x, brush_stroke(*size, 0.02, seed=10 + i), seed=i)
        y = session(x)
        dense_calls += session.stats["dense"]
        if mode == "exact" or session.stats["dense"]:
            assert (y - _dense(g, x)).abs().max() <= 1e-4, i
    assert dense_calls == (0 if mode == "exact" else 4)  # every 5th edit refreshes


def test_refresh_after_accumulated_area():
    g, size = _model("spade")
    x = demo_input(g, size)
    session = IncrementalSession(g, mode="fast", refresh_area=0.1)
    session(x)
    x = apply_edit(g, x, brush_stroke(*size, 0.06, seed=1), seed=1)
    session(x)
    assert not session.stats["dense"]
    x = apply_edit(g, x, brush_stroke(*size, 0.06, seed=2), seed=2)
    y = session(x)
    assert session.stats["dense"] and "refresh" in session.stats["reason"]
    assert (y - _dense(g, x)).abs().max() <= 1e-5


def test_empty_edit_computes_nothing():
    g, size = _model("resnet-instance")
    x0 = demo_input(g, size)
    session = IncrementalSession(g)
    y0 = session(x0)
    y1 = session(x0.clone())
    assert torch.equal(y0, y1)
    assert session.stats["macs_incremental"] == 0 and session.stats["reason"] == "nothing changed"


def test_size_change_is_a_reported_dense_pass():
    g, _ = _model("resnet-instance")
    session = IncrementalSession(g, mode="exact")
    session(demo_input(g, (32, 32)))
    x = demo_input(g, (32, 48))
    y = session(x)
    assert session.stats["dense"] and session.stats["reason"] == "input size changed"
    assert torch.allclose(y, _dense(g, x), atol=1e-5)


class _Unknown(nn.Module):
    """A generator with an op the engine does not model (bilinear resampling)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.out = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, x):
        h = F.relu(self.conv(x))
        h = F.interpolate(F.avg_pool2d(h, 2), scale_factor=2, mode="bilinear")
        return torch.tanh(self.out(h))


def test_unknown_op_runs_densely_and_is_reported():
    torch.manual_seed(0)
    g = _Unknown().eval()
    x0 = torch.rand(1, 3, 32, 32) * 2 - 1
    session = IncrementalSession(g, mode="exact")
    session(x0)
    x1 = x0.clone()
    x1[:, :, 5:9, 5:9] = 0
    y = session(x1)
    assert (y - _dense(g, x1)).abs().max() <= 1e-5
    assert set(session.stats["dense_ops"]) == {"avg_pool2d", "interpolate"}
    assert session.stats["macs_incremental"] < session.stats["macs_dense"]  # the convs are sparse


# (MUNIT differs: its LayerNorm / AdaIN multiplies are counted as elementwise muls here)
@pytest.mark.parametrize("name", ["resnet-instance", "unet-batch", "spade-separable"])
def test_recorded_macs_follow_the_published_convention(name):
    g, size = _model(name)
    session = IncrementalSession(g)
    x = demo_input(g, size)
    session(x)
    assert session.macs_dense == count_macs_both(g, example=(x,))[0]
    assert session.cache_bytes > 0


def test_batch_of_two_is_exact():
    g, size = _model("spade")
    x0 = torch.cat([demo_input(g, size, seed=0), demo_input(g, size, seed=1)])
    session = IncrementalSession(g, mode="exact")
    session(x0)
    x1 = x0.clone()
    x1[1] = _edits(g, x0[1:])["centre"][0]
    assert (session(x1) - _dense(g, x1)).abs().max() <= 1e-4


def test_bad_settings_are_user_errors():
    g, _ = _model("resnet-instance")
    with pytest.raises(UserError, match="exact.*fast"):
        IncrementalSession(g, mode="sparse")
    with pytest.raises(UserError, match="block"):
        IncrementalSession(g, block=0)
    with pytest.raises(UserError, match="fraction"):
        brush_stroke(8, 8, 1.5)


def test_brush_stroke_covers_the_fraction():
    for fraction in (0.005, 0.02, 0.1, 0.25):
        covered = brush_stroke(256, 512, fraction, seed=0).float().mean().item()
        assert abs(covered - fraction) < 0.2 * fraction + 0.002


def test_profile_edit_cli_prints_the_contract_keys(capsys):
    import json

    from gancompress.cli import main

    assert main(["profile", "--arch", "spade", "--ngf", "2", "--upsampling", "normal", "--size", "32", "64", "--edit",
                 "0.05", "--mode", "exact", "--latency", "--latency-runs", "2", "--latency-warmup", "0",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("mode", "changed_fraction", "macs_dense", "macs_incremental", "max_abs_error",
                "psnr_db", "cache_bytes", "ms_dense", "ms_incremental"):
        assert key in out, key
    assert out["mode"] == "exact" and out["max_abs_error"] <= 1e-4
    assert 0 < out["macs_incremental"] < out["macs_dense"]
    with pytest.raises(SystemExit) as exit_:
        main(["profile", "--arch", "resnet", "--ngf", "4", "--size", "32", "32", "--edit", "2"])
    assert exit_.value.code == 2 and "--edit" in capsys.readouterr().err
