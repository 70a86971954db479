"""Keys of earlier versions, so saved run folders, checkpoints and typed overrides that use
them keep working: the flat model keys (model.ngf -> model.generator_args.ngf) and the flat
per-stage epochs (compress.supernet_epochs -> compress.epochs.supernet[0]) and evolution
settings (compress.population -> compress.evolution.population)."""
from __future__ import annotations

from typing import Any

from gancompress.config.sections import EVOLUTION, STAGE_EPOCHS

# Flat model keys of earlier versions -> (dict field, argument): old run folders, checkpoints
# and overrides such as model.ngf=32 keep working.
LEGACY_MODEL_KEYS = {"ngf": ("generator_args", "ngf"), "n_blocks": ("generator_args", "n_blocks"),
                     "conv": ("generator_args", "conv"), "norm": ("generator_args", "norm"),
                     "dropout": ("generator_args", "dropout"), "ndf": ("disc_args", "ndf"),
                     "disc_layers": ("disc_args", "n_layers"), "disc_norm": ("disc_args", "norm")}
# Their defaults: a legacy value equal to the old default is dropped (the family's default).
LEGACY_DEFAULTS = {"ngf": 64, "n_blocks": 9, "conv": "dense", "norm": "instance",
                   "dropout": 0.0, "ndf": 64, "disc_layers": 3, "disc_norm": "instance"}

# compress.<stage>_epochs[_decay] (8 fields before compress.epochs) -> (stage, index in its pair)
LEGACY_EPOCH_KEYS = {f"compress.{stage}_epochs{suffix}": (stage, index)
                     for stage in STAGE_EPOCHS for index, suffix in enumerate(("", "_decay"))}

# compress.<name> -> (mapping field, entry) for the evolution settings (flat before
# compress.evolution)
LEGACY_ENTRY_KEYS = {f"compress.{name}": ("evolution", name) for name in EVOLUTION}


def dropped_on_load(key: str, value: Any) -> bool:
    """A saved legacy model key holding the old default: skipped, so the family's default
    applies."""
    sect, _, name = key.partition(".")
    return sect == "model" and name in LEGACY_MODEL_KEYS and value == LEGACY_DEFAULTS[name]
