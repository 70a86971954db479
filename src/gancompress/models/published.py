"""Published-format helpers the families' checkpoint readers share: unwrapping the usual
containers of a state dict, and the strict load with messages that name the tensor."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from gancompress.weights import load_state_strict

def load_state_checked(model: torch.nn.Module, state: Mapping[str, torch.Tensor], name: str) -> None:
    """A generator's strict load (weights.load_state_strict) with messages that name the tensor
    and both shapes."""
    load_state_strict(model, state, name,
                      advice="The file does not match the architecture it describes.")


def tensor_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    """The tensor dict inside common wrappers ({'state_dict': ...}, {'netG': ...}), 'module.' stripped."""
    if not isinstance(obj, Mapping):
        return None
    for key in ("state_dict", "netG", "generator", "model"):
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not all(isinstance(v, torch.Tensor) for v in obj.values()):
        return None
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}
