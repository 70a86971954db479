"""Contract over the preset registry (config/presets.py): every named recipe builds a validated
Config, its task is a registered training task (compress.tasks.TASKS), its generator and
discriminator arguments fit the registered families' constructors (built on the meta device: no
memory, published widths included), and a compression recipe's search space is one its
teacher's family can parse."""
from __future__ import annotations

import inspect

import pytest
import torch

from gancompress.compress.space import SearchSpace
from gancompress.compress.tasks import TASKS
from gancompress.config.presets import PRESETS, preset
from gancompress.errors import UserError
from gancompress.models import GENERATORS, build_generator
from gancompress.models.discriminators import DISCRIMINATORS, build_discriminator

COMPRESS = "compress-"


def _generator(cfg):
    family = cfg.model.generator or next(iter(GENERATORS))  # '' = the first registered family
    assert family in GENERATORS, family
    with torch.device("meta"):
        return build_generator(family, **cfg.model.generator_args)


def _teacher_recipe(name: str) -> str:
    """compress-X compresses the teacher of recipe X (published names may drop a -r suffix)."""
    teacher = name.removeprefix(COMPRESS)
    return teacher if teacher in PRESETS else teacher.removesuffix("-r")


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds_with_args_that_fit_its_family(name):
    cfg = preset(name)
    assert cfg.train.task in TASKS, (name, cfg.train.task)
    generator = _generator(cfg)
    assert all(generator.arch[k] == v for k, v in cfg.model.generator_args.items()), name
    assert cfg.model.disc in DISCRIMINATORS, (name, cfg.model.disc)
    params = inspect.signature(DISCRIMINATORS[cfg.model.disc].__init__).parameters
    assert set(cfg.model.disc_args) <= set(params) - {"self"}, name
    # the objective passes in_channels (image + condition); any count builds the layout
    with torch.device("meta"):
        build_discriminator(cfg.model.disc, **{"in_channels": 6, **cfg.model.disc_args})


@pytest.mark.parametrize("name", [n for n in PRESETS if n.startswith(COMPRESS)])
def test_every_compression_preset_has_a_teacher_recipe_and_a_space_of_its_family(name):
    teacher = _teacher_recipe(name)
    assert teacher in PRESETS and not teacher.startswith(COMPRESS), name
    space = SearchSpace.for_model(_generator(preset(teacher)), preset(name).compress.space)
    assert space.size > 1, name


def test_the_contract_sees_every_family_and_catches_a_bad_recipe():
    families = {preset(n).model.generator or next(iter(GENERATORS)) for n in PRESETS}
    # each built-in family has a recipe (a user's traced module has none of its own)
    assert {"resnet", "unet", "munit", "spade"} <= families <= set(GENERATORS)
    assert {preset(n).train.task for n in PRESETS} >= {"pix2pix", "cyclegan", "gaugan", "munit"}
    bad = preset("demo")
    bad.model.generator_args = {**bad.model.generator_args, "no_such_arg": 1}
    with pytest.raises(UserError, match="no_such_arg"):
        _generator(bad)


@pytest.mark.parametrize("name,fractions", [("compress-demo", ("1/10",)),
                                            ("compress-gaugan-demo", ("1/9",))])
def test_a_demo_recipe_reaches_its_budget_on_its_teacher(name, fractions):
    """The built-in demos compress their own preset's teacher: the recipe's budget (GauGAN's:
    the paper's 1/9) leaves sub-networks of its space to search."""
    from gancompress.compress.budget import MacCost, parse_budget
    from gancompress.compress.costs import input_size
    from gancompress.compress.tasks import student_arch
    from gancompress.metrics.cost import count_macs
    cfg = preset(_teacher_recipe(name))
    size = input_size(cfg)  # label maps: the classes + the instance edge channel
    teacher = build_generator(cfg.model.generator or next(iter(GENERATORS)),
                              **{**cfg.model.generator_args, "in_channels": size[1]})
    recipe = preset(name)
    assert recipe.compress.budget == fractions[0]
    # the supernet: the teacher's family with the recipe's student convs, at its widest
    supernet = build_generator(teacher.arch_name, **student_arch(recipe, teacher))
    space = SearchSpace.for_model(supernet, recipe.compress.space)
    cost = MacCost(supernet, space, size)
    narrowest = space.smallest()
    # the narrowest with one position widened to each of its choices
    wider = [narrowest[:i] + [w] + narrowest[i + 1:]
             for i, choices in enumerate(space.choices) for w in choices]
    for fraction in fractions:
        budget = parse_budget(fraction).value * count_macs(teacher, size)
        assert cost.cheapest()[1] < budget, (name, fraction)
        fits = {space.encode(c) for c in wider if cost(c) <= budget}
        assert len(fits) > len(space.choices), (name, fraction)  # choices to search
    if teacher.arch_name == "spade":  # the RGB conv sees up_3's channels: all three colours
        assert space.widths(space.smallest())["up_3"] >= teacher.out_channels
