"""Generator registry: architecture name -> elastic generator class.

Every registered class derives from `elastic.ElasticGenerator`, keeps its constructor arguments in
`.arch`, and so can be rebuilt from a checkpoint, compacted, profiled and exported by name.
"""
from __future__ import annotations

from gancompress.errors import UserError
from gancompress.models.elastic import ElasticGenerator
from gancompress.models.resnet import ResnetGenerator

GENERATORS: dict[str, type[ElasticGenerator]] = {
    "resnet": ResnetGenerator,
}


def build_generator(arch_name: str, **arch) -> ElasticGenerator:
    """Instantiate a registered generator from its name and constructor arguments."""
    if arch_name not in GENERATORS:
        raise UserError(f"unknown generator architecture {arch_name!r}; known: {', '.join(GENERATORS)}")
    try:
        return GENERATORS[arch_name](**arch)
    except TypeError as err:
        raise UserError(f"bad arguments for a {arch_name} generator: {err}") from None
