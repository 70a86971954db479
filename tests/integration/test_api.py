"""The Python API: gancompress.api.compress(model=..., data=..., budget=..., out=...) on a user's
nn.Module (converted, saved next to OUT, the same pipeline as the command), resumed with
model=None, on a weights file + arch, and on a two-input generator with a condition hook;
gancompress.load_generator opens what it wrote."""
from __future__ import annotations

import pytest
import torch

import gancompress
from gancompress.errors import UserError
from gancompress.metrics.cost import count_macs_both
from gancompress.models.traced import TracedGenerator, convert
from helpers import make_inverted_pairs
from user_models.johnson import TransformerNet
from user_models.stargan import Generator as StarGAN
from user_models.stargan import first_domain

# the tiny stage settings of tests/integration/test_auto_cli.py, as a dict
OPTIONS = {"compress.held_out": 4, "compress.supernet_epochs": 1,
           "compress.supernet_epochs_decay": 0, "compress.finetune_epochs": 1,
           "compress.finetune_epochs_decay": 0, "compress.generations": 2,
           "compress.population": 6, "compress.parents": 2, "compress.mutants": 2,
           "compress.crossovers": 2, "train.progress": False, "train.batch_size": 4,
           "train.max_steps": 2, "model.ndf": 8, "model.disc_layers": 2, "data.load_size": 36,
           "data.crop_size": 32, "data.num_workers": 0, "train.n_samples": 2,
           "train.threads": 1}
X = torch.rand(1, 3, 32, 32) * 2 - 1


def test_compress_a_module_instance_then_resume(tmp_path, one_thread):
    data = make_inverted_pairs(tmp_path / "data", n=8)
    torch.manual_seed(2)
    net = TransformerNet(width=4).eval()
    out = tmp_path / "run"
    logged: list[str] = []
    result = gancompress.api.compress(model=net, data=data, budget="1/3", out=out,
                                      args={"width": 4}, example_inputs=X, overrides=OPTIONS,
                                      device="cpu", log=logged.append)
    assert result.out == out and result.compact == out / "compact.pth"
    assert result.teacher == tmp_path / "run.teacher.pth"  # the command's place, next to OUT
    assert result.needs_import == "user_models.johnson:TransformerNet"
    assert result.ran[-2:] == ["extract", "report"] and result.model_card.is_file()
    assert result.report["ratios"]["macs"] <= 1 / 3 and "Compact" in result.report_md
    teacher = gancompress.load_generator(result.teacher)
    compact = gancompress.load_generator(result.compact)
    assert isinstance(compact, TracedGenerator)
    assert compact.arch["module"] == "user_models.johnson:TransformerNet"
    assert compact.arch["args"] == {"width": 4}
    with torch.no_grad():  # the teacher is the user's module with its weights
        torch.testing.assert_close(teacher(X), net(X), atol=1e-5, rtol=1e-5)
    assert count_macs_both(compact, X)[0] <= count_macs_both(teacher, X)[0] / 3
    assert result.load().arch == compact.arch
    # the same call again, or model=None: every stage is done, nothing runs
    again = gancompress.api.compress(model=net, data=data, budget="1/3", out=out,
                                     args={"width": 4}, example_inputs=X, overrides=OPTIONS,
                                     device="cpu", log=logged.append)
    assert again.ran == [] and again.report == result.report
    assert gancompress.api.compress(out=out, log=logged.append).ran == []
    # another model into the same folder is refused (its teacher file would change)
    torch.manual_seed(3)
    with pytest.raises(UserError, match="compression of another teacher"):
        gancompress.api.compress(model=TransformerNet(width=4), data=data, budget="1/3",
                                 out=out, args={"width": 4}, example_inputs=X,
                                 overrides=OPTIONS, log=logged.append)


