"""Verification of an export: the inputs it is checked on and the comparison with PyTorch.

Every exporter (ONNX, TorchScript, OpenVINO) writes its file only after the exported model,
run through an inference session (deploy/session.py), reproduced `reference_output` on
`verification_inputs` within FP32_TOLERANCE (max abs error) - or, for reduced precisions, a PSNR
floor. The same inputs and comparison serve the latency backends' quality checks.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn

from gancompress.metrics.quality import psnr

# fp32 exports must agree with PyTorch to this max abs error (outputs in [-1, 1]; one uint8
# level is 2/255 = 7.8e-3, float reordering gives ~1e-6).
FP32_TOLERANCE = 1e-3


def extra_inputs(model: nn.Module, input_size: Sequence[int], batch: int, seed: int = 0
                 ) -> dict[str, torch.Tensor]:
    """forward() inputs after the image (e.g. MUNIT's style code), by their family's names,
    drawn reproducibly: they become further ONNX inputs."""
    names = getattr(model, "input_names", ("input",))
    if len(names) < 2 or not hasattr(model, "example_inputs"):
        return {}
    gen = torch.Generator().manual_seed(seed)
    inputs = model.example_inputs(tuple(input_size)[2:], batch, generator=gen)[1:]
    return {name: t.float().cpu() for name, t in zip(names[1:], inputs)}


def family_inputs(model: nn.Module, input_size: Sequence[int], count: int = 2, seed: int = 0
                  ) -> torch.Tensor:
    """`count` first inputs of the model's family at input_size (e.g. random label maps as
    one-hot + edges), drawn reproducibly: verification inputs for non-image inputs."""
    gen = torch.Generator().manual_seed(seed)
    return model.example_inputs(tuple(input_size)[2:], count, generator=gen)[0].float().cpu()


def verification_inputs(model: nn.Module, input_size: Sequence[int],
                        given: torch.Tensor | None = None) -> torch.Tensor:
    """What an export is checked on: `given`, else the family's own inputs when they are not
    images (SPADE's one-hot label maps), else smooth random images (`sample_inputs`)."""
    if given is None and not getattr(model, "image_input", True):
        return family_inputs(model, input_size)
    return sample_inputs(input_size, given)


def sample_inputs(input_size: Sequence[int], images: torch.Tensor | None = None, count: int = 2,
                  seed: int = 0) -> torch.Tensor:
    """Inputs for verification: given images, else smooth random images in [-1, 1] (batch
    `count` > 1 checks the dynamic batch dimension too)."""
    if images is not None:
        return images.float().cpu()
    g = torch.Generator().manual_seed(seed)
    _, c, h, w = input_size
    coarse = torch.rand(count, c, max(1, h // 8), max(1, w // 8), generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear",
                                             align_corners=False)
    noise = 0.1 * torch.randn(count, c, h, w, generator=g)
    return (smooth * 2 - 1 + noise).clamp(-1, 1)


@torch.no_grad()
def reference_output(model: nn.Module, inputs: torch.Tensor, *extra: torch.Tensor
                     ) -> torch.Tensor:
    """The PyTorch output the export must reproduce (eval mode, CPU, float32)."""
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        return model(inputs.to(device), *(t.to(device) for t in extra)).float().cpu()
    finally:
        model.train(was_training)


def compare(reference: torch.Tensor, output: torch.Tensor | np.ndarray) -> dict[str, float]:
    output = torch.as_tensor(np.asarray(output)).float()
    if tuple(output.shape) != tuple(reference.shape):
        return {"max_abs": math.inf, "psnr": -math.inf}
    return {"max_abs": float((output - reference).abs().max()), "psnr": psnr(reference, output)}
