"""The pix2pix U-Net family: published checkpoints reproduce their recorded outputs, the MAC and
parameter rows of docs/families.md sec. 1.1 from the command line, the config codec, skip
parts under pruning, decoder taps and the input-size rule."""
from __future__ import annotations

import json

import pytest
import torch
from helpers import OFFICIAL, trained_batchnorm

from gancompress.cli import main
from gancompress.compress.prune import l1_prune, permute_channels
from gancompress.compress.space import SearchSpace
from gancompress.errors import UserError
from gancompress.metrics.cost import count_macs, count_params
from gancompress.models.checkpoint import load_generator
from gancompress.models.elastic import channel_axes, compact, using_widths
from gancompress.models.unet import UnetGenerator

MANIFEST = json.loads((OFFICIAL / "MANIFEST.json").read_text())
UNET_FIXTURES = sorted(k for k, v in MANIFEST.items() if v.get("family") == "unet")


def _io(name):
    return torch.load(OFFICIAL / f"{name}.io.pt", weights_only=True)


def test_there_are_unet_fixtures():
    assert len(UNET_FIXTURES) >= 2


@pytest.mark.parametrize("name", UNET_FIXTURES)
def test_published_fixture_outputs_reproduced(name):
    spec = MANIFEST[name]
    model = load_generator(OFFICIAL / f"{name}.pth")
    io = _io(name)
    with torch.no_grad():
        out = model(io["input"])
    assert (out - io["output"]).abs().max().item() <= 1e-5
    assert count_params(model) == spec["params"]
    assert model.arch_name == "unet" and not model.training
    arch = model.arch
    assert (arch["num_downs"], arch["ngf"], arch["norm"]) == (spec["num_downs"], spec["ngf"],
                                                              spec["norm"])
    assert (arch["in_channels"], arch["out_channels"]) == (spec["input_nc"], spec["output_nc"])
    assert "U-Net" in model.source_format


def test_module_prefix_and_stray_instance_norm_stats(tmp_path):
    """2018-era files carry InstanceNorm running statistics; DataParallel saves 'module.'."""
    state = torch.load(OFFICIAL / "unet128_instance.pth", weights_only=True)
    state = {f"module.{k}": v for k, v in state.items()}
    for key in ("model.model.1.model.2", "model.model.1.model.3.model.6"):
        state[f"module.{key}.running_mean"] = torch.zeros(12)
        state[f"module.{key}.running_var"] = torch.ones(12)
        state[f"module.{key}.num_batches_tracked"] = torch.tensor(0)
    torch.save(state, tmp_path / "latest_net_G.pth")
    model = load_generator(tmp_path / "latest_net_G.pth")
    io = _io("unet128_instance")
    with torch.no_grad():
        assert (model(io["input"]) - io["output"]).abs().max().item() <= 1e-5


