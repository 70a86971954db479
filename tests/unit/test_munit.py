"""MUNIT: published checkpoints reproduce their recorded outputs, MAC rows of
docs/families.md sec. 1.1, config codec, elastic MLP, CLI profile."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from helpers import OFFICIAL, REPO
from gancompress.errors import UserError
from gancompress.metrics.cost import count_macs, count_params
from gancompress.models import build_generator
from gancompress.models.checkpoint import load_generator, save_generator
from gancompress.models.elastic import compact, using_widths

MANIFEST = json.loads((OFFICIAL / "MANIFEST.json").read_text()) if OFFICIAL.is_dir() else {}
MUNIT_FIXTURES = sorted(name for name, e in MANIFEST.items() if e.get("family") == "munit")
RELEASED = "16_16_16_24_56_16_40_40_32_24"


def test_munit_fixtures_are_present():
    # tests/fixtures/official is part of the repository: its absence is a failure
    assert MUNIT_FIXTURES, f"no MUNIT fixtures in {OFFICIAL / 'MANIFEST.json'}"


def _close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.shape == expected.shape
    assert (actual - expected).abs().max().item() <= 1e-5


@pytest.mark.parametrize("name", MUNIT_FIXTURES)
def test_published_checkpoint_reproduces_codes_and_translations(name, one_thread):
    io = torch.load(OFFICIAL / f"{name}.io.pt", weights_only=True)
    g = load_generator(OFFICIAL / f"{name}.pth")
    x, ref, style = io["input"], io["ref"], io["style_rand"]
    entry = MANIFEST[name]  # an NVlabs translator has one generator's worth of parameters
    assert count_params(g) == entry.get("params_per_generator", entry["params"])
    with torch.no_grad():
        if "content_a" in io:  # NVlabs {'a','b'}: the a->b translator, and b->a for gen_a's parts
            back = load_generator(OFFICIAL / f"{name}.pth", direction="BtoA")
            assert "a -> b" in g.source_format and "b -> a" in back.source_format
            _close(g.encode(x), io["content_a"])
            _close(g.style_of(ref), io["style_ref"])
            _close(g(x, style), io["output_ab_rand"])
            _close(g(x, g.style_of(ref)), io["output_ab_ref"])
            _close(back.style_of(x), io["style_a"])
            _close(back.decode(g.encode(x), back.style_of(x)), io["output"])  # gen_a(x)
            return
        _close(g(x), io["output"])
        _close(g.encode(x), io["content"])
        _close(g.style_of(x), io["style"])
        _close(g.style_of(ref), io["style_ref"])
        _close(g.decode(g.encode(x), style), io["output_rand"])
        _close(g(x, g.style_of(ref)), io["output_ref"])
        for config, rec in io.get("by_config", {}).items():  # the supernet at each config
            widths = g.widths_from_config(config)
            with using_widths(g, widths):
                _close(g.encode(x), rec["content"])
                _close(g.style_of(x), rec["style"])
                _close(g(x, style), rec["output_rand"])
                _close(g(x, g.style_of(ref)), rec["output_ref"])
            _close(compact(g, widths).eval()(x, style), rec["output_rand"])


def test_compressed_file_widths_come_from_shapes():
    g = load_generator(OFFICIAL / "ganc_compressed_munit_4_4_4_6_14_4_10_10_8_6.pth")
    assert g.arch["conv"] == "separable"
    assert g.config_from_widths(g.max_widths) == "4_4_4_6_14_4_10_10_8_6"
    assert g.mlp.model[2].fc.out_features == 2 * 2 * (40 + 24) * 2


def test_nvlabs_file_with_bad_direction_is_a_user_error(tmp_path):
    g = build_generator("munit", ngf=4, mlp_dim=8, n_res=2)
    state = g.state_dict()
    torch.save({"a": state, "b": state}, tmp_path / "gen_00000001.pt")
    with pytest.raises(UserError, match="direction"):
        load_generator(tmp_path / "gen_00000001.pt", direction="sideways")
    assert load_generator(tmp_path / "gen_00000001.pt").arch["n_res"] == 2


def test_mac_rows_of_reference():
    full = build_generator("munit", ngf=64)
    assert count_params(full) == 15_026_187
    assert count_macs(full, (1, 3, 256, 256)) == 77_302_073_610
    assert count_macs(full, full.mac_variants((256, 256))["without_style_encoder"]) \
        == 71_048_364_042
    small = build_generator("munit", ngf=64, conv="separable", widths=RELEASED)
    assert count_params(small) == 1_100_347
    assert count_macs(small, (1, 3, 256, 256)) == 2_624_717_386
    assert count_macs(small, small.mac_variants((256, 256))["without_style_encoder"]) \
        == 2_118_254_602
    supernet = build_generator("munit", ngf=64, conv="separable")
    with using_widths(supernet, supernet.widths_from_config(RELEASED)):
        assert count_macs(supernet, (1, 3, 256, 256)) == 2_624_717_386


def test_profile_command_line():
    out = subprocess.run([sys.executable, "-m", "gancompress", "profile", "--arch", "munit",
                          "--conv", "separable", "--ngf", "64", "--widths", RELEASED, "--size",
                          "256", "256", "--json"], capture_output=True, text=True, check=True,
                         cwd=REPO)
    result = json.loads(out.stdout)
    assert result["macs"] == 2_624_717_386
    assert result["macs_variants"]["without_style_encoder"] == 2_118_254_602


def test_config_codec_and_space():
    g = build_generator("munit", ngf=64, conv="separable")
    widths = g.widths_from_config(RELEASED)
    assert (widths["style1"], widths["style2"], widths["style4"]) == (16, 32, 64)
    assert (widths["trunk"], widths["cres1"], widths["up1"], widths["up2"]) == (96, 224, 64, 24)
    assert g.config_from_widths(widths) == RELEASED
    assert g.search_spaces()["channels-64"] == [[64, 56, 48, 40, 32, 24, 16]] * 10
    with pytest.raises(UserError, match="10 numbers"):
        g.widths_from_config("16_16")
    with pytest.raises(UserError, match="2c, 4c"):
        g.config_from_widths({**widths, "style2": 8})


def test_style_input_forward_and_features():
    g = build_generator("munit", ngf=4, mlp_dim=8, n_res=2).eval()
    x, style = g.example_inputs((32, 32), batch=2)
    assert style.shape == (2, 8, 1, 1)
    out, (content,) = g(x, style, return_features=True)
    assert content.shape == (2, 16, 8, 8) and out.shape == x.shape
    torch.testing.assert_close(g(x), g.decode(g.encode(x), g.style_of(x)))
    assert not torch.allclose(g(x, style), g(x, torch.randn_like(style)))


def test_round_trip_through_our_format(tmp_path):
    g = build_generator("munit", ngf=4, mlp_dim=8, n_res=2, conv="separable",
                        widths="2_2_2_3_1_2_4_3_2_3").eval()
    save_generator(g, tmp_path / "g.pth")
    back = load_generator(tmp_path / "g.pth")
    x, style = g.example_inputs((32, 32))
    torch.testing.assert_close(back(x, style), g(x, style), atol=0, rtol=0)


def test_bad_arguments_are_user_errors():
    with pytest.raises(UserError, match="n_res"):
        build_generator("munit", n_res=3)
    with pytest.raises(UserError, match="n_downsample"):
        build_generator("munit", n_downsample=3)
    with pytest.raises(UserError, match="multiple of 16"):
        build_generator("munit", ngf=4, mlp_dim=8, n_res=2).example_inputs((24, 24))
