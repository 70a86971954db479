"""Automatic elastic conversion of generators gancompress does not ship (tests/user_models):
each converts with zero per-model code, its sub-networks compact exactly (outputs and MACs), the
compact model exports to ONNX verified against PyTorch, and weights in the published key layout
load into the user's module and survive the conversion."""
from __future__ import annotations

import importlib
import random
import re

import pytest
import torch

from gancompress.errors import UserError
from gancompress.metrics.cost import count_macs_both
from gancompress.models.elastic import compact, using_widths
from gancompress.models.traced import TracedGenerator, convert

# (class path, tiny constructor arguments, input shape(s), published keys: name -> shape)
ARCHS = {
    "pix2pixhd": ("user_models.pix2pixhd:GlobalGenerator",
                  dict(ngf=4, n_downsampling=2, n_blocks=2), (1, 3, 32, 32),
                  {"model.1.weight": (4, 3, 7, 7), "model.10.conv_block.1.weight": (16, 16, 3, 3),
                   "model.12.weight": (16, 8, 3, 3), "model.19.bias": (3,)}),
    "cut": ("user_models.cut:ResnetGenerator", dict(ngf=4, n_blocks=2), (1, 3, 32, 32),
            {"model.1.weight": (4, 3, 7, 7), "model.7.filt": (8, 1, 3, 3),
             "model.12.conv_block.5.weight": (16, 16, 3, 3), "model.14.filt": (16, 1, 4, 4)}),
    "johnson": ("user_models.johnson:TransformerNet", dict(width=4), (1, 3, 32, 32),
                {"conv1.conv2d.weight": (4, 3, 9, 9), "in1.weight": (4,),
                 "res1.conv1.conv2d.weight": (16, 16, 3, 3), "deconv3.conv2d.bias": (3,)}),
    "animegan": ("user_models.animegan:Generator", dict(width=4), (1, 3, 32, 32),
                 {"block_a.0.1.weight": (4, 3, 7, 7), "block_a.0.2.weight": (4,),
                  "block_c.1.layers.1.1.weight": (32, 1, 3, 3),
                  "out_layer.0.weight": (3, 4, 1, 1)}),
    "ugatit": ("user_models.ugatit:ResnetGenerator", dict(ngf=4, n_blocks=2, img_size=32),
               (1, 3, 32, 32),
               {"DownBlock.1.weight": (4, 3, 7, 7), "gap_fc.weight": (1, 16),
                "conv1x1.weight": (16, 32, 1, 1), "FC.2.weight": (16, 16),
                "UpBlock1_1.norm1.rho": (1, 16, 1, 1), "UpBlock2.3.gamma": (1, 8, 1, 1)}),
    "esrgan": ("user_models.esrgan:RRDBNet", dict(nf=8, nb=1, gc=4), (1, 3, 16, 16),
               {"conv_first.weight": (8, 3, 3, 3), "RRDB_trunk.0.RDB1.conv5.weight": (8, 24, 3, 3),
                "trunk_conv.weight": (8, 8, 3, 3), "HRconv.weight": (8, 8, 3, 3)}),
    "realesrgan": ("user_models.realesrgan:SRVGGNetCompact",
                   dict(num_feat=8, num_conv=2, upscale=2),
                   (1, 3, 16, 16),
                   {"body.0.weight": (8, 3, 3, 3), "body.1.weight": (8,),
                    "body.6.weight": (12, 8, 3, 3)}),
    "attention_unet": ("user_models.attention_unet:AttU_Net", dict(base=4), (1, 3, 32, 32),
                       {"Conv1.conv.0.weight": (4, 3, 3, 3), "Att5.W_g.0.weight": (16, 32, 1, 1),
                        "Att5.psi.1.running_var": (1,), "Up5.up.1.weight": (32, 64, 3, 3)}),
    "stargan": ("user_models.stargan:Generator", dict(conv_dim=4, c_dim=5, repeat_num=2),
                ((1, 3, 32, 32), (1, 5)),
                {"main.0.weight": (4, 8, 7, 7), "main.1.running_mean": (4,),
                 "main.9.main.0.weight": (16, 16, 3, 3), "main.11.weight": (16, 8, 4, 4)}),
    "transformer": ("user_models.transformer_unet:TransformerUNet", dict(ngf=4), (1, 3, 32, 32),
                    {"down.0.weight": (4, 3, 7, 7), "blocks.0.qkv.weight": (48, 16),
                     "blocks.0.gamma1": (16,), "blocks.1.mlp.2.weight": (16, 32)}),
}


