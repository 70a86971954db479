"""Run configuration: typed sections, checked `section.field=value` overrides, named presets.

    cfg = preset("pix2pix-edges2shoes-r")          # a published recipe (docs/reference.md sec. 3)
    cfg = apply_overrides(cfg, ["train.batch_size=8", "model.generator_args.conv=separable"])
    cfg.train.lr                                               # typed attribute access
    Config.from_dict(cfg.to_dict()) == cfg                     # JSON round trip

The package by concern, bottom up: values.py (typed values, the range rule), sections.py (one
dataclass per concern), legacy.py (keys of earlier versions: saved run folders and checkpoints
open unchanged), overrides.py (the checked key=value engine, validation), schema.py (`Config`),
presets.py (named recipes). Everything is importable from here.
"""
from __future__ import annotations

from gancompress.config.legacy import (
    LEGACY_DEFAULTS,
    LEGACY_ENTRY_KEYS,
    LEGACY_EPOCH_KEYS,
    LEGACY_MODEL_KEYS,
)
from gancompress.config.overrides import (
    absolute_paths,
    apply_overrides,
    describe,
    diff,
    entry_keys,
    field_info,
    get_key,
    keys,
    refuse_recorded,
    section_names,
    set_key,
    unique_overrides,
    validate,
)
from gancompress.config.presets import PRESETS, Preset, preset, register_preset
from gancompress.config.schema import Config
from gancompress.config.sections import (
    EVOLUTION,
    SECTIONS,
    STAGE_EPOCHS,
    CompressConfig,
    DataConfig,
    LossConfig,
    ModelConfig,
    MunitConfig,
    TrainConfig,
    epoch_pair,
    evolution_entry,
    option,
    section,
)
from gancompress.config.values import MAX_FLOAT, MAX_INT, check_number, convert, number_range

__all__ = [
    "EVOLUTION", "LEGACY_DEFAULTS", "LEGACY_ENTRY_KEYS", "LEGACY_EPOCH_KEYS", "LEGACY_MODEL_KEYS",
    "MAX_FLOAT", "MAX_INT", "PRESETS", "SECTIONS", "STAGE_EPOCHS", "CompressConfig", "Config",
    "DataConfig", "LossConfig", "ModelConfig", "MunitConfig", "Preset", "TrainConfig",
    "absolute_paths", "apply_overrides", "check_number", "convert", "describe", "diff",
    "entry_keys", "epoch_pair", "evolution_entry", "field_info", "get_key", "keys",
    "number_range", "option", "preset", "refuse_recorded", "register_preset", "section",
    "section_names", "set_key",
    "unique_overrides", "validate",
]
