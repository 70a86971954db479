"""Elastic width: one set of layers that serves the full model, the supernet and every sub-network.

The concepts live in their own modules; this module re-exports them, so
`from gancompress.models.elastic import X` works for every X it ever held:

    models/layers.py       elastic layers (conv, transposed conv, linear, norms, synchronized
                           BatchNorm) with declared width groups and channel parts, channel_axes
    models/family.py       the family contract (ElasticGenerator), config-string helpers, and the
                           width operations: using_widths, current_widths, crop_state, compact
    models/calibration.py  BatchNorm re-calibration and sub_network, the one way to evaluate a
                           sub-network
    models/published.py    published-format helpers: tensor_dict, load_state_checked

An elastic layer holds its widest weights and, when narrowed, runs with the *first k* output
channels (GAN Compression sec. 3.3). The active widths are the only hidden state; they are set
through `using_widths(model, widths)` and nowhere else. `compact(model, widths)` builds the same
generator class at those widths (`compact(g, w)(x) == g@w(x)`); `sub_network(model, widths,
calibration)` evaluates one with BatchNorm statistics re-calibrated first.
"""
from __future__ import annotations

from gancompress.models.calibration import (
    batchnorms,
    calibrated_compact,
    recalibrate_bn,
    sub_network,
)
from gancompress.models.family import (
    ElasticGenerator,
    Position,
    aligned_choices,
    compact,
    config_number,
    crop_state,
    current_widths,
    decode_positions,
    encode_positions,
    parse_config_numbers,
    using_widths,
)
from gancompress.models.layers import (
    Axes,
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticConvTranspose2d,
    ElasticInstanceNorm2d,
    ElasticLinear,
    ElasticModule,
    ElasticScale2d,
    Part,
    Parts,
    SeparableConv2d,
    NORMS,
    Widths,
    as_parts,
    channel_axes,
    elastic_layers,
    elastic_modules,
    norm_layer,
    part_index,
    synchronize_batchnorm,
)
from gancompress.models.published import (
    load_state_checked,
    tensor_dict,
)

__all__ = [
    "Axes", "ElasticBatchNorm2d", "ElasticConv2d", "ElasticConvTranspose2d", "ElasticGenerator",
    "ElasticInstanceNorm2d", "ElasticLinear", "ElasticModule", "ElasticScale2d", "Part", "Parts",
    "NORMS", "SeparableConv2d", "Widths", "aligned_choices", "as_parts", "batchnorms",
    "calibrated_compact", "channel_axes",
    "compact", "config_number", "crop_state", "current_widths", "decode_positions",
    "encode_positions", "Position", "elastic_layers",
    "elastic_modules", "load_state_checked", "norm_layer", "parse_config_numbers", "part_index",
    "recalibrate_bn", "sub_network", "synchronize_batchnorm", "tensor_dict", "using_widths"]