def shapes(name: str) -> list[tuple[int, ...]]:
    shape = ARCHS[name][2]
    return list(shape) if isinstance(shape[0], tuple) else [shape]


def example(name: str, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(batch, *s[1:], generator=gen) * 2 - 1 for s in shapes(name))


def user_module(name: str, seed: int = 0) -> torch.nn.Module:
    path, args, _, _ = ARCHS[name]
    mod, _, cls = path.partition(":")
    torch.manual_seed(seed)
    return getattr(importlib.import_module(mod), cls)(**args)


def randomize(net: torch.nn.Module, seed: int) -> None:
    """Non-trivial norm statistics and per-channel parameters (defaults hide slicing errors)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, t in net.state_dict().items():
            if not t.is_floating_point() or key.endswith("filt"):
                continue
            if key.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif t.dim() <= 1 or key.rsplit(".", 1)[-1] in ("rho", "gamma", "beta"):
                t.copy_(torch.rand(t.shape, generator=gen) * 0.8 - 0.2)


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_published_key_layout_loads_and_survives_conversion(name):
    path, args, shape, keys = ARCHS[name]
    net = user_module(name)
    state = net.state_dict()
    for key, size in keys.items():
        assert tuple(state[key].shape) == size, key
    gen = torch.Generator().manual_seed(1)
    published = {k: torch.randn(v.shape, generator=gen) * 0.1 if v.is_floating_point() else v
                 for k, v in state.items()}
    for k in published:
        if k.endswith("running_var"):
            published[k] = published[k].abs() + 0.5
    net.load_state_dict(published)  # strict: the published layout, nothing missing or extra
    net.eval()
    x = example(name, seed=1)
    g = convert(net, x, args=args).eval()
    assert g.arch["module"] == path
    with torch.no_grad():
        ref = net(*x)
        ref = ref[0] if isinstance(ref, tuple) else ref
        torch.testing.assert_close(g(*x), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_compact_equals_sub_network_and_exports(name, tmp_path, one_thread):
    from gancompress.deploy.onnx_export import export_onnx

    path, args, shape, _ = ARCHS[name]
    net = user_module(name)
    randomize(net, 2)
    g = convert(net.eval(), example(name), args=args).eval()
    assert len(g.max_widths) >= 2 and g.feature_widths
    rng = random.Random(name)
    widths = {k: rng.randint(max(1, v // 4), v) for k, v in g.max_widths.items()}
    x, one = example(name, batch=2, seed=3), example(name, seed=4)
    with torch.no_grad(), using_widths(g, widths):
        expected = g(*x)
        macs = count_macs_both(g, one)
    small = compact(g, widths).eval()
    assert small.max_widths == widths
    with torch.no_grad():
        torch.testing.assert_close(small(*x), expected, atol=1e-5, rtol=1e-5)
    assert count_macs_both(small, one) == macs
    assert macs[0] < count_macs_both(g, one)[0]
    meta = export_onnx(small, tmp_path / "g.onnx", input_size=shapes(name)[0])
    assert meta["verify"]["max_abs"] <= 1e-4


def test_taps_follow_widths_and_checkpoints_reopen(tmp_path):
    from gancompress.models.checkpoint import load_generator, save_generator

    path, args, shape, _ = ARCHS["ugatit"]
    g = TracedGenerator(module=path, args=args, inputs=[list(shape)]).eval()
    # CAM multiplies the encoder trunk by its classifiers' own weights: that trunk keeps its
    # width; the AdaLIN decoder (rho sliced inside the user's module) stays elastic
    assert "DownBlock.9" in g.analysis.pinned and "DownBlock.9" not in g.max_widths
    assert "conv1x1" in g.max_widths and ("UpBlock1_1.norm1", "rho") in g.analysis.free
    widths = {k: max(1, v // 2) for k, v in g.max_widths.items()}
    x = torch.rand(shape) * 2 - 1
    with using_widths(g, widths):
        _, feats = g(x, return_features=True)
    assert [f.shape[1] for f in feats] == [widths[k] for k in g.feature_widths]
    save_generator(compact(g, widths), tmp_path / "small.pth")
    again = load_generator(tmp_path / "small.pth")
    assert again.max_widths == widths
    with torch.no_grad(), using_widths(g, widths):
        torch.testing.assert_close(again(x), g(x), atol=1e-5, rtol=1e-5)


def test_pickles_for_worker_processes():
    import pickle

    path, args, shape, _ = ARCHS["ugatit"]
    g = TracedGenerator(module=path, args=args, inputs=[list(shape)]).eval()
    randomize(g, 5)
    again = pickle.loads(pickle.dumps(g))
    widths = {k: max(1, v // 2) for k, v in g.max_widths.items()}
    x = torch.rand(shape) * 2 - 1
    with torch.no_grad(), using_widths(g, widths), using_widths(again, widths):
        torch.testing.assert_close(again(x), g(x), atol=0, rtol=0)


def test_default_search_space_from_widths():
    path, args, shape, _ = ARCHS["pix2pixhd"]
    g = TracedGenerator(module=path, args=dict(ngf=16, n_downsampling=2, n_blocks=1),
                        inputs=[list(shape)])
    space = dict(zip(g.max_widths, g.search_spaces()["fractions"]))
    assert space["model.1"] == [16, 12, 8, 4] and space["model.7"] == [64, 48, 32, 16]
    text = g.config_from_widths(g.max_widths)
    assert g.widths_from_config(text) == g.max_widths


class DataDependent(torch.nn.Module):
    """A forward that needs real values (.item()): traced on real tensors, not on meta ones."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.head = torch.nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x):
        h = self.conv(x)
        if h.abs().max().item() > 1e6:  # a guard a user might write
            h = h.clamp(-1e6, 1e6)
        return self.head(torch.relu(h))


