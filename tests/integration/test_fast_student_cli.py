"""`gancompress compress` with a fast student (issue 23 item 1): BatchNorm, zero padding, dense
convs and the fast-16 space, distilled from an InstanceNorm / reflection-padded teacher."""
from __future__ import annotations

import itertools
import json

import pytest
import torch
import torch.nn as nn

from gancompress.cli import main
from gancompress.compress.supernet import load_supernet
from gancompress.compress.tasks import build_student
from gancompress.deploy.onnx_export import export_onnx, read_metadata
from gancompress.errors import UserError
from gancompress.models.checkpoint import load_generator, save_generator
from gancompress.models.elastic import ElasticBatchNorm2d, crop_state
from gancompress.models.resnet import ResnetGenerator
from helpers import TINY, compress_test_config, make_inverted_pairs, trained_batchnorm

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = ["compress.student_norm=batch", "compress.student_pad=zero", "compress.student_conv=dense",
        "compress.space=fast-16"]


def test_compress_cli_makes_a_batchnorm_zero_pad_dense_student(tmp_path):
    data = make_inverted_pairs(tmp_path / "data")
    teacher = tmp_path / "teacher.pth"
    # ngf 32: the smallest fast-16 student (16-channel stem) must fit 1/4 of the teacher
    save_generator(ResnetGenerator(ngf=32, n_blocks=3), teacher)
    out = tmp_path / "run"
    tiny = [o for o in TINY if not o.startswith("compress.space=")]
    assert main(["compress", "--teacher", str(teacher), "--data", str(data), "--budget", "1/4",
                 "--out", str(out), *tiny, *FAST]) == 0
    compact = load_generator(out / "compact.pth")
    assert {k: compact.arch[k] for k in ("norm", "separable_norm", "pad", "conv")} == {
        "norm": "batch", "separable_norm": "batch", "pad": "zero", "conv": "dense"}
    assert all(w % compact.width_multiple == 0 for w in compact.max_widths.values())
    assert not any(isinstance(m, (nn.ReflectionPad2d, nn.InstanceNorm2d))
                   for m in compact.modules())
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["ratios"]["macs"] <= 0.25
    # extract re-calibrated the sub-network's statistics: they are not the supernet's
    assert compact.meta["bn_recalibrated"] is True
    source = out / ("finetune" if (out / "finetune").exists() else "supernet") / "supernet.pth"
    supernet, space, _ = load_supernet(source)
    assert space.name == "fast-16" and supernet.arch["norm"] == "batch"
    cropped = crop_state(supernet, compact.max_widths, compact)
    means = [k for k in cropped if k.endswith("running_mean")]
    assert means and any(not torch.allclose(cropped[k], compact.state_dict()[k]) for k in means)
    assert load_generator(teacher).arch["norm"] == "instance"  # the teacher is unchanged


def test_student_options_are_checked_before_training(workspace, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["compress", "--teacher", str(workspace / "teacher.pth"), "--data",
            str(workspace / "data"), "--budget", "1/3", "--out", str(out), "--dry-run", *TINY]
    assert main([*base, "compress.student_norm=group"]) == 2
    assert "student_norm = 'group'" in capsys.readouterr().err
    assert main([*base, "compress.student_conv=res1=dense"]) == 2
    assert "residual third" in capsys.readouterr().err
    assert not out.exists()
    # pruning keeps the teacher's layers: it cannot change their norm
    cfg = compress_test_config(workspace, "compress.student_norm=scale",
                               "compress.student_init=prune", "compress.student_conv=dense")
    teacher = load_generator(workspace / "teacher.pth")
    with pytest.raises(UserError, match="student_norm"):
        build_student(cfg, teacher, teacher.max_widths)
    # '' keeps the teacher's options; a set option builds that student
    student = build_student(compress_test_config(workspace, "compress.student_norm=scale",
                                                 "compress.student_pad=zero"),
                            teacher, teacher.max_widths)
    assert (student.arch["norm"], student.arch["pad"]) == ("scale", "zero")
    assert not any(isinstance(m, ElasticBatchNorm2d) for m in student.modules())


@pytest.mark.parametrize("norm,pad,conv", list(itertools.product(
    ("instance", "batch", "scale", "none"), ("reflect", "zero"),
    ("dense", "separable", "res1=dense,res2=separable,res3=dense"))))
def test_every_student_option_exports_to_onnx(norm, pad, conv, tmp_path):
    import onnx

    model = ResnetGenerator(ngf=4, n_blocks=3, conv=conv, norm=norm, pad=pad,
                            separable_norm=norm).eval()
    trained_batchnorm(model, weight=True, bias=True)
    path = tmp_path / "g.onnx"
    meta = export_onnx(model, path, (1, 3, 32, 32), exporter="legacy", opset=17)
    assert meta["verify"]["max_abs"] < 1e-4  # onnxruntime agrees with PyTorch
    nodes = onnx.load(str(path)).graph.node
    ops = {node.op_type for node in nodes}
    reflect = [n for n in nodes if n.op_type == "Pad"
               and any(a.name == "mode" and a.s == b"reflect" for a in n.attribute)]
    # zero padding is the convs' own (the only Pads left are the sub-pixel rewrite's of the
    # transposed convs, deploy/graph.py)
    assert len(reflect) == (8 if pad == "reflect" else 0)  # stem, head, 2 per block
    assert "BatchNormalization" not in ops       # folded into the convs
    assert ("InstanceNormalization" in ops) == (norm == "instance")
    stored = read_metadata(path)["arch"]
    assert (stored["norm"], stored["pad"], stored["conv"]) == (norm, pad, conv)
