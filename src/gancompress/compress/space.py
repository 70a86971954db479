"""Search spaces: the allowed choices per position of a config string, and their encoding.

A config is the list of numbers of a family's published config string (8 for ResNet and SPADE,
10 for MUNIT, one per level for U-Net); `SearchSpace.widths(config)` turns it into the per-group
channel widths through the generator's own codec (`model.widths_from_config`), `encode`/`decode` into
the string '16_16_32_16_32_32_16_16'. Choices are listed widest first, as published. Named spaces
are the family's (`model.search_spaces()`): `channels-48` means different things per family.
"""
from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gancompress.errors import UserError

Config = list[int]


@dataclass(frozen=True)
class SearchSpace:
    """Choices per config position, and how a config maps to generator widths."""

    name: str
    choices: tuple[tuple[int, ...], ...]
    to_widths: Callable[[Sequence[int]], dict[str, int]] = field(compare=False, repr=False)

    @classmethod
    def for_model(cls, model: Any, text: str) -> SearchSpace:
        """A space for `model`'s family from a setting: a preset name of the family, 'a,b,c' (the
        same choices at every position) or a JSON list of per-position lists."""
        text = text.strip() or model.default_space()
        presets = model.search_spaces()
        n = model.config_length()
        if text in presets:
            return cls(text, tuple(tuple(c) for c in presets[text]), model.widths_from_config)
        try:
            if text.startswith("["):
                choices = [sorted({int(v) for v in pos}, reverse=True) for pos in json.loads(text)]
            else:
                choices = [sorted({int(v) for v in text.split(",")}, reverse=True)] * n
        except (ValueError, TypeError, json.JSONDecodeError):
            raise UserError(f"search space {text!r}: use a {model.arch_name} preset "
                            f"({', '.join(presets) or 'none'}), widths such as 16,12,8, or a "
                            f"JSON list of {n} lists") from None
        if len(choices) != n or any(not pos or min(pos) < 1 for pos in choices):
            raise UserError(f"search space {text!r}: a {model.arch_name} space has {n} positions "
                            f"of positive widths")
        name = ("custom-" + "-".join(map(str, choices[0])) if all(c == choices[0] for c in choices)
                else "custom")
        return cls(name, tuple(tuple(c) for c in choices), model.widths_from_config)

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], model: Any) -> SearchSpace:
        """The space recorded in a supernet's metadata (`to_meta`), decoded by `model`'s family."""
        return cls(str(meta["name"]), tuple(tuple(int(v) for v in c) for c in meta["choices"]),
                   model.widths_from_config)

    def to_meta(self) -> dict[str, Any]:
        return {"name": self.name, "choices": [list(c) for c in self.choices]}

    @classmethod
    def uniform(cls, model: Any, ngf: int,
                fractions: Sequence[float] = (1, 0.75, 0.5, 0.375, 0.25), step: int = 4
                ) -> SearchSpace:
        """A space for a student of width `ngf`: each position in ngf * fractions, multiples of step."""
        values = sorted({max(step, int(round(ngf * f / step)) * step) for f in fractions}, reverse=True)
        return cls(f"uniform-{ngf}", tuple(tuple(values) for _ in range(model.config_length())),
                   model.widths_from_config)

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