def test_forward_that_needs_values_is_traced_on_real_tensors():
    from gancompress.models.channel_groups import _meta_trace

    x = torch.rand(1, 3, 8, 8)
    assert _meta_trace(DataDependent(), (x,), set()) is None
    g = convert(DataDependent(), x).eval()
    assert g.max_widths == {"conv": 8}
    with torch.no_grad(), using_widths(g, {"conv": 3}):
        torch.testing.assert_close(compact(g, {"conv": 3})(x), g(x), atol=1e-6, rtol=1e-6)


# -- what cannot shrink: one UserError naming the layer and the fix ---------------------------

class Mixer(torch.nn.Module):
    """Folds channels into space (a reshape the analysis cannot follow)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.head = torch.nn.Conv2d(2, 3, 3, padding=1)

    def forward(self, x):
        h = self.conv(x)
        b, c, hh, ww = h.shape
        return self.head(h.reshape(b, 2, c // 2 * hh, ww)[:, :, : hh])


class Assign(torch.nn.Module):
    """Writes a layer's output into a buffer of fixed width (x[...] = y)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.mid = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.head = torch.nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x):
        h = x.new_zeros(x.shape[0], 8, x.shape[2], x.shape[3])
        h[:, :] = self.conv(x)
        return self.head(torch.relu(self.mid(h)))


class Spectral(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.utils.spectral_norm(torch.nn.Conv2d(3, 8, 3, padding=1))
        self.mid = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.head = torch.nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x):
        return self.head(torch.relu(self.mid(torch.relu(self.conv(x)))))


def test_unsupported_operations_name_the_layer_and_pinning_fixes_them():
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(UserError,
                       match=r"reshape .* mixes channels.*layer\(s\) conv.*pinned=\['conv'\]"):
        convert(Mixer(), x)
    with pytest.raises(UserError, match=r"assignment x\[...\] = y .* layer\(s\) conv"):
        convert(Assign(), x)
    assert list(convert(Assign(), x, pinned=["conv"]).max_widths) == ["mid"]
    with pytest.raises(UserError, match="spectral norm .* layer 'conv'.*pinned=\\['conv'\\]"):
        convert(Spectral(), x)
    g = convert(Spectral(), x, pinned=["conv"])
    assert list(g.max_widths) == ["mid"]  # conv keeps its 8 channels, mid shrinks
    with pytest.raises(UserError, match="not modules of this model"):
        convert(Spectral(), x, pinned=["nope"])


