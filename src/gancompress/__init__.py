"""gancompress: make image-to-image GAN generators small and fast (GAN Compression, Li et al. 2020).

Public entry points:
    load_generator(path)      open our checkpoints and the published formats (eval mode)
    save_generator(model, p)  write our self-describing checkpoint
    compact(model, widths)    standalone smaller copy of an elastic generator
    using_widths(model, w)    run an elastic generator at a sub-network's widths
"""
from gancompress.errors import UserError
from gancompress.models.checkpoint import load_generator, save_generator
from gancompress.models.elastic import compact, using_widths

__all__ = ["UserError", "compact", "using_widths", "load_generator", "save_generator"]


def __getattr__(name: str):
    # One version source: pyproject.toml, read from the installed metadata on first use (not at
    # import: importing the package reads no file).
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version
        try:
            return version("gancompress")
        except PackageNotFoundError:  # a source tree on PYTHONPATH that was never installed
            return "0+unknown"
    raise AttributeError(f"module 'gancompress' has no attribute {name!r}")
