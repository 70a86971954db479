"""Search spaces: the allowed choices per position of a config string, and their encoding.

A config is a list of numbers c0..c7 (REFERENCE.md sec. 2); `SearchSpace.widths(config)` turns it
into the per-group channel widths of the generator, `encode`/`decode` into the published string
'16_16_32_16_32_32_16_16'. Choices are listed widest first, as published.
"""
from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from gancompress.errors import UserError
from gancompress.models import resnet

Config = list[int]

# Published ResNet spaces (REFERENCE.md sec. 2).
PRESETS: dict[str, list[list[int]]] = {
    "channels-48": [[48, 32]] * 2 + [[48, 40, 32]] * 4 + [[48, 32, 24, 16]] * 2,
    "channels-32": [[32, 24, 16]] * 8,
    "channels-64-cycleGAN": [[64, 48, 32, 24, 16]] * 8,
    "channels-64-pix2pix": [[64, 56, 48, 40, 32, 24, 16]] * 8,
}


@dataclass(frozen=True)
class SearchSpace:
    """Choices per config position, and how a config maps to generator widths."""

    name: str
    choices: tuple[tuple[int, ...], ...]
    to_widths: Callable[[Sequence[int]], dict[str, int]] = resnet.decode_config

    @classmethod
    def from_name(cls, name: str) -> SearchSpace:
        if name not in PRESETS:
            raise UserError(f"unknown search space {name!r}; known: {', '.join(PRESETS)}")
        return cls(name, tuple(tuple(c) for c in PRESETS[name]))

    @classmethod
    def uniform(cls, ngf: int, fractions: Sequence[float] = (1, 0.75, 0.5, 0.375, 0.25),
                positions: int = 8, step: int = 4) -> SearchSpace:
        """A space for a student of width `ngf`: each position in ngf * fractions, multiples of step."""
        values = sorted({max(step, int(round(ngf * f / step)) * step) for f in fractions}, reverse=True)
        return cls(f"uniform-{ngf}", tuple(tuple(values) for _ in range(positions)))

    @property
    def size(self) -> int:
        return math.prod(len(c) for c in self.choices)

    def largest(self) -> Config:
        return [max(c) for c in self.choices]

    def smallest(self) -> Config:
        return [min(c) for c in self.choices]

    def sample(self, rng: random.Random) -> Config:
        """Each position uniformly and independently (the published supernet sampling)."""
        return [rng.choice(c) for c in self.choices]

    def all(self) -> Iterator[Config]:
        for combo in itertools.product(*self.choices):
            yield list(combo)

    def validate(self, config: Sequence[int]) -> Config:
        if len(config) != len(self.choices):
            raise UserError(f"config {self.encode_unchecked(config)!r} has {len(config)} numbers; "
                            f"space {self.name} has {len(self.choices)} positions")
        for pos, (value, allowed) in enumerate(zip(config, self.choices)):
            if value not in allowed:
                raise UserError(f"config {self.encode_unchecked(config)!r}: position {pos} is "
                                f"{value}, allowed values in space {self.name} are "
                                f"{', '.join(map(str, allowed))}")
        return list(config)

    def widths(self, config: Sequence[int]) -> dict[str, int]:
        return self.to_widths(self.validate(config))

    @staticmethod
    def encode_unchecked(config: Sequence[int]) -> str:
        return "_".join(str(int(c)) for c in config)

    def encode(self, config: Sequence[int]) -> str:
        return self.encode_unchecked(self.validate(config))

    def decode(self, text: str) -> Config:
        parts = text.strip().split("_")
        for pos, part in enumerate(parts):
            if not part.isdigit():
                raise UserError(f"config string {text!r}: position {pos} is {part!r}, expected one "
                                f"of {', '.join(map(str, self.choices[min(pos, len(self.choices) - 1)]))}")
        return self.validate([int(p) for p in parts])
