"""Incremental inference: recompute only what an edit of the input changed.

`IncrementalSession(generator, mode="exact" | "fast")` converts any generator automatically
(engine.py: no per-architecture twin); `edits.py` makes synthetic brush-stroke edits of a
family's inputs for profiling and benchmarks.
"""
from gancompress.incremental.session import MODES, IncrementalSession, modes, whole_image_norms

__all__ = ["MODES", "IncrementalSession", "modes", "whole_image_norms"]
