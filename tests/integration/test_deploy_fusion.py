"""Exports that keep the speed: norm folding (BatchNorm, a `fold_into` scale layer) and zero-pad
fusion into the conv, checked on the exported graphs (ONNX through onnxruntime, OpenVINO IR)
against PyTorch, plus the runtime metadata of exported students."""
from __future__ import annotations

import onnx
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import trained_batchnorm

from gancompress.deploy.graph import deploy_module, fuse_graph
from gancompress.deploy.onnx_export import export_onnx, read_metadata
from gancompress.deploy.session import open_session
from gancompress.models.resnet import ResnetGenerator

pytestmark = pytest.mark.usefixtures("one_thread")
SIZE = (1, 3, 32, 32)


class Scale(nn.Module):
    """A learned per-channel scale and shift with the fold_into protocol of student norms."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(channels) + 0.5)
        self.bias = nn.Parameter(torch.randn(channels) * 0.3)

    def forward(self, x):
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    @torch.no_grad()
    def fold_into(self, conv: nn.Conv2d) -> None:
        conv.weight.mul_(self.weight.view(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(self.bias)
        conv.bias = nn.Parameter(bias * self.weight + self.bias)


class Student(nn.Module):
    """Zero pads (module and functional), BatchNorm, a scale norm, a depthwise conv, a
    transposed conv with BatchNorm, and one pad that must stay (asymmetric)."""

    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d(1)
        self.stem = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, groups=8, bias=False)
        self.scale = Scale(8)
        self.pw = nn.Conv2d(8, 16, 1)
        self.down = nn.Conv2d(16, 16, 3, stride=2)
        self.up = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
        self.bn_up = nn.BatchNorm2d(8)
        self.head = nn.Conv2d(8, 3, 3)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(self.pad(x))))
        x = self.pw(self.scale(self.dw(F.pad(x, (1, 1, 1, 1)))))
        x = F.relu(self.down(F.pad(x, (0, 1, 0, 1))))   # asymmetric: stays a pad
        x = F.relu(self.bn_up(self.up(x)))
        return torch.tanh(self.head(nn.functional.pad(x, (1, 1, 1, 1), value=0.0)))


@pytest.fixture
def student():
    torch.manual_seed(0)
    return trained_batchnorm(Student(), weight=True, bias=True).eval()


def _ops(proto) -> list[str]:
    return [n.op_type for n in proto.graph.node]


def test_fusion_on_the_fx_graph(student):
    fused, notes = fuse_graph(student)
    assert notes == ["folded 3 norm layers (BatchNorm / per-channel scale) into convs",
                     "fused 3 zero pads into conv padding"]
    kinds = [type(m) for m in fused.modules()]
    assert nn.BatchNorm2d not in kinds and Scale not in kinds and nn.ZeroPad2d not in kinds
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(fused(x), student(x), atol=1e-5, rtol=1e-5)
    # nothing to do: the model itself comes back
    plain = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1))
    assert fuse_graph(plain) == (plain, [])


def test_onnx_graph_has_no_norms_or_zero_pads_and_matches(student, tmp_path):
    path = tmp_path / "s.onnx"
    export_onnx(student, path, SIZE)
    proto = onnx.load(str(path))
    ops = _ops(proto)
    assert "BatchNormalization" not in ops and "Mul" not in ops
    # the asymmetric pad and the phase-conv head's own edge pad remain; the three zero pads
    # before convs became conv padding
    assert ops.count("Pad") <= 2, ops
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    out = open_session("onnx", str(path), threads=1)(x)
    with torch.no_grad():
        torch.testing.assert_close(out, student(x), atol=1e-5, rtol=1e-4)
    deployed = deploy_module(student, optimize=False)
    assert not any(isinstance(m, (nn.BatchNorm2d, Scale, nn.ZeroPad2d))
                   for m in deployed.modules())


def test_openvino_ir_matches_and_has_no_zero_pads(student, tmp_path):
    from gancompress.deploy import openvino as ovx

    path = tmp_path / "s.xml"
    ovx.export_openvino(student, path, SIZE, optimize=False)
    model = ovx.core().read_model(str(path))
    types = [op.get_type_name() for op in model.get_ordered_ops()]
    assert types.count("Pad") <= 1, types     # only the asymmetric one
    assert "BatchNormInference" not in types
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    out = ovx.run_model(model, x, threads=1)
    with torch.no_grad():
        torch.testing.assert_close(out, student(x), atol=1e-5, rtol=1e-4)


def test_batchnorm_resnet_student_exports_folded(tmp_path):
    """The student options available today (norm batch, dense convs): no norm op survives in
    the ONNX graph or the IR, and both match PyTorch."""
    from gancompress.deploy import openvino as ovx

    torch.manual_seed(1)
    model = trained_batchnorm(ResnetGenerator(ngf=8, n_blocks=3, norm="batch", conv="dense"),
                              weight=True, bias=True).eval()
    model.meta = {"config": {"compress": {"budget": "8ms", "latency_backend": "openvino-int8"}}}
    onnx_path, xml = tmp_path / "g.onnx", tmp_path / "g.xml"
    meta = export_onnx(model, onnx_path, SIZE)
    assert "BatchNormalization" not in _ops(onnx.load(str(onnx_path)))
    assert any(n.startswith("folded ") for n in meta["rewrites"])
    assert read_metadata(onnx_path)["latency_budget"] == \
        {"budget": "8ms", "runtime": "openvino-int8", "precision": "int8"}
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        reference = model(x)
    torch.testing.assert_close(open_session("onnx", str(onnx_path), threads=1)(x), reference,
                               atol=1e-5, rtol=1e-4)
    ovx.export_openvino(model, xml, SIZE)
    ir = ovx.core().read_model(str(xml))
    assert "BatchNormInference" not in [op.get_type_name() for op in ir.get_ordered_ops()]
    assert ovx.read_metadata(ir)["latency_budget"]["runtime"] == "openvino-int8"
    torch.testing.assert_close(ovx.run_model(ir, x, threads=1), reference, atol=1e-5, rtol=1e-4)
