"""Run configuration: typed sections, named presets, checked `section.field=value` overrides.

A `Config` groups one dataclass per concern (`data`, `model`, `loss`, `train`). It is printed by
`--dry-run`, written to `RUN/config.json` and stored inside every checkpoint (as `to_dict()`), so a
run can always be resumed or inspected without repeating flags.

    cfg = preset("pix2pix-edges2shoes-r")          # a published recipe (REFERENCE.md sec. 3)
    cfg = apply_overrides(cfg, ["train.batch_size=8", "model.conv=separable"])
    cfg.train.lr                                               # typed attribute access
    Config.from_dict(cfg.to_dict()) == cfg                     # JSON round trip

Extending (for other modules, e.g. distillation):
  * a new section: write a `@dataclass class DistillConfig` with defaults (use `option()` to give
    a help text, `choices` and `runtime=True` for fields that may change on --resume), then add one
    line to `Config`: `distill: DistillConfig = section(DistillConfig)`. Overrides, JSON round trip,
    validation of choices and --dry-run pick it up with no other change.
  * a new preset: `register_preset("name", "description", {"section.field": value, ...},
    base="other-preset")`, next to the call site or in this file's preset list.
Unknown keys (in overrides, presets or a JSON file) are UserErrors that name the key and list the
valid ones: a typo never silently trains the wrong model.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from gancompress.errors import UserError


def option(default: Any, help: str = "", choices: tuple | None = None, runtime: bool = False,
           minimum: float | None = None) -> Any:
    """A config field with documentation.

    choices   allowed values (checked by `validate`)
    runtime   True if changing it cannot change the trained weights (paths, logging, device...),
              so it may differ when a run is resumed
    minimum   lowest allowed value for numbers
    """
    meta = {"help": help, "choices": choices, "runtime": runtime, "minimum": minimum}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def section(cls: type) -> Any:
    """A sub-section field of `Config` (a dataclass instance built with its defaults)."""
    return field(default_factory=cls)


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------

@dataclass
class DataConfig:
    """Where the images are and how they are turned into tensors (gancompress.data)."""
    root: str = option("", "dataset folder (set by --data)", runtime=True)
    mode: str = option("auto", "folder layout", ("auto", "aligned", "unaligned", "single"))
    direction: str = option("AtoB", "which side is the input", ("AtoB", "BtoA"))
    preprocess: str = option("resize_and_crop", "training-time resize/crop",
                             ("resize_and_crop", "scale_width", "none"))
    load_size: int = option(286, "resize to this size before cropping", minimum=4)
    crop_size: int = option(256, "training crop (and evaluation resize) size", minimum=4)
    flip: bool = option(True, "random horizontal flip while training (same for input and target)")
    in_channels: int = option(3, "channels of the input images", (1, 3))
    out_channels: int = option(3, "channels of the target images", (1, 3))
    file_list: str | None = option(None, "text file naming the training images to use")
    exclude_list: str | None = option(None, "text file naming training images to leave out "
                                      "(e.g. a held-out slice for search)")
    cache: bool = option(False, "keep decoded, resized images in memory")
    eval_phase: str = option("test", "split used for sample grids (falls back to val, then train)",
                             ("test", "val", "train"), runtime=True)
    num_workers: int = option(2, "DataLoader worker processes", runtime=True, minimum=0)


@dataclass
class ModelConfig:
    """Generator and discriminator architecture (REFERENCE.md sec. 2-3)."""
    generator: str = option("resnet", "generator architecture (gancompress.models.GENERATORS)")
    ngf: int = option(64, "generator base width", minimum=1)
    n_blocks: int = option(9, "residual blocks", minimum=3)
    conv: str = option("dense", "residual block convs: dense = full teacher, separable = the "
                       "mobile teacher of the original GAN Compression pipeline",
                       ("dense", "separable"))
    norm: str = option("instance", "generator normalisation", ("instance", "batch"))
    dropout: float = option(0.0, "dropout inside residual blocks", minimum=0.0)
    disc: str = option("patch", "discriminator architecture (models.discriminators.DISCRIMINATORS)")
    ndf: int = option(64, "discriminator base width", minimum=1)
    disc_layers: int = option(3, "PatchGAN stride-2 layers (3 = 70x70 receptive field)", minimum=1)
    disc_norm: str = option("instance", "discriminator normalisation",
                            ("instance", "batch", "none"))
    init_std: float = option(0.02, "weights initialised from N(0, init_std)", minimum=0.0)


@dataclass
class LossConfig:
    """Loss weights (REFERENCE.md sec. 3)."""
    gan_mode: str = option("hinge", "adversarial loss", ("hinge", "lsgan", "vanilla"))
    lambda_recon: float = option(100.0, "pix2pix: weight of L1 to the target", minimum=0.0)
    lambda_cycle: float = option(10.0, "CycleGAN: weight of the cycle L1 losses", minimum=0.0)
    lambda_identity: float = option(0.5, "CycleGAN: identity loss weight, relative to "
                                    "lambda_cycle", minimum=0.0)
    pool_size: int = option(50, "CycleGAN: image pool of past fakes for D (0 = off)", minimum=0)


@dataclass
class TrainConfig:
    """The training loop (gancompress.training.loop)."""
    task: str = option("pix2pix", "what to train (gancompress.training.loop.TASKS)")
    seed: int = option(233, "random seed (python, numpy, torch, data order and augmentation)")
    batch_size: int = option(1, "images per step and process (torchrun: the global batch is "
                             "batch_size x processes)", minimum=1)
    global_batch_size: int = option(0, "recorded by the loop: batch_size x processes of the run "
                                    "(steps, epochs and the lr schedule count global batches)",
                                    runtime=True, minimum=0)
    epochs: int = option(100, "epochs at the initial learning rate", minimum=0)
    epochs_decay: int = option(100, "epochs of linear decay to ~0 afterwards", minimum=0)
    lr_update: str = option("epoch", "apply the decay once per epoch (published) or every step",
                            ("epoch", "step"))
    lr: float = option(2e-4, "Adam learning rate", minimum=0.0)
    beta1: float = option(0.5, "Adam beta1", minimum=0.0)
    beta2: float = option(0.999, "Adam beta2", minimum=0.0)
    max_steps: int = option(0, "stop after this many steps (0 = run the whole schedule); the lr "
                            "schedule ignores it, so it may be raised on --resume to train in "
                            "chunks", runtime=True, minimum=0)
    amp: bool = option(False, "mixed precision (CUDA only; ignored on CPU)")
    device: str = option("auto", "auto, cpu, cuda or cuda:N", runtime=True)
    threads: int = option(0, "CPU threads for torch (0 = torch default)", runtime=True, minimum=0)
    checkpoint_every: int = option(1000, "steps between checkpoints", runtime=True, minimum=1)
    eval_every: int = option(1000, "steps between sample grids", runtime=True, minimum=1)
    log_every: int = option(100, "steps between log lines", runtime=True, minimum=1)
    n_samples: int = option(4, "rows in each sample grid", runtime=True, minimum=1)
    tensorboard: bool = option(False, "also log to TensorBoard (if installed)", runtime=True)
    progress: bool = option(True, "show a progress bar", runtime=True)


@dataclass
class CompressConfig:
    """Compression (gancompress.compress.pipeline / compress_tasks; REFERENCE.md sec. 1-3): distillation,
    once-for-all supernet, search, fine-tune. The pipeline sets the paths per stage."""
    teacher: str = option("", "teacher generator checkpoint (set by --teacher)")
    pipeline: str = option("fast", "fast: supernet distilled from the teacher (Fast GAN "
                           "Compression); original: mobile teacher -> pruned, pre-distilled "
                           "student -> supernet (GAN Compression)", ("fast", "original"))
    space: str = option("channels-64-pix2pix", "search space: a preset (channels-48, channels-32, "
                        "channels-64-cycleGAN, channels-64-pix2pix) or widths for every position, "
                        "e.g. 16,12,8")
    student_conv: str = option("separable", "student convs (separable = the published mobile "
                               "student)", ("separable", "dense"))
    student_widths: str = option("", "distill task: student config string (default: the widest "
                                 "of the space)")
    student_init: str = option("fresh", "fresh (N(0, init_std)), prune (L1-norm channel pruning "
                               "of the teacher) or a generator checkpoint to start from")
    init_from_run: str = option("", "run folder of the previous stage: its feature mappings and "
                                "discriminator are reused")
    disc_init: str = option("fresh", "fresh discriminator, or the teacher's (from the run "
                            "checkpoint.pt beside the teacher file)", ("fresh", "teacher"))
    sampling: str = option("uniform", "supernet: widths per step drawn uniformly per position "
                           "(published) or by the sandwich rule (widest + narrowest + random)",
                           ("uniform", "sandwich"))
    config: str = option("", "finetune: the sub-network to fine-tune, e.g. 16_16_32_16_32_32_16_16")
    lambda_distill: float = option(1.0, "feature distillation weight", minimum=0.0)
    lambda_gan: float = option(1.0, "adversarial loss weight (0 = no discriminator)", minimum=0.0)
    budget: str = option("", "search budget: MACs (3e9, 3G), fraction of the teacher (1/20, 5%) "
                         "or latency (30ms)")
    search: str = option("evolution", "search method", ("evolution", "exhaustive"))
    population: int = option(100, "evolution: population", minimum=1)
    parents: int = option(25, "evolution: parents kept per generation", minimum=1)
    mutants: int = option(50, "evolution: mutants per generation", minimum=0)
    crossovers: int = option(50, "evolution: crossovers per generation", minimum=0)
    mutate_prob: float = option(0.2, "evolution: probability to redraw each position", minimum=0.0)
    generations: int = option(500, "evolution: generations", minimum=1)
    search_workers: int = option(1, "local processes scoring each generation's candidates in "
                                 "parallel (under torchrun every rank scores instead)",
                                 runtime=True, minimum=1)
    metric: str = option("auto", "search score: auto (fid with compress.stats, else l1), l1, "
                         "psnr, fid, kid", ("auto", "l1", "psnr", "fid", "kid"))
    stats: str = option("", "reference statistics .npz for fid / kid (gancompress stats)")
    held_out: int = option(100, "training images held out from compression training, used to "
                           "score sub-networks and for the report", minimum=1)
    mobile_epochs: int = option(5, "original pipeline: epochs distilling the mobile teacher",
                                minimum=0)
    mobile_epochs_decay: int = option(15, "... then epochs of lr decay", minimum=0)
    distill_epochs: int = option(5, "original pipeline: epochs pre-distilling the student",
                                 minimum=0)
    distill_epochs_decay: int = option(15, "... then epochs of lr decay", minimum=0)
    supernet_epochs: int = option(10, "supernet training epochs (edges2shoes: 10+30)", minimum=0)
    supernet_epochs_decay: int = option(30, "... then epochs of lr decay", minimum=0)
    finetune_epochs: int = option(5, "fine-tuning epochs of the chosen sub-network (0 + 0 = "
                                  "no fine-tuning)", minimum=0)
    finetune_epochs_decay: int = option(15, "... then epochs of lr decay", minimum=0)


@dataclass
class Config:
    """All settings of one run. Add a section here as `name: Cls = section(Cls)`."""
    data: DataConfig = section(DataConfig)
    model: ModelConfig = section(ModelConfig)
    loss: LossConfig = section(LossConfig)
    train: TrainConfig = section(TrainConfig)
    compress: CompressConfig = section(CompressConfig)

    # -- dict / JSON --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict (JSON-ready; also safe inside a weights_only checkpoint)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_saved(cls, data: Any, source: str) -> Config:
        """The config saved in a checkpoint's metadata, or the defaults if it is absent or from
        an incompatible version (the caller then fills in what it needs from arguments)."""
        try:
            return cls.from_dict(data or {}, source=source)
        except UserError:
            return cls()

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> Config:
        """Inverse of `to_dict`. Missing keys keep their defaults; unknown keys are UserErrors."""
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
                _set(cfg, f"{name}.{key}", value, source=source, from_text=False)
        return cfg

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def copy(self) -> Config:
        return copy.deepcopy(self)

    def get(self, key: str) -> Any:
        """Value of a dotted key, e.g. cfg.get("train.lr")."""
        sect, name = _split_key(key)
        return getattr(getattr(self, sect), name)


# --------------------------------------------------------------------------------------------
# Keys, overrides, validation
# --------------------------------------------------------------------------------------------

def section_names() -> list[str]:
    return [f.name for f in dataclasses.fields(Config)]


def _fields(sect: str) -> dict[str, dataclasses.Field]:
    cls = typing.get_type_hints(Config)[sect]
    return {f.name: f for f in dataclasses.fields(cls)}


def keys() -> list[str]:
    """Every valid dotted key, in declaration order."""
    return [f"{s}.{name}" for s in section_names() for name in _fields(s)]


def _split_key(key: str) -> tuple[str, str]:
    sect, dot, name = key.partition(".")
    if dot and sect in section_names() and name in _fields(sect):
        return sect, name
    close = difflib.get_close_matches(key, keys(), n=3, cutoff=0.6)
    close += [k for k in keys() if name and k.endswith("." + name) and k not in close]
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
    cls = typing.get_type_hints(Config)[sect]
    return typing.get_type_hints(cls)[name]


def _convert(value: Any, kind: Any, key: str, from_text: bool) -> Any:
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
                return _convert(value, option_type, key, from_text)
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
        return [_convert(v, item, key, from_text or isinstance(v, str) and item is not str)
                for v in value]
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
                return float(value)
            except ValueError:
                pass
        raise UserError(f"config key {key}: expected a number, got {value!r}")
    if kind is str:
        if isinstance(value, str):
            return value
        raise UserError(f"config key {key}: expected a string, got {value!r}")
    if isinstance(value, kind):
        return value
    raise UserError(f"config key {key}: cannot use {value!r} (expected {kind})")


def _set(cfg: Config, key: str, value: Any, source: str, from_text: bool) -> None:
    sect, name = _split_key(key)
    try:
        converted = _convert(value, _field_type(key), key, from_text)
    except UserError as err:
        raise UserError(f"{source}: {err}") from None
    setattr(getattr(cfg, sect), name, converted)


def apply_overrides(cfg: Config, overrides: list[str] | dict[str, Any], source: str = "override"
                    ) -> Config:
    """A copy of `cfg` with `["section.field=value", ...]` (strings) or {key: value} applied."""
    cfg = cfg.copy()
    if isinstance(overrides, dict):
        for key, value in overrides.items():
            _set(cfg, key, value, source, from_text=isinstance(value, str))
        return cfg
    for item in overrides:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UserError(f"{source} {item!r} is not of the form section.field=value "
                            f"(e.g. train.batch_size=4)")
        _set(cfg, key.strip(), value.strip(), source, from_text=True)
    return cfg


def validate(cfg: Config) -> Config:
    """Check choices, minimums and the cross-field rules; returns cfg, raises UserError."""
    for key in keys():
        info = field_info(key)
        value = cfg.get(key)
        choices = info.metadata.get("choices")
        if choices is not None and value not in choices:
            raise UserError(f"config key {key} = {value!r} is not one of "
                            f"{', '.join(map(str, choices))}")
        minimum = info.metadata.get("minimum")
        if minimum is not None and value is not None and value < minimum:
            raise UserError(f"config key {key} = {value!r} must be >= {minimum}")
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


def diff(a: Config, b: Config, include_runtime: bool = False) -> list[tuple[str, Any, Any]]:
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
    defaults = Config()
    for key in keys():
        info = field_info(key)
        choices = info.metadata.get("choices")
        extra = f" [{'|'.join(map(str, choices))}]" if choices else ""
        lines.append(f"{key} = {defaults.get(key)!r}{extra}  {info.metadata.get('help', '')}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------------

@dataclass
class Preset:
    name: str
    description: str
    overrides: dict[str, Any]
    base: str | None = None


PRESETS: dict[str, Preset] = {}


def register_preset(name: str, description: str, overrides: dict[str, Any],
                    base: str | None = None) -> Preset:
    """Add a named preset: defaults (or `base`'s settings) with `overrides` ({dotted key: value})."""
    if base is not None and base not in PRESETS:
        raise ValueError(f"preset {name!r}: unknown base preset {base!r}")
    for key in overrides:
        _split_key(key)  # a typo in a preset fails at import, not hours into a run
    PRESETS[name] = Preset(name, description, dict(overrides), base)
    return PRESETS[name]


def preset(name: str) -> Config:
    """The Config of a named preset (validated)."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; available presets: {', '.join(PRESETS)}")
    p = PRESETS[name]
    cfg = preset(p.base) if p.base else Config()
    return validate(apply_overrides(cfg, p.overrides, source=f"preset {name}"))


# Published teacher-training recipes (REFERENCE.md sec. 3): Adam 2e-4 (0.5, 0.999), N(0, 0.02)
# init, seed 233, resize 286 -> random crop 256 (bicubic), flip; lr constant then linear decay.
register_preset("pix2pix-edges2shoes-r", "pix2pix teacher, edges -> shoes (ResNet), hinge, "
                "D ndf 128, "
                "L1 x100, batch 4, 5+15 epochs", {
                    "train.task": "pix2pix", "data.mode": "aligned", "data.direction": "AtoB",
                    "loss.gan_mode": "hinge", "model.ndf": 128, "loss.lambda_recon": 100.0,
                    "train.batch_size": 4, "train.epochs": 5, "train.epochs_decay": 15})
register_preset("pix2pix-cityscapes", "pix2pix teacher, labels -> photo (BtoA), hinge, D ndf 128, "
                "L1 x100, batch 1, 100+150 epochs", {
                    "train.task": "pix2pix", "data.mode": "aligned", "data.direction": "BtoA",
                    "loss.gan_mode": "hinge", "model.ndf": 128, "loss.lambda_recon": 100.0,
                    "train.batch_size": 1, "train.epochs": 100, "train.epochs_decay": 150})
register_preset("pix2pix-map2sat", "pix2pix teacher, map -> aerial photo (BtoA), hinge, D ndf 128, "
                "L1 x10, batch 1, 100+100 epochs (pix2pix default schedule)", {
                    "train.task": "pix2pix", "data.mode": "aligned", "data.direction": "BtoA",
                    "loss.gan_mode": "hinge", "model.ndf": 128, "loss.lambda_recon": 10.0,
                    "train.batch_size": 1, "train.epochs": 100, "train.epochs_decay": 100})
register_preset("cyclegan-horse2zebra", "CycleGAN teacher, horse <-> zebra, lsgan, D ndf 64, "
                "cycle x10, "
                "identity x0.5, pool 50, batch 1, 100+100 epochs", {
                    "train.task": "cyclegan", "data.mode": "unaligned", "data.direction": "AtoB",
                    "loss.gan_mode": "lsgan", "model.ndf": 64, "loss.lambda_cycle": 10.0,
                    "loss.lambda_identity": 0.5, "loss.pool_size": 50,
                    "train.batch_size": 1, "train.epochs": 100, "train.epochs_decay": 100})
# Sized to train in a few minutes on a 2-core CPU on `gancompress demo-data` (400 pairs, 64 px,
# grayscale -> colour). Chosen by measurement (1 thread, shared CPU): 4800 steps = 174 s of
# training, samples visibly sharper at each grid; batch 1 ended at a slightly lower L1 than
# batch 4 on the same 4800 images (0.113 vs 0.118) with 4x more updates; lr 5e-4 was worse than
# 2e-4; lsgan keeps G's adversarial term small next to L1 x100 with this tiny D.
register_preset("demo", "small pix2pix teacher for the built-in demo data (64 px, ngf 24, "
                "6 blocks, batch 1, 6+6 epochs = 4800 steps); a few minutes on a laptop CPU", {
                    "train.task": "pix2pix", "data.mode": "aligned", "data.direction": "AtoB",
                    "data.load_size": 72, "data.crop_size": 64, "data.cache": True,
                    "data.num_workers": 0,
                    "model.ngf": 24, "model.n_blocks": 6, "model.ndf": 32, "model.disc_layers": 2,
                    "loss.gan_mode": "lsgan", "loss.lambda_recon": 100.0,
                    "train.batch_size": 1, "train.epochs": 6, "train.epochs_decay": 6,
                    "train.lr_update": "step", "train.checkpoint_every": 400,
                    "train.eval_every": 400, "train.log_every": 50, "train.n_samples": 6})

# Compression recipes (`gancompress compress --preset NAME` looks up "compress-NAME"). They hold
# only compression settings: data, model and loss settings come from the teacher's checkpoint.
# Published values (REFERENCE.md sec. 3): lambda_distill, lambda_recon, GAN loss, supernet epochs
# and the evolution budget per task; spaces as published for the Fast pipeline's ngf-64 student.
register_preset("compress-pix2pix-edges2shoes-r", "Fast GAN Compression of a pix2pix edges2shoes "
                "teacher: supernet 10+30 epochs, lambda_distill 1, budget 4.9e9", {
                    "compress.space": "channels-64-pix2pix", "compress.lambda_distill": 1.0,
                    "loss.lambda_recon": 100.0, "loss.gan_mode": "hinge",
                    "compress.supernet_epochs": 10, "compress.supernet_epochs_decay": 30,
                    "compress.finetune_epochs": 5, "compress.finetune_epochs_decay": 15,
                    "compress.budget": "4.9e9", "train.batch_size": 4})
register_preset("compress-pix2pix-cityscapes", "Fast GAN Compression of a pix2pix cityscapes "
                "teacher: supernet 200+300 epochs, lambda_distill 1, budget 5.7e9", {
                    "compress.space": "channels-64-pix2pix", "compress.lambda_distill": 1.0,
                    "loss.lambda_recon": 100.0, "loss.gan_mode": "hinge",
                    "compress.supernet_epochs": 200, "compress.supernet_epochs_decay": 300,
                    "compress.finetune_epochs": 50, "compress.finetune_epochs_decay": 100,
                    "compress.budget": "5.7e9", "train.batch_size": 1})
register_preset("compress-pix2pix-map2sat", "Fast GAN Compression of a pix2pix map2sat teacher: "
                "supernet 200+400 epochs, lambda_recon 10, lambda_distill 0.01, budget 4.6e9", {
                    "compress.space": "channels-64-pix2pix", "compress.lambda_distill": 0.01,
                    "loss.lambda_recon": 10.0, "loss.gan_mode": "hinge",
                    "compress.supernet_epochs": 200, "compress.supernet_epochs_decay": 400,
                    "compress.finetune_epochs": 50, "compress.finetune_epochs_decay": 100,
                    "compress.budget": "4.6e9", "train.batch_size": 1})
register_preset("compress-cyclegan-horse2zebra", "Fast GAN Compression of a CycleGAN horse2zebra "
                "teacher: L1 to the teacher x10, lsgan, lambda_distill 0.01, supernet 200+200 "
                "epochs, budget 3e9", {
                    "compress.space": "channels-64-cycleGAN", "compress.lambda_distill": 0.01,
                    "loss.lambda_recon": 10.0, "loss.gan_mode": "lsgan", "model.ndf": 64,
                    "compress.supernet_epochs": 200, "compress.supernet_epochs_decay": 200,
                    "compress.finetune_epochs": 50, "compress.finetune_epochs_decay": 100,
                    "compress.budget": "3e9", "train.batch_size": 1})
# Demo (bench/bench_compress.py measures it): the `demo` teacher (ngf 24, 6 blocks, 64 px) at 1/10
# of its MACs. A narrow separable space around that budget; the fine-tuning stage matters most
# at this size (measured: 900 fine-tuning steps -> held-out L1 1.09x the teacher's, 2700 ->
# 0.98x); evolution trimmed to 10 generations of 50 (scores converge within a few).
register_preset("compress-demo", "compress the demo teacher to 1/10 of its MACs in ~10 minutes "
                "on a laptop CPU (supernet 10+15 epochs, fine-tune 15+15 epochs)", {
                    "compress.space": "16,12,8", "compress.budget": "1/10",
                    "compress.held_out": 40, "compress.lambda_distill": 1.0,
                    "compress.supernet_epochs": 10, "compress.supernet_epochs_decay": 15,
                    "compress.finetune_epochs": 15, "compress.finetune_epochs_decay": 15,
                    "compress.population": 50, "compress.parents": 12, "compress.mutants": 25,
                    "compress.crossovers": 25, "compress.generations": 10,
                    "train.batch_size": 4, "train.checkpoint_every": 500, "train.eval_every": 500,
                    "train.log_every": 50})
