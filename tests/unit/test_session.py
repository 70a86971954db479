"""deploy/session.py: one inference session per backend, the same outputs from each."""
import pytest
import torch

from gancompress.deploy.graph import deploy_module
from gancompress.deploy.onnx_export import onnx_bytes, sample_inputs
from gancompress.deploy.openvino import from_onnx
from gancompress.deploy.session import KINDS, open_session
from gancompress.errors import UserError
from gancompress.models.resnet import ResnetGenerator

SIZE = (1, 3, 16, 16)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ResnetGenerator(ngf=4, n_blocks=3).eval()


def test_every_kind_reproduces_pytorch(model, tmp_path):
    x = sample_inputs(SIZE, count=2, seed=3)
    with torch.no_grad():
        expected = model(x)
    deployed = deploy_module(model)
    data = onnx_bytes(deployed, SIZE, 17, "legacy")  # the legacy exporter: quick
    (tmp_path / "g.onnx").write_bytes(data)
    sessions = {
        "torch": open_session("torch", model, threads=1),
        "torchscript": open_session("torchscript", deploy_module(model, transposed=False),
                                    threads=1, example=(x,)),
        "onnx bytes": open_session("onnx", data, threads=1),
        "onnx file": open_session("onnx", tmp_path / "g.onnx", threads=1, spinning=False),
        "openvino": open_session("openvino", from_onnx(data), threads=1),  # the extra: setup.sh
    }
    for name, session in sessions.items():
        out = session(x).float().cpu()
        assert out.shape == expected.shape and (out - expected).abs().max() < 1e-4, name
        assert session.threads == 1
        session.close()
    assert sessions["onnx bytes"].kind == "onnx" and sessions["torch"].kind == "torch"
    assert set(KINDS) == {"torch", "torchscript", "compile", "onnx", "openvino"}


def test_torch_session_sets_its_threads_per_call(model):
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        session = open_session("torch", model, threads=2, set_threads=True)
        session(torch.zeros(SIZE))
        assert torch.get_num_threads() == 2
        open_session("torch", model, threads=1)(torch.zeros(SIZE))  # no set_threads: untouched
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


def test_mistakes_are_one_user_error(model, tmp_path):
    with pytest.raises(UserError, match="unknown session kind 'tensorrt'"):
        open_session("tensorrt", model)
    with pytest.raises(UserError, match="onnx runs on the CPU only"):
        open_session("onnx", b"", device="cuda")
    with pytest.raises(UserError, match="unknown OpenVINO precision 'fp8'"):
        open_session("openvino", tmp_path / "g.xml", precision="fp8")
    (tmp_path / "bad.onnx").write_bytes(b"\x08not a model")
    with pytest.raises(UserError, match="onnxruntime cannot load"):
        open_session("onnx", tmp_path / "bad.onnx")
    (tmp_path / "bad.pt").write_bytes(b"not torchscript")
    with pytest.raises(UserError, match="cannot load TorchScript file"):
        open_session("torchscript", tmp_path / "bad.pt")
