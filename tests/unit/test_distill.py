"""Feature distillation losses and mappings, and L1-norm channel pruning (distill.py)."""
from __future__ import annotations

import pytest
import torch

from gancompress.compress.distill import (
    FeatureMappings,
    alignment_loss,
    distillation_loss,
    freeze,
    kernel_alignment,
)
from gancompress.compress.prune import channel_importance, l1_prune, permute_channels
from gancompress.models.elastic import (
    ElasticConv2d,
    ElasticConvTranspose2d,
    channel_axes,
    using_widths,
)
from gancompress.models.resnet import ResnetGenerator
from helpers import trained_batchnorm


def test_mapping_init_is_published():
    m = FeatureMappings([16] * 4, [64] * 4)
    w = torch.cat([c.weight.flatten() for c in m.convs])
    assert w.numel() == 4 * 64 * 16 and abs(w.std().item() - 0.02) < 0.002
    assert all(c.bias.abs().sum() == 0 and c.kernel_size == (1, 1) for c in m.convs)


def test_distillation_loss_value():
    m = FeatureMappings([2, 2], [2, 2])
    with torch.no_grad():
        for conv in m.convs:
            conv.weight.copy_(2 * torch.eye(2).view(2, 2, 1, 1))
            conv.bias.fill_(0.5)
    student = [torch.ones(1, 2, 3, 3), torch.zeros(1, 2, 3, 3)]
    teacher = [torch.zeros(1, 2, 3, 3), torch.ones(1, 2, 3, 3)]
    # mapped = 2 s + 0.5: tap 1 (2.5 - 0)^2 = 6.25; tap 2 (0.5 - 1)^2 = 0.25
    assert distillation_loss(student, teacher, m).item() == pytest.approx(6.5)


def test_kernel_alignment_by_hand():
    # one image, 2 positions (rows), X with 2 channels, Y with 1 channel
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])      # X^T X = I -> ||.||_F = sqrt(2)
    y = torch.tensor([[1.0], [1.0]])                # Y^T Y = 2 -> ||.||_F = 2
    # Y^T X = [1, 1] -> ||.||_F^2 = 2; KA = 2 / (sqrt(2) * 2) = 1/sqrt(2)
    student = x.t().reshape(1, 2, 1, 2)             # (B, C, H, W), positions = H*W
    teacher = y.t().reshape(1, 1, 1, 2)
    assert kernel_alignment(student, teacher).item() == pytest.approx(2 ** -0.5)
    # invariant to scale and to an orthogonal change of channels; 1 for identical features
    q = torch.tensor([[0.6, -0.8], [0.8, 0.6]])
    f = torch.randn(3, 2, 4, 4)
    rotated = torch.einsum("ij,bjhw->bihw", q, f)
    assert torch.allclose(kernel_alignment(3 * rotated, f), torch.ones(3), atol=1e-5)
    loss = alignment_loss([student, f], [teacher, rotated], [(0, 0), (1, 1)])
    assert loss.item() == pytest.approx(1 - 2 ** -0.5, abs=1e-5)
    with pytest.raises(ValueError, match="one batch and resolution"):
        kernel_alignment(torch.ones(1, 2, 4, 4), torch.ones(1, 2, 2, 2))


def test_gradients_reach_student_and_mappings_not_teacher():
    teacher = freeze(ResnetGenerator(ngf=8, n_blocks=3))
    student = ResnetGenerator(ngf=4, n_blocks=3, conv="separable")
    mappings = FeatureMappings.between(student, teacher)
    assert [c.in_channels for c in mappings.convs] == [16] * 4
    assert [c.out_channels for c in mappings.convs] == [32] * 4
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        t_out, t_feats = teacher(x, return_features=True)
    with using_widths(student, {"trunk": 8}):  # a narrower sub-network: mappings slice inputs
        s_out, s_feats = student(x, return_features=True)
    assert s_feats[0].shape[1] == 8
    loss = distillation_loss(s_feats, t_feats, mappings) + (s_out - t_out).abs().mean()
    loss.backward()
    assert all(c.weight.grad is not None and c.weight.grad[:, :8].abs().sum() > 0
               for c in mappings.convs)
    assert all(c.weight.grad[:, 8:].abs().sum() == 0 for c in mappings.convs)  # unused inputs
    assert student.stem.conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert not teacher.training