def test_multi_head_attention_is_pinned_by_name_as_the_error_says():
    from user_models.transformer_unet import TransformerUNet

    x = torch.rand(1, 3, 32, 32)
    net = TransformerUNet(ngf=4, heads=2).eval()
    with pytest.raises(UserError, match="mixes channels") as err:
        convert(net, x, args={"ngf": 4, "heads": 2})
    pinned = re.search(r"pinned=(\[.*?\])", str(err.value)).group(1)
    assert pinned == "['blocks.0.qkv', 'blocks.1.qkv']"
    g = convert(net, x, args={"ngf": 4, "heads": 2}, pinned=eval(pinned)).eval()
    assert "blocks.0.mlp.0" in g.max_widths and "down.6" not in g.max_widths  # trunk fixed
    widths = {k: max(1, v // 2) for k, v in g.max_widths.items()}
    with torch.no_grad(), using_widths(g, widths):
        torch.testing.assert_close(compact(g, widths)(x), g(x), atol=1e-5, rtol=1e-5)


def test_missing_module_or_arguments_are_user_errors(tmp_path):
    from gancompress.models.checkpoint import load_generator, save_generator

    path, args, shape, _ = ARCHS["johnson"]
    g = TracedGenerator(module=path, args=args, inputs=[list(shape)])
    save_generator(g, tmp_path / "g.pth")
    obj = torch.load(tmp_path / "g.pth", weights_only=True)
    obj["arch"]["module"] = "moved_away.nets:TransformerNet"
    torch.save(obj, tmp_path / "moved.pth")
    with pytest.raises(UserError, match="module 'moved_away.nets'.*make it importable"):
        load_generator(tmp_path / "moved.pth")
    with pytest.raises(UserError, match="cannot import module 'no_such_pkg.net'.*PYTHONPATH"):
        TracedGenerator(module="no_such_pkg.net:Gen")
    with pytest.raises(UserError, match="has no 'Nope'"):
        TracedGenerator(module="user_models.cut:Nope")
    net = user_module("johnson")  # built with width=4, not the default 32
    with pytest.raises(UserError, match="builds a different model.*args="):
        convert(net, torch.rand(1, 3, 16, 16))


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_plain_pix2pix_resnet_converts_like_the_family_reads_it(norm):
    """The GAN Compression teacher as a user's plain module (bench/bench_auto_convert.py times
    it at ngf 64): its published state dict opens in the ResNet family, and the automatic
    conversion gives the same outputs with one width group per stage and per block."""
    from gancompress.models.checkpoint import generator_from_object
    from user_models.pix2pix_resnet import ResnetGenerator

    args = dict(ngf=8, n_blocks=3, norm=norm)
    torch.manual_seed(0)
    net = ResnetGenerator(**args)
    randomize(net, 5)
    net.eval()
    family, fmt = generator_from_object(net.state_dict())
    assert "pytorch-CycleGAN-and-pix2pix ResNet" in fmt
    x = example("cut", batch=2, seed=6)[0]
    g = convert(net, x[:1], args=args).eval()
    assert len(g.max_widths) == 3 + args["n_blocks"] + 2  # stem, down, trunk, blocks, 2 ups
    with torch.no_grad():
        torch.testing.assert_close(g(x), net(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(family.eval()(x), net(x), atol=1e-5, rtol=1e-5)


def test_adaptive_pooling_does_not_constrain_the_input_size():
    """An SE gate's global pooling makes 1x1 maps at any input size: only the stride-2 conv sets
    the size multiple (it was once the whole input side, refusing every other size)."""
    from gancompress.models.channel_groups import analyze

    class Gated(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.down = torch.nn.Conv2d(3, 8, 3, 2, 1)
            self.gate = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1),
                                            torch.nn.Conv2d(8, 2, 1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(2, 8, 1), torch.nn.Sigmoid())
            self.up = torch.nn.ConvTranspose2d(8, 3, 4, 2, 1)

        def forward(self, x):
            h = self.down(x)
            return self.up(h * self.gate(h))

    assert analyze(Gated(), [torch.zeros(1, 3, 64, 64)]).size_multiple == 2
