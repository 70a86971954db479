"""Generator registry: family name -> elastic generator class (the registry entry is all a caller
needs: constructor, config-string codec, search spaces, taps, inputs, published readers).

Adding a family = a new module with one `ElasticGenerator` subclass + one line here.
"""
from __future__ import annotations

from typing import Any

from gancompress.errors import UserError
from gancompress.models.elastic import ElasticGenerator
from gancompress.models.munit import MunitGenerator
from gancompress.models.resnet import ResnetGenerator
from gancompress.models.spade import SpadeGenerator
from gancompress.models.traced import TracedGenerator
from gancompress.models.unet import UnetGenerator

GENERATORS: dict[str, type[ElasticGenerator]] = {
    ResnetGenerator.arch_name: ResnetGenerator,
    UnetGenerator.arch_name: UnetGenerator,
    MunitGenerator.arch_name: MunitGenerator,
    SpadeGenerator.arch_name: SpadeGenerator,
    TracedGenerator.arch_name: TracedGenerator,  # a user's own module (--arch pkg.mod:Class)
}


def generator_class(arch_name: str) -> type[ElasticGenerator]:
    if arch_name not in GENERATORS:
        raise UserError(f"unknown generator architecture {arch_name!r}; known: {', '.join(GENERATORS)}")
    return GENERATORS[arch_name]


def build_generator(arch_name: str, **arch: Any) -> ElasticGenerator:
    """Instantiate a registered generator from its name and constructor arguments (checked)."""
    cls = generator_class(arch_name)
    try:
        return cls(**cls.arch_args(arch))
    except TypeError as err:
        raise UserError(f"bad arguments for a {arch_name} generator: {err}") from None
