"""Invariants of elastic width for every registered generator (docs/design.md):
compact(g, w)(x) == g@w(x), macs(compact(g, w)) == macs(g@w), widest == plain model."""
from __future__ import annotations

import random

import pytest
import torch

from gancompress.errors import UserError
from gancompress.metrics.cost import count_macs_both, count_params
from gancompress.models import GENERATORS, build_generator
from gancompress.models.elastic import compact, current_widths, recalibrate_bn, using_widths
from helpers import trained_batchnorm

# Tiny variants of every registered architecture: (name, constructor arguments).
VARIANTS = [
    ("resnet", dict(ngf=8, n_blocks=3, conv="dense", norm="instance")),
    ("resnet", dict(ngf=8, n_blocks=6, conv="separable", norm="instance")),
    ("resnet", dict(ngf=8, n_blocks=3, conv="dense", norm="batch", dropout=0.5)),
    ("resnet", dict(ngf=8, n_blocks=9, conv="separable", norm="batch", in_channels=1)),
    ("unet", dict(ngf=4, num_downs=5, conv="dense", norm="batch", dropout=0.5)),
    ("unet", dict(ngf=4, num_downs=5, conv="dense", norm="instance", in_channels=1,
                  out_channels=2)),
    ("unet", dict(ngf=4, num_downs=5, conv="separable", norm="batch")),
    ("munit", dict(ngf=4, mlp_dim=8, n_res=2, conv="dense")),
    ("munit", dict(ngf=4, mlp_dim=8, n_res=4, conv="separable", style_dim=4)),
    ("spade", dict(ngf=2, in_channels=5, upsampling="normal")),
    ("spade", dict(ngf=2, in_channels=6, conv="separable", upsampling="more")),
    ("spade", dict(ngf=2, in_channels=4, conv="separable", upsampling="normal",
                   instance_edge=False)),
    # a user's own modules, converted automatically (tests/user_models, models/traced.py)
    ("traced", dict(module="user_models.pix2pixhd:GlobalGenerator",
                    args=dict(ngf=4, n_downsampling=2, n_blocks=2), inputs=[[1, 3, 32, 32]])),
    ("traced", dict(module="user_models.transformer_unet:TransformerUNet", args=dict(ngf=4),
                    inputs=[[1, 3, 32, 32]])),
]


def random_widths(model, rng):
    return {g: rng.randint(1, w) for g, w in model.max_widths.items()}


