"""Image-quality numbers between generator outputs and references (one PSNR, one L1).

Images are in [-1, 1] (the generators' range); PSNR uses the peak-to-peak range 2, i.e. peak 1
on the [0, 1] scale. `psnr_uint8` follows the published evaluation (images truncated to uint8
first, as FID does: imaging.to_uint8_tensor).
"""
from __future__ import annotations

import math

import torch

from gancompress.errors import UserError


def psnr_per_image(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """(B,) PSNR in dB of each image pair (float images in [-1, 1])."""
    mse = (((fake - real) / 2) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return -10 * torch.log10(mse)


def psnr(reference: torch.Tensor, other: torch.Tensor) -> float:
    """PSNR in dB over whole tensors in [-1, 1]; inf when identical."""
    mse = torch.mean((reference.double() - other.double()) ** 2).item()
    return math.inf if mse == 0 else 10 * math.log10(4.0 / mse)


def l1_per_image(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """(B,) mean absolute error of each image pair, in [-1, 1] units."""
    return (fake - real).abs().flatten(1).mean(1)


def psnr_uint8(fake: torch.Tensor, target: torch.Tensor) -> list[float]:
    """Per-image PSNR (dB) between uint8 versions (published truncation) of two batches."""
    from gancompress.imaging import to_uint8_tensor

    a = to_uint8_tensor(fake).double()
    b = to_uint8_tensor(target.to(fake.device)).double()
    if a.shape != b.shape:
        raise UserError(f"psnr: generated images {tuple(a.shape)} and targets {tuple(b.shape)} "
                        f"differ in shape")
    mse = ((a - b) ** 2).flatten(1).mean(1)
    return [math.inf if m == 0 else 10 * math.log10(255.0 ** 2 / m) for m in mse.tolist()]