def test_a_two_input_generator_compresses_with_a_condition_hook(tmp_path, one_thread):
    """StarGAN's forward(x, c): without a hook the pipeline cannot feed c (one clear error);
    with one, the compact model runs on images alone and reopens with the hook recorded."""
    data = make_inverted_pairs(tmp_path / "data", n=8)
    args = dict(conv_dim=4, c_dim=5, repeat_num=2)
    net = StarGAN(**args).eval()
    with pytest.raises(UserError, match=r"forward takes 2 inputs \(x, c\).*condition"):
        gancompress.api.compress(model=net, data=data, budget="1/3", out=tmp_path / "no",
                                 args=args, example_inputs=X, overrides=OPTIONS, log=print)
    two = (X, first_domain(X))
    with pytest.raises(UserError, match=r"given the image only.*condition=fn"):
        gancompress.api.compress(model=net, data=data, budget="1/3", out=tmp_path / "no2",
                                 args=args, example_inputs=two, overrides=OPTIONS, log=print)
    result = gancompress.api.compress(model=net, data=data, budget="1/3", out=tmp_path / "run",
                                      args=args, example_inputs=X, condition=first_domain,
                                      overrides=OPTIONS, log=print)
    compact = gancompress.load_generator(result.compact)
    assert compact.arch["condition"] == "user_models.stargan:first_domain"
    assert result.needs_import == ("user_models.stargan:Generator, "
                                   "user_models.stargan:first_domain")
    assert compact.input_names == ("input",)  # an image-to-image model now
    teacher = gancompress.load_generator(result.teacher)
    with torch.no_grad():
        torch.testing.assert_close(teacher(X), net(X, first_domain(X)), atol=1e-5, rtol=1e-5)
        assert compact(X).shape == X.shape
        # explicit further inputs still override the hook
        other = torch.zeros(1, 5)
        other[:, 3] = 1
        torch.testing.assert_close(teacher(X, other), net(X, other), atol=1e-5, rtol=1e-5)
    # the hook is part of the exported graph: the ONNX model takes the image alone
    from gancompress.deploy.onnx_export import export_onnx
    meta = export_onnx(compact, tmp_path / "c.onnx", input_size=(1, 3, 32, 32))
    assert meta["verify"]["max_abs"] <= 1e-4 and "extra_inputs" not in meta


def test_weights_file_with_arch_and_clear_mistakes(tmp_path):
    torch.manual_seed(4)
    net = TransformerNet(width=4).eval()
    torch.save({"state_dict": net.state_dict()}, tmp_path / "w.pth")
    data = make_inverted_pairs(tmp_path / "data", n=8)
    common = dict(data=data, budget="1/3", overrides={**OPTIONS, "train.max_steps": 1},
                  log=print)
    with pytest.raises(UserError, match="give the run folder"):
        gancompress.api.compress(model=net, **common)
    with pytest.raises(UserError, match="arch='pkg.mod:Class'"):
        gancompress.api.compress(model=tmp_path / "w.pth", args={"width": 4},
                                 out=tmp_path / "a", **common)
    g = convert(net, X, args={"width": 4})
    with pytest.raises(UserError, match="already a gancompress generator"):
        gancompress.api.compress(model=g, args={"width": 4}, out=tmp_path / "b", **common)
    with pytest.raises(UserError, match="defined at module level"):
        gancompress.api.compress(model=net, args={"width": 4}, condition=lambda x: x,
                                 out=tmp_path / "c", **common)
    # the weights of the user's class, wrapped under state_dict: converted into the teacher file
    checked = gancompress.api.compress(model=tmp_path / "w.pth", arch=(
        "user_models.johnson:TransformerNet"), args={"width": 4}, example_inputs=X,
        out=tmp_path / "d", dry_run=True, **common)
    assert checked.ran == [] and checked.report is None and not checked.compact.exists()
    assert checked.needs_import == "user_models.johnson:TransformerNet"
    with torch.no_grad():
        torch.testing.assert_close(gancompress.load_generator(checked.teacher)(X), net(X),
                                   atol=1e-5, rtol=1e-5)
