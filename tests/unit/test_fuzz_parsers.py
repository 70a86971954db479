"""Property-based fuzzing of the text a user types or hands over (issue 26 item 5): the override
parser (`section.field=value`), the budget parser, and config loading (settings files: random
text, random JSON, mutated real configs). Every input ends in success or one UserError, never
another exception. Examples are few and derandomized (the same inputs on every run, seconds in
all); the explicit @example rows are the inputs that once crashed."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gancompress.commands._options import config_from_file
from gancompress.compress.budget import parse_budget
from gancompress.config import (
    PRESETS,
    Config,
    apply_overrides,
    entry_keys,
    keys,
    preset,
    unique_overrides,
    validate,
)
from gancompress.config.values import ARG_RANGES
from gancompress.errors import UserError
from gancompress.training.run import load_run_config

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

# Values as a user might type them: numbers of every spelling, booleans, JSON, and plain noise.
NUMBER_TEXT = st.one_of(
    st.integers(-10**30, 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "-inf", "inf", "1e999", "-1e999", "0x10", "1_000", "1e-400", "٣",
                     "1,2", "[1, 2]", "10+30", "", " ", "true", "none", "null", "{}", "[]",
                     '{"a": 1}', "[[[]]]", "1e20", "-0", "0.5", "3G", "1/20"]))
VALUE_TEXT = st.one_of(NUMBER_TEXT, st.text(max_size=30),
                       st.text(alphabet="[]{}\",:0123456789.-e ", max_size=30))
KEY_TEXT = st.one_of(st.sampled_from(keys() + entry_keys()),
                     st.sampled_from([f"model.generator_args.{n}" for n in ARG_RANGES]
                                     + [f"compress.student_args.{n}" for n in ARG_RANGES]),
                     st.sampled_from(keys()).map(lambda k: k + ".x"),
                     st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.", max_size=30),
                     st.text(max_size=20))


def _ends_well(action) -> None:
    try:
        action()
    except UserError:
        pass


@FUZZ
@given(st.lists(st.tuples(KEY_TEXT, VALUE_TEXT), max_size=4))
@example([("compress.epochs.supernet", "[1e999, 2]")])
@example([("model.generator_args", '{"ngf": 1e999}')])
@example([("data.file_list", "null")])
def test_overrides_from_the_command_line_end_in_a_config_or_a_user_error(pairs):
    items = [f"{k}={v}" for k, v in pairs]

    def parse():
        validate(apply_overrides(Config(), unique_overrides(items)))
    _ends_well(parse)


@FUZZ
@given(st.lists(st.text(max_size=40), max_size=4))
def test_override_words_of_any_shape_end_in_a_config_or_a_user_error(words):
    _ends_well(lambda: validate(apply_overrides(preset("demo"), unique_overrides(words))))


@FUZZ
@given(st.one_of(NUMBER_TEXT, st.text(max_size=20),
                 st.tuples(NUMBER_TEXT, st.sampled_from(["", "G", "M", "K", "%", "ms", "s",
                                                         "GMACs", "/20", " ms", "us"]))
                 .map("".join),
                 st.floats(allow_nan=True, allow_infinity=True)))
@example("1/0")
@example("0/0")
@example("1e999/1e999")
@example("1e-400%")
def test_budgets_end_in_a_budget_or_a_user_error(text):
    try:
        budget = parse_budget(text)
    except UserError:
        return
    assert budget.kind in ("macs", "fraction", "latency") and math.isfinite(budget.value)
    assert budget.value > 0


# -- settings files ---------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)


def _load(tmp_path: Path, text: str, name: str = "settings.json") -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _ends_well(lambda: validate(config_from_file(path)))


@FUZZ
@given(st.text(max_size=200))
@example("[" * 3000)  # nested past the JSON reader's recursion limit (once a RecursionError)
@example('{"data": ' * 3000 + "{}" + "}" * 3000)
@example("# comment\n{}")
@example('{"train": {"lr": NaN}}')
@example('{"train": {"batch_size": 1e999}}')
def test_random_text_as_a_settings_file(tmp_path, text):
    _load(tmp_path, text)


@FUZZ
@given(st.binary(max_size=100))
def test_random_bytes_as_a_settings_file(tmp_path, data):
    path = tmp_path / "settings.json"
    path.write_bytes(data)
    _ends_well(lambda: validate(config_from_file(path)))


@FUZZ
@given(st.sampled_from(sorted(PRESETS)), st.data())
def test_mutated_real_configs(tmp_path, name, data):
    """A real config (a preset as --dry-run prints it) with one to three values replaced by
    random JSON (of any type), or keys dropped or added."""
    cfg = preset(name).to_dict()
    for _ in range(data.draw(st.integers(1, 3))):
        section = data.draw(st.sampled_from(sorted(cfg)))
        action = data.draw(st.sampled_from(["replace", "drop", "add", "section"]))
        fields = cfg[section]
        if not isinstance(fields, dict):  # an earlier round replaced the whole section
            action = "section"
        if action == "replace" and fields:
            fields[data.draw(st.sampled_from(sorted(fields)))] = data.draw(JSON_VALUES)
        elif action == "drop" and fields:
            del fields[data.draw(st.sampled_from(sorted(fields)))]
        elif action == "add":
            fields[data.draw(st.text(max_size=8))] = data.draw(JSON_VALUES)
        else:
            cfg[section] = data.draw(JSON_VALUES)
    text = json.dumps(cfg, allow_nan=True)
    _load(tmp_path, text)
    _load(tmp_path, text, name="settings.yaml")  # YAML: refused in one line (no PyYAML)


@FUZZ
@given(st.sampled_from(sorted(PRESETS)), st.data())
@example("demo", None)  # (data=None: the explicit rows below)
def test_run_folder_configs_with_damaged_paths(tmp_path, name, data):
    """RUN/config.json as a resume reads it (relative paths resolved against the folder), with
    its path keys replaced by random text: NUL characters, '..', absolute or empty."""
    cfg = preset(name).to_dict()
    paths = {("data", "root"), ("data", "file_list"), ("data", "exclude_list"),
             ("compress", "teacher"), ("compress", "student_init"),
             ("compress", "init_from_run"), ("compress", "stats")}
    texts = st.one_of(st.text(max_size=12), st.sampled_from(["a\0b", "..", "../../x", "/", "",
                                                              "~", "fresh", "prune", "\0"]))
    for section, key in paths:
        cfg[section][key] = data.draw(texts) if data is not None else "a\0b"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    _ends_well(lambda: validate(load_run_config(tmp_path)))


def test_fuzzing_reaches_both_outcomes(tmp_path):
    """The properties above are not vacuous: real configs load, and bad ones are refused."""
    path = tmp_path / "ok.json"
    path.write_text(preset("demo").to_json())
    assert validate(config_from_file(path)).data.crop_size > 0
    path.write_text('{"train": {"lr": "fast"}}')
    with pytest.raises(UserError):
        config_from_file(path)
    assert parse_budget("1/20").kind == "fraction"
