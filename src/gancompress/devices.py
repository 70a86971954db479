"""The one device parser: 'auto', 'cpu', 'cuda', 'cuda:N' -> torch.device, with clear errors."""
from __future__ import annotations

import torch

from gancompress.errors import UserError


def parse_device(name: str | torch.device, option: str = "--device") -> torch.device:
    """`option` names the setting in messages (e.g. "train.device" or "--device")."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"{option} {name!r} is not a device; use auto, cpu, cuda or "
                        f"cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"{option} {name!r}: CUDA is not available on this machine; use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"{option} {name!r}: this machine has {torch.cuda.device_count()} "
                            f"CUDA device(s)")
    elif device.type != "cpu":
        raise UserError(f"{option} {name!r}: only cpu and cuda devices are supported")
    return device
