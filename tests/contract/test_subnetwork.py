"""One way to evaluate a sub-network (models.elastic.sub_network): BatchNorm statistics are
re-calibrated on training batches before a sub-network is scored or extracted."""
from __future__ import annotations

import pytest
import torch

from gancompress.compress.scoring import ReconstructionScorer
from gancompress.compress.space import SearchSpace
from gancompress.models.elastic import (
    calibrated_compact,
    compact,
    recalibrate_bn,
    sub_network,
    using_widths,
)
from gancompress.models.resnet import ResnetGenerator, decode_config

SPACE = SearchSpace("tiny", ((8, 4),) * 8, decode_config)


def _supernet_with_stale_statistics() -> ResnetGenerator:
    """A BatchNorm supernet whose running statistics match no sub-network (as after supernet
    training, when every step ran other widths)."""
    model = ResnetGenerator(ngf=8, n_blocks=3, norm="batch").eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.2, 3)
    return model


def _l1(model, held):
    with torch.no_grad():
        return sum((model(s) - r).abs().flatten(1).mean(1).sum().item() for s, r in held) / sum(
            len(s) for s, _ in held)


def test_bn_subnetwork_is_scored_after_recalibration():
    model = _supernet_with_stale_statistics()
    g = torch.Generator().manual_seed(0)
    calibration = [torch.rand(4, 3, 32, 32, generator=g) * 2 - 1 for _ in range(3)]
    held = [(torch.rand(3, 3, 32, 32, generator=g) * 2 - 1,
             torch.rand(3, 3, 32, 32, generator=g) * 2 - 1)]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = [4, 8, 4, 8, 4, 8, 4, 8]
    widths = SPACE.widths(config)

    score = ReconstructionScorer(model, SPACE, held, "l1", calibration=calibration)(config)

    with using_widths(model, widths):  # what scoring without re-calibration would give
        uncalibrated = _l1(model, held)
    by_hand = compact(model, widths)
    recalibrate_bn(by_hand, calibration)
    by_hand.eval()
    assert score == pytest.approx(_l1(by_hand, held), abs=1e-6)
    assert abs(score - uncalibrated) > 1e-3
    assert score == pytest.approx(_l1(calibrated_compact(model, widths, calibration), held),
                                  abs=1e-6)
    # the supernet's own statistics, widths and mode are left as they were
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not model.training


def test_bn_subnetwork_without_calibration_is_refused():
    model = _supernet_with_stale_statistics()
    with pytest.raises(ValueError, match="BatchNorm"):
        with sub_network(model, SPACE.widths([4] * 8)):
            pass


def test_instance_norm_needs_no_calibration():
    model = ResnetGenerator(ngf=8, n_blocks=3).eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    widths = SPACE.widths([4] * 8)
    with sub_network(model, widths) as sub:
        out = sub(x)
    torch.testing.assert_close(out, compact(model, widths).eval()(x), atol=1e-5, rtol=1e-5)
