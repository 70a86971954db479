"""Width samplers: which sub-networks of the student a compression step trains.

    fixed       the student's own widths (distill: the original pipeline's pre-distilled
                student, or its mobile teacher)
    uniform     once-for-all training: one sub-network per step, every position drawn uniformly
                and independently (compress.sampling=uniform, published)
    sandwich    the widest, the narrowest and one uniformly drawn sub-network per step, their
                losses (gradients) summed (compress.sampling=sandwich)
    one config  the chosen sub-network compress.config of a trained supernet (finetune)

Draws come from `width_rng(seed, step)`, a pure function of (seed, step): every process of a
multi-process run trains the same sub-network, and a resumed run (any process count) draws what
an uninterrupted one would; no global RNG is touched.

`sampler_for(stage, config, space)` gives the sampler of a compression stage (distill |
supernet | finetune); `widths(step)` lists the step's sub-networks (None: the student's own
widths) and `shown()` those drawn in the sample grids.
"""
from __future__ import annotations

import random

import numpy as np

from gancompress.compress.space import SearchSpace
from gancompress.config import Config
from gancompress.errors import UserError

Widths = dict[str, int] | None


def width_rng(seed: int, step: int) -> random.Random:
    """The generator of step `step`'s sub-network: a pure function of (seed, step)."""
    words = np.random.SeedSequence([2, seed % 2**32, step]).generate_state(2)
    return random.Random(int(words[0]) << 32 | int(words[1]))


class Sampler:
    """The sub-networks trained at each step (see the module docstring)."""

    name = ""
    kind = "supernet"  # what the stage exports: "student" (fixed widths) or "supernet"

    def __init__(self, space: SearchSpace, seed: int = 0):
        self.space, self.seed = space, seed

    def widths(self, step: int) -> list[Widths]:
        raise NotImplementedError

    def shown(self) -> list[Widths]:
        """Sub-networks of the sample grids: the published practice watches the largest and
        the smallest."""
        return [self.space.widths(self.space.largest()), self.space.widths(self.space.smallest())]

    def _draw(self, step: int) -> dict[str, int]:
        return self.space.widths(self.space.sample(width_rng(self.seed, step)))


class FixedSampler(Sampler):
    name, kind = "fixed", "student"

    def widths(self, step: int) -> list[Widths]:
        return [None]

    def shown(self) -> list[Widths]:
        return [None]


class UniformSampler(Sampler):
    name = "uniform"

    def widths(self, step: int) -> list[Widths]:
        return [self._draw(step)]


class SandwichSampler(Sampler):
    name = "sandwich"

    def widths(self, step: int) -> list[Widths]:
        space = self.space
        sampled = self._draw(step)
        return [space.widths(space.largest()), space.widths(space.smallest()), sampled]


class OneConfigSampler(Sampler):
    name = "config"

    def __init__(self, space: SearchSpace, config: str):
        super().__init__(space)
        self.config = config
        self.chosen = space.widths(space.decode(config))

    def widths(self, step: int) -> list[Widths]:
        return [self.chosen]

    def shown(self) -> list[Widths]:
        return [self.chosen]


SAMPLERS: dict[str, type[Sampler]] = {"uniform": UniformSampler, "sandwich": SandwichSampler}


def sampler_for(stage: str, config: Config, space: SearchSpace) -> Sampler:
    """The sampler of compression stage `stage` (distill | supernet | finetune)."""
    c = config.compress
    if stage == "distill":
        return FixedSampler(space)
    if stage == "finetune":
        if not c.config:
            raise UserError("the finetune task needs the sub-network: compress.config=16_16_...")
        return OneConfigSampler(space, c.config)
    if stage == "supernet":
        if c.sampling not in SAMPLERS:
            raise UserError(f"compress.sampling = {c.sampling!r}; use one of "
                            f"{', '.join(SAMPLERS)}")
        return SAMPLERS[c.sampling](space, config.train.seed)
    raise UserError(f"no compression stage {stage!r}; use distill, supernet or finetune")


__all__ = ["width_rng", "Sampler", "FixedSampler", "UniformSampler", "SandwichSampler",
           "OneConfigSampler", "SAMPLERS", "sampler_for"]
