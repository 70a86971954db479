"""Typed values of config keys: text or JSON -> the field's type, and the one range rule for
numbers (config keys, CLI options, budgets)."""
from __future__ import annotations

import json
import math
import types
import typing
from typing import Any

from gancompress.errors import UserError


def convert(value: Any, kind: Any, key: str, from_text: bool) -> Any:
    """Convert `value` (a string from the command line, or a JSON value) to the field type."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if type(None) in options and (value is None or (from_text and str(value).lower() in
                                                         ("none", "null", ""))):
            return None
        for option_type in options:
            if option_type is type(None):
                continue
            try:
                return convert(value, option_type, key, from_text)
            except UserError:
                continue
        raise UserError(f"config key {key}: cannot use {value!r} (expected {kind})")
    if origin is list:
        (item,) = typing.get_args(kind) or (str,)
        if from_text and isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError:
                    raise UserError(f"config key {key}: {value!r} is not a JSON list") from None
            else:
                value = [v.strip() for v in text.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config key {key}: expected a list, got {value!r}")
        return [convert(v, item, key, from_text or isinstance(v, str) and item is not str)
                for v in value]
    if kind is dict:
        if from_text and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise UserError(f"config key {key}: {value!r} is not a JSON object (set one "
                                f"entry with {key}.NAME=VALUE)") from None
        if not isinstance(value, dict):
            raise UserError(f"config key {key}: expected an object, got {value!r}")
        return dict(value)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if from_text and isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
        raise UserError(f"config key {key}: expected true or false, got {value!r}")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if from_text and isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = None
            if number is not None and number.is_integer():
                return int(number)
        raise UserError(f"config key {key}: expected an integer, got {value!r}")
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if from_text and isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = None
            if number is not None:
                return number  # non-finite values are refused by validate, with the range
        raise UserError(f"config key {key}: expected a number, got {value!r}")
    if kind is str:
        if isinstance(value, str):
            return value
        raise UserError(f"config key {key}: expected a string, got {value!r}")
    if isinstance(value, kind):
        return value
    raise UserError(f"config key {key}: cannot use {value!r} (expected {kind})")


def scalar(value: Any, from_text: bool) -> Any:
    """A dict-field entry: JSON scalars as such, other text kept as a string."""
    if from_text and isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


# Bounds of numbers whose field declares none: a setting this large is always a mistake (and
# int(1e20) batch sizes or 1e300 weights otherwise fail deep inside torch).
MAX_INT = 10**12
MAX_FLOAT = 1e12


def number_range(minimum: float | None, maximum: float | None, integer: bool) -> str:
    top = maximum if maximum is not None else (MAX_INT if integer else MAX_FLOAT)
    low = minimum if minimum is not None else -top
    return f"[{low:g}, {top:g}]" if not integer else f"{int(low)}..{int(top)}"


def check_number(what: str, value: Any, minimum: float | None = None,
                 maximum: float | None = None) -> None:
    """The one range rule for numbers (config keys, CLI options, budgets): finite and within
    [minimum, maximum] (default bounds MAX_INT / MAX_FLOAT); UserError naming the range."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    integer = isinstance(value, int)
    top = maximum if maximum is not None else (MAX_INT if integer else MAX_FLOAT)
    low = minimum if minimum is not None else -top
    if not math.isfinite(value) or not low <= value <= top:
        raise UserError(f"{what} = {value!r} is out of range: allowed "
                        f"{number_range(minimum, maximum, integer)}")


# The ranges of generator constructor arguments, by name (every family's argument of that name
# means the same thing): checked wherever one is given, --arch options on the command line
# (commands/_common.py) and model.generator_args / compress.student_args in a config, before
# anything is built, since a zero width or channel count only fails deep inside torch at the
# first forward pass, and a huge one exhausts memory. Upper bounds: far above any published
# model (ngf 64), low enough to build on one machine. The family's own rules (ResNet n_blocks
# >= 3, U-Net num_downs >= 5, even MUNIT n_res) stay with the family, as one-line UserErrors.
ARG_RANGES: dict[str, tuple[float, float]] = {
    "ngf": (1, 512), "in_channels": (1, 1024), "out_channels": (1, 64), "n_blocks": (1, 64),
    "num_downs": (1, 16), "n_res": (1, 64), "n_downsample": (0, 8), "mlp_dim": (1, 8192),
    "style_dim": (1, 1024), "spade_hidden": (0, 8192), "dropout": (0.0, 0.99)}
