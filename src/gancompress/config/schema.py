"""`Config`: all settings of one run, one field per section (sections.py).

A `Config` is printed by `--dry-run`, written to `RUN/config.json` and stored inside every
checkpoint (as `to_dict()`), so a run can always be resumed or inspected without repeating flags.
Setting values from text or JSON (`apply_overrides`, `from_dict`) is overrides.py, keys of
earlier versions legacy.py, named recipes presets.py.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from gancompress.config.legacy import dropped_on_load
from gancompress.config.overrides import get_key, section_names, set_key
from gancompress.config.sections import (
    CompressConfig,
    DataConfig,
    LossConfig,
    ModelConfig,
    MunitConfig,
    TrainConfig,
    section,
)
from gancompress.errors import UserError


@dataclass
class Config:
    """All settings of one run: one field per entry of sections.SECTIONS, in its order (the key
    engine reads SECTIONS, below this class; a test keeps the two equal)."""
    data: DataConfig = section(DataConfig)
    model: ModelConfig = section(ModelConfig)
    loss: LossConfig = section(LossConfig)
    train: TrainConfig = section(TrainConfig)
    compress: CompressConfig = section(CompressConfig)
    munit: MunitConfig = section(MunitConfig)

    # -- dict / JSON --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict (JSON-ready; also safe inside a weights_only checkpoint)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_saved(cls, data: Any, source: str) -> Config:
        """The config saved in a checkpoint's metadata (defaults when none was saved). A saved
        config that cannot be read is an error naming the file: never silent defaults."""
        if data is None:
            return cls()
        try:
            return cls.from_dict(data, source=source)
        except UserError as err:
            raise UserError(f"the settings saved in {source} cannot be read ({err}); the file "
                            f"was written by another gancompress version or edited") from None

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> Config:
        """Inverse of `to_dict`, also for the keys of earlier versions (legacy.py). Missing keys
        keep their defaults; unknown keys are UserErrors."""
        if not isinstance(data, dict):
            raise UserError(f"{source}: expected a JSON object with sections "
                            f"{', '.join(section_names())}")
        cfg = cls()
        for name, values in data.items():
            if name not in section_names():
                raise UserError(f"{source}: unknown config section {name!r}; valid sections: "
                                f"{', '.join(section_names())}")
            if not isinstance(values, dict):
                raise UserError(f"{source}: section {name!r} must be an object of fields")
            for key, value in values.items():
                if not dropped_on_load(f"{name}.{key}", value):
                    set_key(cfg, f"{name}.{key}", value, source=source, from_text=False)
        return cfg

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def copy(self) -> Config:
        return copy.deepcopy(self)

    def get(self, key: str) -> Any:
        """Value of a dotted key, e.g. cfg.get("train.lr")."""
        return get_key(self, key)

