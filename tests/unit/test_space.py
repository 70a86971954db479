"""Config strings and published search spaces (docs/reference.md sec. 2)."""
from __future__ import annotations

import random

import pytest

from gancompress.compress.space import SearchSpace
from gancompress.errors import UserError
from gancompress.models.resnet import ResnetGenerator, decode_config, encode_config


@pytest.mark.parametrize("name,size", [("channels-48", 5184), ("channels-64-cycleGAN", 390625),
                                       ("channels-64-pix2pix", 5764801), ("channels-32", 3 ** 8)])
def test_published_space_sizes(name, size):
    assert SearchSpace.for_model(ResnetGenerator(), name).size == size


def test_decode_matches_reference_table():
    widths = decode_config("16_16_32_16_32_32_16_16")
    assert widths == {"stem": 16, "down1": 32, "trunk": 128, "res1": 64, "res2": 128, "res3": 128,
                      "up1": 32, "up2": 16}


def test_six_number_form():
    assert decode_config("16_16_32_24_16_8") == decode_config("16_16_32_24_24_24_16_8")


@pytest.mark.parametrize("name", ["channels-48", "channels-64-pix2pix"])
def test_encode_decode_round_trip_random(name):
    space = SearchSpace.for_model(ResnetGenerator(), name)
    rng = random.Random(0)
    for _ in range(50):
        config = space.sample(rng)
        text = space.encode(config)
        assert space.decode(text) == config
        assert encode_config(space.widths(config)) == text


def test_invalid_position_names_allowed_values():
    space = SearchSpace.for_model(ResnetGenerator(), "channels-48")
    with pytest.raises(UserError, match=r"position 2 is 24, allowed values .* 48, 40, 32"):
        space.decode("48_48_24_48_48_48_48_48")
    with pytest.raises(UserError, match="position 1 is 'x'"):
        decode_config("16_x_32_16_32_32_16_16")
    with pytest.raises(UserError, match="8 numbers"):
        decode_config("16_16_32")


def test_widths_encode_requires_multiples():
    with pytest.raises(UserError, match="not a multiple of 4"):
        encode_config({**decode_config("16_16_32_16_32_32_16_16"), "trunk": 130})


def test_largest_in_space_is_student_supernet():
    space = SearchSpace.for_model(ResnetGenerator(), "channels-48")
    model = ResnetGenerator(conv="separable", ngf=48)
    assert space.widths(space.largest()) == model.max_widths