def test_unexpected_nested_key_is_refused(tmp_path):
    state = torch.load(OFFICIAL / "unet128_instance.pth", weights_only=True)
    state["model.model.1.model.7.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "g.pth")
    with pytest.raises(UserError, match="unexpected tensor model.model.1.model.7.weight"):
        load_generator(tmp_path / "g.pth")


def test_dropout_hint_overrides_default():
    path = OFFICIAL / "unet256_batch_dropout_pix2pix.pth"
    assert load_generator(path).arch["dropout"] == 0.5  # the pix2pix default
    assert load_generator(path, dropout=0.0).arch["dropout"] == 0.0


@pytest.mark.parametrize("args,params,macs", [
    (["--num-downs", "8", "--norm", "batch", "--size", "256", "256"], 54_413_955, 18_140_364_800),
    (["--num-downs", "8", "--norm", "instance", "--size", "256", "256"], 54_409_603,
     18_143_334_400),
    (["--num-downs", "7", "--norm", "batch", "--size", "128", "128"], 41_828_995, 4_513_071_104),
])
def test_profile_rows_from_the_command_line(capsys, args, params, macs):
    assert main(["profile", "--arch", "unet", "--ngf", "64", "--in-channels", "3",
                 "--out-channels", "3", *args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["params"], out["macs"]) == (params, macs)


def test_input_size_must_be_a_multiple_of_two_to_the_levels(capsys):
    assert main(["profile", "--arch", "unet", "--ngf", "4", "--num-downs", "6",
                 "--size", "96", "64"]) == 2
    err = capsys.readouterr().err
    assert "multiples of 2^6 = 64" in err and "96x64" in err
    model = UnetGenerator(ngf=4, num_downs=5)
    with pytest.raises(UserError, match="multiples of 2\\^5 = 32"):
        model(torch.zeros(1, 3, 48, 32))


def test_config_string_and_spaces():
    model = UnetGenerator(ngf=64, num_downs=8)
    assert model.config_from_widths(model.max_widths) == "_".join(["64"] * 8)
    widths = model.widths_from_config("16_24_32_40_48_16_24_32")
    assert widths["level0"] == 16 and widths["level1"] == 48 and widths["level2"] == 128
    assert widths["level3"] == 8 * 40 and widths["level7"] == 8 * 32
    assert model.config_from_widths(widths) == "16_24_32_40_48_16_24_32"
    with pytest.raises(UserError, match="one number per level"):
        model.widths_from_config("16_16")
    space = SearchSpace.for_model(model, "channels-48")
    assert len(space.choices) == 8 and space.largest() == [48] * 8
    small = UnetGenerator(ngf=64, num_downs=8, widths="16_16_16_16_16_16_16_16")
    assert count_macs(small, small.input_size()) < count_macs(model, model.input_size()) / 10


def test_skip_concatenation_declares_both_parts():
    model = UnetGenerator(ngf=4, num_downs=5)
    axes = channel_axes(model)
    assert axes["ups.2.conv.weight"][0] == (0, (("level2", 16), ("level2", 16)))
    widths = {**model.max_widths, "level2": 5}
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    model.eval()
    with torch.no_grad(), using_widths(model, widths):
        expected = model(x)
    small = compact(model, widths).eval()
    assert small.ups[2].conv.weight.shape[0] == 10
    # the second part's columns come from the second half of the wide weight, not its 6..9
    torch.testing.assert_close(small.ups[2].conv.weight[5:], model.ups[2].conv.weight[16:21])
    with torch.no_grad():
        torch.testing.assert_close(small(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("conv", ["dense", "separable"])
def test_pruning_keeps_the_function(conv):
    g = UnetGenerator(ngf=4, num_downs=5, conv=conv, norm="batch").eval()
    trained_batchnorm(g, weight=True)
    orders = {grp: torch.randperm(w) for grp, w in g.max_widths.items()}
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert (permute_channels(g, orders)(x) - g(x)).abs().max() < 1e-5
    small, kept = l1_prune(g, {"level0": 2, "level2": 8, "level4": 16})
    assert small.max_widths["level2"] == 8 and len(set(kept["level2"])) == 8
    with torch.no_grad():
        assert small(x).shape == g(x).shape


def test_decoder_taps_at_several_resolutions_follow_widths():
    model = UnetGenerator(ngf=4, num_downs=6).eval()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    out, feats = model(x, return_features=True)
    torch.testing.assert_close(out, model(x))
    assert [tuple(f.shape[1:]) for f in feats] == [(4, 32, 32), (8, 16, 16), (16, 8, 8),
                                                   (32, 4, 4)]
    assert model.feature_widths == ["level0", "level1", "level2", "level3"]
    with using_widths(model, {"level1": 3}):
        _, feats = model(x, return_features=True)
    assert feats[1].shape[1] == 3


def test_bad_architecture_arguments():
    with pytest.raises(UserError, match="num_downs must be an integer >= 5"):
        UnetGenerator(num_downs=3)
    with pytest.raises(UserError, match="norm must be 'batch' or 'instance'"):
        UnetGenerator(norm="none")
