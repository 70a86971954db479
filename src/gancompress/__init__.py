"""gancompress: make image-to-image GAN generators small and fast (GAN Compression, Li et al. 2020).

Public entry points:
    load_generator(path)      open our checkpoints and the published formats (eval mode)
    save_generator(model, p)  write our self-describing checkpoint
    compact(model, widths)    standalone smaller copy of an elastic generator
    using_widths(model, w)    run an elastic generator at a sub-network's widths
    api.compress(model=..., data=..., budget=..., out=...)
                              compress a generator (yours as an nn.Module, or a checkpoint):
                              the `gancompress compress` command as a call (gancompress.api)

The entry points are imported on first use (PEP 562): `import gancompress` and the command
line's `--help` / `--version` never import torch, which alone takes over a second.
"""
from __future__ import annotations

import importlib
from typing import Any

from gancompress.errors import UserError

# public name -> module that defines it (imported when the name is first read)
_LAZY = {
    "load_generator": "gancompress.models.checkpoint",
    "save_generator": "gancompress.models.checkpoint",
    "compact": "gancompress.models.elastic",
    "using_widths": "gancompress.models.elastic",
}

# submodules read as attributes (`gancompress.api.compress(...)` after `import gancompress`)
_LAZY_MODULES = {"api"}

__all__ = ["UserError", "api", "compact", "using_widths", "load_generator", "save_generator"]


def _version() -> str:
    """The installed distribution's version (pyproject.toml is the one source); a source tree
    on PYTHONPATH without an installed copy says so instead of inventing a number."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gancompress")
    except PackageNotFoundError:
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":  # importlib.metadata costs ~50 ms: only when asked
        globals()["__version__"] = _version()
        return globals()["__version__"]
    if name in _LAZY_MODULES:
        return importlib.import_module(f"gancompress.{name}")  # binds itself on the package
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later reads skip this hook
        return value
    raise AttributeError(f"module 'gancompress' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _LAZY_MODULES | {"__version__"})
