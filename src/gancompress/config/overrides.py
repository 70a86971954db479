"""Checked `section.field=value` overrides: key lookup (with suggestions for typos), setting
typed values (values.py converts them), validation of choices and ranges, and the helpers built
on them (absolute paths, diffs, the key listing). It works on any object with one attribute per
entry of sections.SECTIONS (a schema.Config), so Config's own methods can use it.

    cfg = apply_overrides(cfg, ["train.batch_size=8", "model.generator_args.conv=separable"])
    cfg = apply_overrides(cfg, ["compress.epochs.supernet=10,30"])   # one entry of a mapping

Unknown keys (in overrides, presets or a JSON file) are UserErrors that name the key and list the
valid ones: a typo never silently trains the wrong model.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any

from gancompress.config.legacy import LEGACY_ENTRY_KEYS, LEGACY_EPOCH_KEYS, LEGACY_MODEL_KEYS
from gancompress.config.sections import SECTIONS
from gancompress.config.values import ARG_RANGES, check_number, convert, scalar
from gancompress.errors import UserError

# A run's settings (a schema.Config; Any here, since Config is built on this module).
Settings = Any


def section_names() -> list[str]:
    return list(SECTIONS)


def _fields(sect: str) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(SECTIONS[sect])}


def keys() -> list[str]:
    """Every valid dotted key, in declaration order."""
    return [f"{s}.{name}" for s in section_names() for name in _fields(s)]


def entry_keys() -> list[str]:
    """The keys of the entries of mapping fields that declare them (compress.epochs.supernet)."""
    return [f"{key}.{entry}" for key in keys()
            for entry in field_info(key).metadata.get("entries") or ()]


def _split_key(key: str) -> tuple[str, str]:
    sect, dot, name = key.partition(".")
    if dot and sect in section_names() and name in _fields(sect):
        return sect, name
    if sect == "model" and name in LEGACY_MODEL_KEYS:
        return sect, LEGACY_MODEL_KEYS[name][0]
    if key in LEGACY_EPOCH_KEYS:
        return "compress", "epochs"
    if key in LEGACY_ENTRY_KEYS:
        return "compress", LEGACY_ENTRY_KEYS[key][0]
    head, dot2, _ = name.partition(".")
    if dot and dot2 and sect in section_names() and head in _fields(sect) and \
            typing.get_type_hints(SECTIONS[sect])[head] is dict:
        return sect, head
    known = keys() + entry_keys()
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    close += [k for k in known if name and k.endswith("." + name) and k not in close]
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    if sect in section_names():
        valid = f"valid keys in section {sect}: {', '.join(_fields(sect))}"
    else:
        valid = "valid keys: " + "; ".join(f"{s}.{{{', '.join(_fields(s))}}}"
                                           for s in section_names())
    raise UserError(f"unknown config key {key!r}{hint}; {valid}")


def field_info(key: str) -> dataclasses.Field:
    sect, name = _split_key(key)
    return _fields(sect)[name]


def _field_type(key: str) -> Any:
    sect, name = _split_key(key)
    return typing.get_type_hints(SECTIONS[sect])[name]


def _sub_key(key: str) -> str | None:
    """The argument name of a dict-field key: model.generator_args.ngf -> ngf (also for the
    legacy flat keys: model.ngf -> ngf); None for a plain key."""
    sect, _, name = key.partition(".")
    if sect == "model" and name in LEGACY_MODEL_KEYS:
        return LEGACY_MODEL_KEYS[name][1]
    if key in LEGACY_ENTRY_KEYS:
        return LEGACY_ENTRY_KEYS[key][1]
    head, dot, sub = name.partition(".")
    return sub if dot else None


def get_key(cfg: Settings, key: str) -> Any:
    """Value of a dotted key (Config.get)."""
    if key in LEGACY_EPOCH_KEYS:
        stage, index = LEGACY_EPOCH_KEYS[key]
        return cfg.compress.epochs[stage][index]
    sect, name = _split_key(key)
    value = getattr(getattr(cfg, sect), name)
    sub = _sub_key(key)
    return value.get(sub) if sub is not None else value


def _entry(info: dataclasses.Field, key: str, name: str, value: Any, from_text: bool) -> Any:
    """One entry of a mapping field, checked when the field declares its entries."""
    allowed = info.metadata.get("entries")
    if allowed is not None and name not in allowed:
        raise UserError(f"unknown config key {key}.{name}; valid entries: "
                        f"{', '.join(f'{key}.{n}' for n in allowed)}")
    check = info.metadata.get("entry")
    return check(f"{key}.{name}", value, from_text) if check else scalar(value, from_text)


def set_key(cfg: Settings, key: str, value: Any, source: str, from_text: bool) -> None:
    """Set one dotted key in place (the engine of apply_overrides and Config.from_dict)."""
    sect, name = _split_key(key)
    info = _fields(sect)[name]
    field_key = f"{sect}.{name}"
    try:
        if key in LEGACY_EPOCH_KEYS:  # half of one compress.epochs entry
            stage, index = LEGACY_EPOCH_KEYS[key]
            pair = list(cfg.compress.epochs[stage])
            pair[index] = convert(value, int, key, from_text)
            cfg.compress.epochs = {**cfg.compress.epochs, stage: pair}
            return
        sub = _sub_key(key)
        if sub is not None:
            entries = dict(getattr(getattr(cfg, sect), name))
            entries[sub] = _entry(info, field_key, sub, value, from_text)
            setattr(getattr(cfg, sect), name, entries)
            return
        converted = convert(value, _field_type(key), key, from_text)
        if isinstance(converted, dict) and info.metadata.get("entries") is not None:
            # a mapping with declared entries, given whole: merged, each entry checked
            entries = dict(getattr(getattr(cfg, sect), name))
            for entry_name, entry_value in converted.items():
                entries[entry_name] = _entry(info, field_key, entry_name, entry_value, from_text)
            converted = entries
    except UserError as err:
        raise UserError(f"{source}: {err}") from None
    setattr(getattr(cfg, sect), name, converted)


def apply_overrides(cfg: Settings, overrides: list[str] | dict[str, Any], source: str = "override"
                    ) -> Settings:
    """A copy of `cfg` with `["section.field=value", ...]` (strings) or {key: value} applied."""
    cfg = cfg.copy()
    if isinstance(overrides, dict):
        for key, value in overrides.items():
            set_key(cfg, key, value, source, from_text=isinstance(value, str))
        return cfg
    for item in overrides:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UserError(f"{source} {item!r} is not of the form section.field=value "
                            f"(e.g. train.batch_size=4)")
        set_key(cfg, key.strip(), value.strip(), source, from_text=True)
    return cfg


def refuse_recorded(key: str, source: str = "override") -> None:
    """UserError when `key` is one the program records rather than takes (option(recorded=))."""
    instead = field_info(key).metadata.get("recorded")
    if instead:
        raise UserError(f"{source} {key}: this key is recorded by gancompress, not taken (it "
                        f"would be replaced silently); {instead}")


def unique_overrides(overrides: list[str], source: str = "override") -> list[str]:
    """The overrides a user typed, refusing a key given twice (in a layered list from code the
    last one wins by design; on a command line it is a typo that must not pass silently) and
    the keys the program records rather than takes (refuse_recorded)."""
    seen: dict[str, str] = {}
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key and "=" in item:
            refuse_recorded(key, source)
        if key in seen:
            raise UserError(f"{source} key {key} is given twice ({seen[key]!r} and {item!r}); "
                            f"give it once")
        seen[key] = item
    return list(overrides)


def validate(cfg: Settings) -> Settings:
    """Check choices, minimums and the cross-field rules; returns cfg, raises UserError."""
    for key in keys():
        info = field_info(key)
        value = cfg.get(key)
        choices = info.metadata.get("choices")
        if choices is not None and value not in choices:
            raise UserError(f"config key {key} = {value!r} is not one of "
                            f"{', '.join(map(str, choices))}")
        check_number(f"config key {key}", value, info.metadata.get("minimum"),
                     info.metadata.get("maximum"))
        if info.metadata.get("path") and isinstance(value, str) and "\0" in value:
            raise UserError(f"config key {key} = {value!r}: a path cannot hold a NUL character")
        if info.metadata.get("entry") is not None:  # typed entries (also when set from code)
            missing = [n for n in info.metadata.get("entries") or () if n not in value]
            if missing:
                raise UserError(f"config key {key} lacks {', '.join(missing)}")
            for name, item in value.items():
                _entry(info, key, name, item, False)
        if isinstance(value, dict):  # constructor arguments: the family checks names and ranges,
            for name, item in value.items():  # but NaN / inf / absurd sizes never pass
                low, high = info.metadata.get("minimum"), info.metadata.get("maximum")
                if key.endswith("_args") and name in ARG_RANGES:  # widths, channels: by name
                    low, high = ARG_RANGES[name]
                for number in item if isinstance(item, list) else [item]:
                    check_number(f"config key {key}.{name}", number, low, high)
    data = cfg.data
    if data.crop_size % 4:
        raise UserError(f"data.crop_size = {data.crop_size} must be a multiple of 4 (the generator "
                        f"downsamples twice by 2)")
    if data.preprocess != "none" and data.crop_size > data.load_size:
        raise UserError(f"data.crop_size = {data.crop_size} is larger than data.load_size = "
                        f"{data.load_size}; set data.load_size >= data.crop_size")
    if cfg.train.epochs + cfg.train.epochs_decay < 1:
        raise UserError("train.epochs + train.epochs_decay must be at least 1")
    return cfg


def absolute_paths(cfg: Settings) -> Settings:
    """cfg with every path field (option(path=True)) made absolute, so the run folder that
    records it resumes from any working directory. Non-paths of such fields (``fresh``,
    ``prune``) and empty values are kept."""
    import os

    out = cfg.copy()
    for key in keys():
        if not field_info(key).metadata.get("path"):
            continue
        value = out.get(key)
        if isinstance(value, str) and value and value not in ("fresh", "prune"):
            sect, name = _split_key(key)
            setattr(getattr(out, sect), name, os.path.abspath(os.path.expanduser(value)))
    return out


def diff(a: Settings, b: Settings, include_runtime: bool = False) -> list[tuple[str, Any, Any]]:
    """Keys whose values differ: [(key, value in a, value in b)] (runtime keys skipped)."""
    out = []
    for key in keys():
        if not include_runtime and field_info(key).metadata.get("runtime"):
            continue
        if a.get(key) != b.get(key):
            out.append((key, a.get(key), b.get(key)))
    return out


def describe() -> str:
    """One line per key: name, type, default and help (for `--help`-like listings)."""
    lines = []
    defaults = types.SimpleNamespace(**{name: cls() for name, cls in SECTIONS.items()})
    for key in keys():
        info = field_info(key)
        choices = info.metadata.get("choices")
        extra = f" [{'|'.join(map(str, choices))}]" if choices else ""
        lines.append(f"{key} = {get_key(defaults, key)!r}{extra}  {info.metadata.get('help', '')}")
    return "\n".join(lines)


