"""The settings of a compression: the teacher's own training config (read from its checkpoint),
then a compress preset, then the user's arguments and overrides; a compression folder's saved
compress.json when it is resumed.

    cfg = compress_config(teacher="runs/demo/generator.pth", data="demo_data", budget="1/10",
                          preset_name="demo")
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gancompress.compress.run import open_teacher, teacher_saved_config
from gancompress.training.run import resolved_config
from gancompress.config import PRESETS, Config, absolute_paths, apply_overrides, diff, validate
from gancompress.errors import UserError


def compress_presets() -> list[str]:
    return [name[len("compress-"):] for name in PRESETS if name.startswith("compress-")]


def _preset_overrides(name: str) -> dict[str, Any]:
    """The overrides of a preset and its bases (base first), without building from defaults."""
    chain = []
    while name is not None:
        chain.append(PRESETS[name])
        name = PRESETS[name].base
    merged: dict[str, Any] = {}
    for p in reversed(chain):
        merged.update(p.overrides)
    return merged


def compress_config(teacher: str | None = None, data: str | None = None,
                    budget: str | None = None, preset_name: str | None = None,
                    overrides: Sequence[str] = (), base: Config | None = None) -> Config:
    """Settings for `compress`: the teacher's own training config (data layout, sizes, model and
    loss settings, read from its checkpoint), then the compress preset, then the arguments."""
    cfg = base.copy() if base is not None else Config()
    if teacher:
        cfg = _teacher_config(teacher, cfg)
        cfg.compress.teacher = str(teacher)
    if preset_name:
        name = f"compress-{preset_name}"
        if name not in PRESETS:
            name = preset_name if preset_name.startswith("compress-") else ""
        if name not in PRESETS:
            raise UserError(f"unknown compress preset {preset_name!r}; available: "
                            f"{', '.join(compress_presets())}")
        cfg = apply_overrides(cfg, _preset_overrides(name), source=f"preset {name}")
    if data:
        cfg.data.root = str(data)
    if budget:
        cfg.compress.budget = str(budget)
    for item in overrides:  # the pipeline would replace these silently (stage_config)
        key = str(item).partition("=")[0].strip()
        if key in STAGE_SET_KEYS:
            raise UserError(f"override {key}: each compression stage sets this key itself (it "
                            f"would be replaced silently); {STAGE_SET_KEYS[key]}")
    # absolute paths: the folder's compress.json resumes from any working directory, and one
    # teacher given by two relative paths is the same setting
    return validate(absolute_paths(apply_overrides(cfg, list(overrides))))


# Keys every compression stage sets itself (pipeline.Pipeline.stage_config), with what to set
# instead: an override of one is refused.
_EPOCHS = "set compress.epochs.STAGE=EPOCHS,DECAY instead (e.g. compress.epochs.supernet=10,30)"
STAGE_SET_KEYS = {
    "train.task": "the command chooses the stage (gancompress compress, or one stage: "
                  "gancompress distill / supernet / finetune)",
    "train.epochs": _EPOCHS, "train.epochs_decay": _EPOCHS,
    "data.exclude_list": "the compression holds out its own images (OUT/held_out.txt): set "
                         "compress.held_out=N for how many",
    "compress.init_from_run": "each stage starts from the previous stage's folder in OUT",
}


# Train settings that belong to a stage of the compression recipe, never to the teacher's run:
# a teacher trained with train.max_steps=200 must not cap the supernet at 200 steps.
STAGE_TRAIN_KEYS = ("task", "epochs", "epochs_decay", "max_steps", "checkpoint_every",
                    "eval_every", "log_every", "n_samples")


def inherited_from_teacher(teacher: str) -> list[str]:
    """'key=value' of the settings the teacher's checkpoint passes on (those that differ from
    the defaults), for printing what a compression inherits."""
    inherited = _teacher_config(teacher, Config())
    return [f"{k}={b!r}" for k, _, b in diff(Config(), inherited, include_runtime=True)
            if k.split(".")[0] in ("data", "model", "loss", "train")]


def folder_config(out: str | Path, teacher: str | None = None, data: str | None = None,
                  budget: str | None = None, preset_name: str | None = None,
                  overrides: Sequence[str] = ()) -> Config:
    """Settings of the compression in folder `out`: its saved compress.json is the base when it
    has one and no teacher / preset is given (so `--out DIR` alone resumes)."""
    saved = Path(out) / "compress.json"
    base = None
    if saved.is_file() and not teacher and not preset_name:
        try:
            base = resolved_config(Config.from_dict(json.loads(saved.read_text()),
                                                    source=str(saved)), out)
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"cannot read {saved}: {err}") from None
        if base.data.root and not data and not Path(base.data.root).exists():
            raise UserError(f"dataset folder {base.data.root}, recorded in {saved}, does not "
                            f"exist (moved or deleted?); pass --data DIR to give its new place")
        if base.compress.teacher and not Path(base.compress.teacher).exists():
            raise UserError(f"teacher {base.compress.teacher}, recorded in {saved}, does not "
                            f"exist (moved or deleted?); put it back there, or rerun the "
                            f"command that started this compression with --teacher at the "
                            f"file's new place (it is matched by its SHA-256)")
    elif not teacher:
        raise UserError("give the teacher with --teacher FILE (or --out a compression folder to "
                        "resume)")
    return compress_config(teacher=teacher, data=data, budget=budget, preset_name=preset_name,
                           overrides=list(overrides), base=base)


def _teacher_config(teacher: str, cfg: Config) -> Config:
    """cfg with the data / model / loss / train settings the teacher was trained with, if its
    checkpoint records them (gancompress train does); file lists are not inherited."""
    try:
        saved = teacher_saved_config(open_teacher(teacher))
    except UserError:
        return cfg  # the pre-flight check reports the problem with the file, with context
    if saved is None:
        return cfg
    try:
        teacher_cfg = Config.from_dict({k: v for k, v in saved.items()
                                        if k in ("data", "model", "loss", "train")})
    except UserError:
        return cfg  # written by another version: fall back to defaults and overrides
    out = cfg.copy()
    out.data, out.model, out.loss, out.train = (teacher_cfg.data, teacher_cfg.model,
                                                teacher_cfg.loss, teacher_cfg.train)
    out.data.root, out.data.file_list, out.data.exclude_list = "", None, None
    for key in STAGE_TRAIN_KEYS:  # the recipe's (or the defaults), not the teacher run's
        setattr(out.train, key, getattr(cfg.train, key))
    return out