def small_size(model) -> tuple[int, int]:
    """A small input size the family accepts (>= 32, its multiple, its reference aspect)."""
    m = model.size_multiple
    h = max(32, m)
    rh, rw = model.reference_size
    w = max(m, (h * rw // rh) // m * m)
    return h, w


def inputs_of(model, batch=1, seed=0):
    return model.example_inputs(small_size(model), batch=batch,
                                generator=torch.Generator().manual_seed(seed))


def test_every_registered_generator_is_covered():
    assert {name for name, _ in VARIANTS} == set(GENERATORS)


@pytest.mark.parametrize("name,arch", VARIANTS)
def test_compact_equals_supernet_at_same_widths(name, arch):
    rng = random.Random(1)
    model = build_generator(name, **arch).eval()
    x = inputs_of(model, batch=2)
    size = inputs_of(model)
    for _ in range(4):
        widths = random_widths(model, rng)
        with using_widths(model, widths):
            expected = model(*x)
            macs_sub = count_macs_both(model, size)
        small = compact(model, widths).eval()
        assert small.max_widths == widths
        torch.testing.assert_close(small(*x), expected, atol=1e-5, rtol=1e-5)
        assert count_macs_both(small, size) == macs_sub
        assert count_params(small) < count_params(model)


@pytest.mark.parametrize("name,arch", VARIANTS)
def test_widest_widths_equal_plain_model(name, arch):
    model = build_generator(name, **arch).eval()
    x = inputs_of(model)
    plain = model(*x)
    with using_widths(model, model.max_widths):
        torch.testing.assert_close(model(*x), plain, atol=0, rtol=0)
    torch.testing.assert_close(compact(model, model.max_widths).eval()(*x), plain, atol=0, rtol=0)


# ----------------------------------------------------------------------------------------------
# The family contract, for every registered generator (tiny variants)

@pytest.mark.parametrize("name,arch", VARIANTS)
def test_contract_taps_forward_and_round_trips(name, arch, tmp_path):
    from gancompress.models.checkpoint import load_generator, save_generator

    model = build_generator(name, **arch).eval()
    x = inputs_of(model, batch=2)
    out, feats = model(*x, return_features=True)
    torch.testing.assert_close(out, model(*x))
    assert out.shape[0] == 2 and out.shape[1] == model.out_channels
    assert len(feats) == len(model.feature_widths) >= 1
    rng = random.Random(3)
    widths = random_widths(model, rng)
    with using_widths(model, widths):
        _, narrow = model(*x, return_features=True)
    for f, g, fn in zip(feats, model.feature_widths, narrow):  # taps follow their declared groups
        assert f.shape[1] == model.max_widths[g] and fn.shape[1] == widths[g]
    # the constructor arguments rebuild it; the checkpoint round trip is exact
    assert type(model)(**model.arch).arch == model.arch
    save_generator(model, tmp_path / "g.pth")
    again = load_generator(tmp_path / "g.pth")
    torch.testing.assert_close(again(*x), model(*x), atol=0, rtol=0)


@pytest.mark.parametrize("name,arch", VARIANTS)
def test_contract_config_string_round_trip(name, arch):
    model = build_generator(name, **arch)
    text = model.config_from_widths(model.max_widths)
    assert model.widths_from_config(text) == model.max_widths
    assert model.config_length() == len(text.split("_"))
    for space in model.search_spaces().values():
        assert len(space) == model.config_length()


@pytest.mark.parametrize("name,arch", VARIANTS)
def test_contract_pruning_permutation_keeps_the_function(name, arch):
    from gancompress.compress.prune import permute_channels

    model = build_generator(name, **arch).eval()
    trained_batchnorm(model)
    orders = {g: torch.randperm(w) for g, w in model.max_widths.items()}
    x = inputs_of(model)
    with torch.no_grad():
        torch.testing.assert_close(permute_channels(model, orders)(*x), model(*x),
                                   atol=1e-5, rtol=1e-4)


# One-input families; MUNIT's two-input (image, style) export is tested in test_munit_deploy.py.
@pytest.mark.parametrize("name,arch", [v for v in VARIANTS if v[0] != "munit"])
def test_contract_onnx_export_equals_pytorch(name, arch, tmp_path, one_thread):
    pytest.importorskip("onnxruntime")
    from gancompress.deploy.onnx_export import export_onnx
    from gancompress.deploy.runtime import open_model

    model = build_generator(name, **arch).eval()
    assert len(inputs_of(model)) == 1
    shape = tuple(inputs_of(model)[0].shape)
    export_onnx(model, tmp_path / "g.onnx", input_size=shape)
    runner = open_model(tmp_path / "g.onnx")
    x = inputs_of(model, seed=5)[0]
    with torch.no_grad():
        ref = model(x)
    torch.testing.assert_close(torch.as_tensor(runner(x)), ref, atol=1e-3, rtol=1e-3)


def test_using_widths_restores_state_even_on_error():
    model = build_generator("resnet", ngf=8, n_blocks=3)
    narrow = {g: 4 for g in model.max_widths}
    with pytest.raises(RuntimeError):
        with using_widths(model, narrow):
            assert current_widths(model) == narrow
            raise RuntimeError("boom")
    assert current_widths(model) == model.max_widths


def test_nested_using_widths_restores_outer():
    model = build_generator("resnet", ngf=8, n_blocks=3)
    with using_widths(model, {"trunk": 16}):
        with using_widths(model, {"trunk": 8, "stem": 4}):
            assert current_widths(model)["trunk"] == 8
        assert current_widths(model)["trunk"] == 16
        assert current_widths(model)["stem"] == 8


@pytest.mark.parametrize("widths,message", [
    ({"trunk": 64}, "must be an integer in 1..32"),
    ({"nope": 4}, "unknown width group 'nope'"),
    ({"stem": 0}, "must be an integer"),
])
def test_bad_widths_are_user_errors(widths, message):
    model = build_generator("resnet", ngf=8, n_blocks=3)
    with pytest.raises(UserError, match=message):
        with using_widths(model, widths):
            pass


def test_features_are_trunk_taps_and_follow_widths():
    model = build_generator("resnet", ngf=8, n_blocks=9).eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    out, feats = model(x, return_features=True)
    assert len(feats) == 4 and all(f.shape == (1, 32, 8, 8) for f in feats)
    torch.testing.assert_close(out, model(x))
    with using_widths(model, {"trunk": 12}):
        _, feats = model(x, return_features=True)
    assert all(f.shape == (1, 12, 8, 8) for f in feats)


def test_gradients_only_reach_active_slice():
    model = build_generator("resnet", ngf=8, n_blocks=3, conv="separable")
    with using_widths(model, {"stem": 3}):
        model(torch.rand(1, 3, 32, 32)).mean().backward()
    grad = model.stem.conv.weight.grad
    assert grad[:3].abs().sum() > 0 and grad[3:].abs().sum() == 0


def test_recalibrate_bn_matches_batch_statistics():
    model = build_generator("resnet", ngf=8, n_blocks=3, norm="batch")
    widths = {"stem": 4, "down1": 8, "trunk": 16}
    batches = [torch.rand(4, 3, 32, 32) * 2 - 1 for _ in range(3)]
    with using_widths(model, widths):
        recalibrate_bn(model, batches)
    # stem BN statistics after calibration = mean of the stem conv outputs over all batches
    with torch.no_grad(), using_widths(model, widths):
        pre = torch.cat([model.stem.conv(model.stem.pad(b)) for b in batches])
    expected_mean = pre.mean(dim=(0, 2, 3))
    torch.testing.assert_close(model.stem.norm.running_mean[:4], expected_mean, atol=1e-5, rtol=1e-4)
    assert current_widths(model) == model.max_widths and model.training