@pytest.mark.parametrize("conv", ["dense", "separable"])
@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_permutation_preserves_function(conv, norm):
    g = ResnetGenerator(ngf=8, n_blocks=3, conv=conv, norm=norm).eval()
    if norm == "batch":  # non-trivial running statistics
        trained_batchnorm(g, weight=True)
    orders = {grp: torch.randperm(w) for grp, w in g.max_widths.items()}
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert (permute_channels(g, orders)(x) - g(x)).abs().max() < 1e-5
    # the table covers both channel dims of every conv weight but the image-facing ones
    axes = channel_axes(g)
    for key, tensor in g.state_dict().items():
        image_facing = key in ("head.weight", "stem.conv.weight")
        if tensor.dim() == 4 and not image_facing and "depthwise" not in key:
            assert {d for d, _ in axes[key]} == {0, 1}, key


def test_l1_prune_keeps_largest_norm_channels():
    g = ResnetGenerator(ngf=8, n_blocks=3, conv="separable").eval()
    with torch.no_grad():  # make stem channels 5 and 2 clearly the largest
        g.stem.conv.weight[5] *= 10
        g.stem.conv.weight[2] *= 5
    importance = channel_importance(g)
    stem_norms = g.stem.conv.weight.abs().sum((1, 2, 3))
    assert torch.equal(importance["stem"].argsort(descending=True),
                       stem_norms.double().argsort(descending=True))
    small, kept = l1_prune(g, {"stem": 4, "trunk": 16})
    assert kept["stem"][:2] == [5, 2]
    assert kept["stem"] == stem_norms.argsort(descending=True)[:4].tolist()
    assert torch.equal(small.stem.conv.weight, g.stem.conv.weight[kept["stem"]])
    assert small.max_widths["stem"] == 4 and small.max_widths["trunk"] == 16
    assert len(kept["trunk"]) == 16 and len(set(kept["trunk"])) == 16


@pytest.mark.parametrize("conv", ["dense", "separable"])
def test_pruned_model_equals_parent_without_other_channels(conv):
    """As designed: the pruned model computes exactly what the parent computes when the dropped
    channels are removed (their producing filters zeroed: InstanceNorm maps them to 0, and 0 adds
    nothing downstream)."""
    parent = ResnetGenerator(ngf=8, n_blocks=3, conv=conv).eval()
    widths = {"stem": 4, "down1": 8, "trunk": 16, "res1": 8, "res2": 16, "res3": 24, "up1": 12,
              "up2": 4}
    small, kept = l1_prune(parent, widths)
    masked = ResnetGenerator(ngf=8, n_blocks=3, conv=conv).eval()
    state = parent.state_dict()
    for name, m in parent.named_modules():  # zero the filters (and biases) that produce dropped channels
        if not isinstance(m, (ElasticConv2d, ElasticConvTranspose2d)) or m.group is None:
            continue
        dim = 1 if isinstance(m, ElasticConvTranspose2d) else 0
        drop = torch.tensor([c for c in range(m.weight.shape[dim]) if c not in kept[m.group]],
                            dtype=torch.long)
        state[f"{name}.weight"] = state[f"{name}.weight"].index_fill(dim, drop, 0.0)
        if m.bias is not None:
            state[f"{name}.bias"] = state[f"{name}.bias"].index_fill(0, drop, 0.0)
    masked.load_state_dict(state)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert (small(x) - masked(x)).abs().max() < 1e-5
        assert (small(x) - parent(x)).abs().max() > 1e-3  # pruning does change the function
