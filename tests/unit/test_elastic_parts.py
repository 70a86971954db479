"""Channel parts: a layer fed a concatenation slices each part; a linear layer's output split
into parts follows each part's group. compact() and pruning derive what to keep from the
declarations alone (a toy family defined here, not registered)."""
from __future__ import annotations

import random

import torch
import torch.nn as nn

from gancompress.compress.prune import l1_prune, permute_channels
from gancompress.models.elastic import (ElasticConv2d, ElasticGenerator, ElasticLinear,
                                        channel_axes, compact, norm_layer, using_widths)


class ToySkip(ElasticGenerator):
    """x -> a (group a) -> b (group b) -> conv over cat([a, b]) (group c) -> modulated by an MLP
    whose output holds a scale for group c and a shift for group a, then a head."""

    arch_name = "toy"

    def __init__(self, widths=None):
        super().__init__()
        w = {"a": 8, "b": 6, "c": 10, **(widths or {})}
        self.arch = {"widths": w}
        self.conv_a = ElasticConv2d(3, w["a"], 3, group="a", padding=1)
        self.norm_a = norm_layer("batch", w["a"], "a")
        self.conv_b = ElasticConv2d(w["a"], w["b"], 3, group="b", in_group="a", padding=1)
        self.conv_c = ElasticConv2d(w["a"] + w["b"], w["c"], 3, group="c",
                                    in_parts=[("a", w["a"]), ("b", w["b"])], padding=1)
        self.mlp = ElasticLinear(4, w["c"] + w["a"], out_parts=[("c", w["c"]), ("a", w["a"])])
        self.head = ElasticConv2d(w["c"] + w["a"], 3, 1, in_parts=[("c", w["c"]), ("a", w["a"])])

    def forward(self, x, code):
        a = torch.relu(self.norm_a(self.conv_a(x)))
        b = torch.relu(self.conv_b(a))
        c = self.conv_c(torch.cat([a, b], 1))
        params = self.mlp(code)
        k = c.shape[1]
        c = c * (1 + params[:, :k, None, None])
        a = a + params[:, k:, None, None]
        return torch.tanh(self.head(torch.cat([c, a], 1)))


def _inputs(batch=2):
    g = torch.Generator().manual_seed(0)
    return torch.rand(batch, 3, 16, 16, generator=g) * 2 - 1, torch.randn(batch, 4, generator=g)


def test_compact_slices_each_part():
    model = ToySkip().eval()
    x = _inputs()
    rng = random.Random(0)
    for _ in range(5):
        widths = {"a": rng.randint(1, 8), "b": rng.randint(1, 6), "c": rng.randint(1, 10)}
        with using_widths(model, widths):
            expected = model(*x)
        small = compact(model, widths).eval()
        assert small.conv_c.weight.shape[1] == widths["a"] + widths["b"]
        assert small.mlp.weight.shape[0] == widths["c"] + widths["a"]
        torch.testing.assert_close(small(*x), expected, atol=1e-5, rtol=1e-5)


def test_axes_follow_declarations():
    axes = channel_axes(ToySkip())
    assert axes["conv_c.weight"] == [(0, (("c", 10),)), (1, (("a", 8), ("b", 6)))]
    assert axes["mlp.weight"] == [(0, (("c", 10), ("a", 8)))]  # fixed input part dropped
    assert axes["norm_a.running_mean"] == [(0, (("a", 8),))]


def test_permutation_and_pruning_with_parts():
    model = ToySkip().eval()
    model.norm_a.running_mean.uniform_(-1, 1)
    x = _inputs()
    orders = {g: torch.randperm(w) for g, w in model.max_widths.items()}
    with torch.no_grad():
        torch.testing.assert_close(permute_channels(model, orders)(*x), model(*x),
                                   atol=1e-5, rtol=1e-5)
    small, kept = l1_prune(model, {"a": 4, "b": 3, "c": 5})
    assert len(kept["a"]) == 4 and small.max_widths == {"a": 4, "b": 3, "c": 5}
    assert torch.equal(small.conv_a.weight, model.conv_a.weight[kept["a"]])


def test_gradients_reach_only_the_active_parts():
    model = ToySkip()
    with using_widths(model, {"a": 3, "b": 2}):
        model(*_inputs()).mean().backward()
    grad = model.conv_c.weight.grad  # columns: a 0..7, b 8..13
    active = torch.zeros(14, dtype=torch.bool)
    active[[0, 1, 2, 8, 9]] = True
    assert grad[:, active].abs().sum() > 0 and grad[:, ~active].abs().sum() == 0
    assert isinstance(model.conv_c, nn.Conv2d)
