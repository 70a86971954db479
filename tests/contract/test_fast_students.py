"""Fast students (issue 23 item 1): every ResNet norm x padding x conv option keeps the width
contract (compact(g, w)(x) == g@w(x), MACs, checkpoints, sub_network), the "scale" norm folds
into its conv, and the fast-* spaces keep every width a multiple of the family's block."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn

from gancompress.errors import UserError
from gancompress.metrics.cost import count_macs, count_macs_both
from gancompress.models import build_generator
from gancompress.models.calibration import calibrated_compact, sub_network
from gancompress.models.checkpoint import load_generator, save_generator
from gancompress.models.elastic import (
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticConvTranspose2d,
    ElasticInstanceNorm2d,
    ElasticScale2d,
    compact,
    using_widths,
)
from gancompress.models.resnet import POSITIONS, SPACES, ResnetGenerator, decode_config
from helpers import trained_batchnorm

pytestmark = pytest.mark.usefixtures("one_thread")

NORMS = ("instance", "batch", "scale", "none")
PADS = ("reflect", "zero")
CONVS = ("dense", "separable", "res1=dense,res2=separable,res3=dense")
COMBOS = list(itertools.product(NORMS, PADS, CONVS))
WIDTHS = decode_config("4_4_8_4_8_4_4_8")


def _student(norm: str, pad: str, conv: str, ngf: int = 8) -> ResnetGenerator:
    """An eval-mode student with trained-looking weights: scales away from 1, BatchNorm
    statistics and affine parameters away from their init, so that every option matters."""
    model = ResnetGenerator(ngf=ngf, n_blocks=3, conv=conv, norm=norm, pad=pad,
                            separable_norm=norm).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, ElasticScale2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)
            elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.bias is not None:
                # (weights: torch's fan-in init, so that outputs without norms stay in range)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    if norm == "batch":
        trained_batchnorm(model, weight=True, bias=True)
    return model


def _x(batch: int = 2, size: int = 32) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(2)) * 2 - 1


@pytest.mark.parametrize("norm,pad,conv", COMBOS)
def test_compact_is_the_subnetwork_for_every_option(norm, pad, conv, tmp_path):
    model = _student(norm, pad, conv)
    x = _x()
    small = compact(model, WIDTHS).eval()
    with torch.no_grad(), using_widths(model, WIDTHS):
        expected = model(x)
        macs = count_macs_both(model, (1, 3, 32, 32))
    with torch.no_grad():
        got = small(x)
    assert torch.allclose(got, expected, atol=1e-5)
    assert count_macs_both(small, (1, 3, 32, 32)) == macs
    # the architecture is recorded: a checkpoint rebuilds the very same student
    assert {k: small.arch[k] for k in ("norm", "pad", "conv", "separable_norm")} == {
        "norm": norm, "pad": pad, "conv": conv, "separable_norm": norm}
    save_generator(small, tmp_path / "g.pth")
    loaded = load_generator(tmp_path / "g.pth")
    assert loaded.arch == small.arch
    with torch.no_grad():
        assert torch.equal(loaded(x), got)


@pytest.mark.parametrize("norm,pad,conv", COMBOS)
def test_layers_follow_the_options(norm, pad, conv):
    model = ResnetGenerator(ngf=4, n_blocks=3, conv=conv, norm=norm, pad=pad, separable_norm=norm)
    kinds = [type(m) for m in model.modules()]
    assert (nn.ReflectionPad2d in kinds) == (pad == "reflect")
    expected_norm = {"instance": ElasticInstanceNorm2d, "batch": ElasticBatchNorm2d,
                     "scale": ElasticScale2d, "none": None}[norm]
    for other in (ElasticInstanceNorm2d, ElasticBatchNorm2d, ElasticScale2d):
        assert (other in kinds) == (other is expected_norm)
    convs = [m for m in model.modules() if isinstance(m, ElasticConv2d)]
    assert all(m.padding == ((m.kernel_size[0] // 2,) * 2 if pad == "zero" else (0, 0))
               for m in convs if m.stride == (1, 1))
    depthwise = {i: any(m.depthwise for m in block.modules() if isinstance(m, ElasticConv2d))
                 for i, block in enumerate(model.blocks)}
    if conv == "dense":
        assert not any(depthwise.values())
    elif conv == "separable":
        assert all(depthwise.values())
    else:  # one block per third: res1 dense, res2 separable, res3 dense
        assert depthwise == {0: False, 1: True, 2: False}


def test_published_defaults_are_unchanged():
    model = ResnetGenerator(ngf=4, n_blocks=3, conv="separable", norm="batch")
    # a model built with another norm keeps the published InstanceNorm inside its separable
    # convs (checkpoints of earlier versions have it there)
    assert isinstance(model.blocks[0].conv1.norm, ElasticInstanceNorm2d)
    assert isinstance(model.head_pad, nn.ReflectionPad2d) and model.head.padding == (0, 0)
    assert model.arch["pad"] == "reflect" and model.arch["separable_norm"] == "instance"
    # an architecture written before these options existed still builds
    old = {k: v for k, v in model.arch.items() if k not in ("pad", "separable_norm")}
    assert build_generator("resnet", **old).arch == model.arch


@pytest.mark.parametrize("pad,conv", list(itertools.product(PADS, CONVS)))
def test_batchnorm_subnetwork_is_recalibrated_as_its_compact_model(pad, conv):
    model = _student("batch", pad, conv)
    calibration = [_x(4), _x(4) * 0.5]
    x = _x()
    with torch.no_grad():
        with sub_network(model, WIDTHS, calibration) as sub:
            scored = sub(x)
        with using_widths(model, WIDTHS):
            stale = model(x)  # the supernet's statistics, restored after sub_network
        extracted = calibrated_compact(model, WIDTHS, calibration)(x)
    assert torch.allclose(scored, extracted, atol=1e-5)
    assert not torch.allclose(scored, stale, atol=1e-3)  # re-calibration changed something
    with pytest.raises(ValueError, match="calibration"):
        with sub_network(model, WIDTHS):
            pass


@pytest.mark.parametrize("make", [
    lambda: nn.Conv2d(6, 5, 3, padding=1),
    lambda: nn.Conv2d(6, 5, 3, padding=1, bias=False),
    lambda: nn.Conv2d(6, 6, 3, padding=1, groups=6),            # depthwise
    lambda: nn.ConvTranspose2d(6, 5, 3, 2, 1, 1),
    lambda: ElasticConv2d(6, 5, 7, padding=3, group="g"),
    lambda: ElasticConvTranspose2d(6, 5, 3, stride=2, padding=1, output_padding=1, bias=False),
])
def test_scale_folds_into_the_conv_before_it(make):
    conv = make()
    scale = ElasticScale2d(8, group="g")  # wider than the conv: its leading channels apply
    with torch.no_grad():
        scale.weight.uniform_(0.5, 1.5)
        scale.bias.normal_(0, 0.3)
    x = torch.randn(2, 6, 9, 11)
    with torch.no_grad():
        expected = scale(conv(x))
        folded = scale.fold_into(conv)
        assert folded is conv and conv.bias is not None
        assert torch.allclose(conv(x), expected, atol=1e-5)


def test_scale_folds_in_a_whole_student():
    model = compact(_student("scale", "zero", "dense"), WIDTHS).eval()
    x = _x()
    with torch.no_grad():
        expected = model(x)
        for stage in (model.stem, model.down1, model.down2, model.up1, model.up2):
            stage.norm.fold_into(stage.conv)
            stage.norm = nn.Identity()
        for block in model.blocks:
            block.norm1.fold_into(block.conv1)
            block.norm2.fold_into(block.conv2)
            block.norm1 = block.norm2 = nn.Identity()
        assert not any(isinstance(m, ElasticScale2d) for m in model.modules())
        assert torch.allclose(model(x), expected, atol=1e-5)
    with pytest.raises(TypeError):
        ElasticScale2d(4).fold_into(nn.Linear(4, 4))


def test_scale_costs_as_batchnorm():
    scale = build_generator("resnet", ngf=4, n_blocks=3, norm="scale")
    batch = build_generator("resnet", ngf=4, n_blocks=3, norm="batch").eval()
    size = (1, 3, 32, 32)
    assert count_macs_both(scale, size) == count_macs_both(batch, size)
    assert count_macs(scale, size) < count_macs(build_generator("resnet", ngf=4, n_blocks=3), size)


@pytest.mark.parametrize("conv", ["res1=dense", "res1=dense,res2=separable",
                                  "res1=dense,res2=dense,res3=sparse", "dense,separable",
                                  "res1=dense,res1=dense,res3=dense", "depthwise", ""])
def test_bad_conv_spellings(conv):
    with pytest.raises(UserError, match="residual third"):
        ResnetGenerator(ngf=4, n_blocks=3, conv=conv)


def test_conv_spelling_is_canonical():
    same = ResnetGenerator(ngf=4, n_blocks=3, conv="res3=dense, res1=dense,res2=dense")
    assert same.arch["conv"] == "dense"
    mixed = ResnetGenerator(ngf=4, n_blocks=6, conv="res2=dense,res1=separable,res3=separable")
    assert mixed.arch["conv"] == "res1=separable,res2=dense,res3=separable"
    with pytest.raises(UserError, match="norm must be one of"):
        ResnetGenerator(ngf=4, n_blocks=3, norm="layer")
    with pytest.raises(UserError, match="pad must be one of"):
        ResnetGenerator(ngf=4, n_blocks=3, pad="replicate")


def test_student_config_applies_and_checks_the_options():
    teacher = ResnetGenerator(ngf=8, n_blocks=3, dropout=0.5)
    arch = teacher.student_config("res1=dense,res2=separable,res3=dense", WIDTHS, norm="batch",
                                  pad="zero")
    assert (arch["norm"], arch["separable_norm"], arch["pad"], arch["dropout"]) == (
        "batch", "batch", "zero", 0.0)
    assert build_generator("resnet", **arch).max_widths == WIDTHS
    kept = teacher.student_config("separable", None, norm="", pad="")  # '' = the teacher's
    assert (kept["norm"], kept["pad"]) == ("instance", "reflect")
    with pytest.raises(UserError, match="student_norm = 'group'"):
        teacher.student_config("dense", None, norm="group")
    spade = build_generator("spade", in_channels=4, ngf=4)
    with pytest.raises(UserError, match="no pad option"):
        spade.student_config("separable", None, pad="zero")


def test_fast_space_widths_are_block_multiples():
    model = ResnetGenerator(ngf=8, n_blocks=3)
    m = model.width_multiple
    assert m == 16 and f"fast-{m}" in model.search_spaces()
    choices = model.search_spaces()[f"fast-{m}"]
    assert len(choices) == len(POSITIONS)
    for position, allowed in zip(POSITIONS, choices):
        assert allowed == sorted(allowed, reverse=True) and allowed
        for group, multiplier in position:
            assert all(multiplier * c % m == 0 for c in allowed)
    # the rule keeps every aligned number of the base list: 8 stays where it gives 16 or 32
    assert 8 in choices[1] and 8 in choices[2] and 8 not in choices[0]
    assert SPACES[f"fast-{m}"] == choices
