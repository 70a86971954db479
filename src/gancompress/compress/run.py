"""What one compression works on, checked before anything is written: `preflight` opens the
teacher once, checks the data, the output folder and the budget, and returns a frozen
`RunDescription` that the stages, the search and the report all read (none of them reopens the
teacher or recomputes the input shape).

    run = preflight(cfg, Path("runs/demo-compressed"))
    run.teacher, run.device, run.input_size, run.space, run.budget, run.held_out
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gancompress.compress.costs import CheckedBudget, InputSize, checked_budget, input_size
from gancompress.compress.heldout import held_out_label_batches, held_out_names
from gancompress.compress.space import SearchSpace
from gancompress.compress.tasks import (
    check_data_channels,
    load_teacher,
    student_arch,
    student_template,
)
from gancompress.config import Config, diff
from gancompress.devices import parse_device
from gancompress.errors import UserError
from gancompress.files import folder_is_empty
from gancompress.models import build_generator
from gancompress.models.elastic import ElasticGenerator
from gancompress.training.run import moved_inputs, resolved_config
from gancompress import distributed

def device_for(cfg: Config) -> torch.device:
    """The device of cfg.train.device (auto, cpu, cuda, cuda:N); under torchrun this also joins
    the process group (then cuda:LOCAL_RANK on CUDA). For the commands that run a stage alone."""
    return distributed.init(parse_device(cfg.train.device, "train.device ="))


# The last teacher file opened, keyed by (path, mtime, size): a compression asks three things
# of one file before any stage runs (the settings it was trained with, what the compression
# inherits, the checks) and a teacher may be hundreds of MB; a rewritten file is read again.
_opened: dict[str, Any] = {}


def open_teacher(path: str | Path) -> ElasticGenerator:
    """The frozen teacher on the CPU (its checkpoint metadata in `.meta`, the config it was
    trained with in `.meta["config"]`), read from disk once per version of the file."""
    if not str(path):
        return load_teacher(path)  # the "no teacher given" message
    resolved = os.path.abspath(os.path.expanduser(str(path)))
    try:
        stat = os.stat(resolved)
        key = (resolved, stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = None  # missing: load_teacher says so
    if key is not None and _opened.get("key") == key:
        return _opened["teacher"]
    teacher = load_teacher(resolved, "cpu")
    if key is not None:
        _opened.update(key=key, teacher=teacher)
    return teacher


def teacher_saved_config(teacher: ElasticGenerator) -> dict[str, Any] | None:
    """The config recorded in the teacher's checkpoint (gancompress train writes one)."""
    saved = getattr(teacher, "meta", {}).get("config")
    return saved if isinstance(saved, dict) else None


@dataclass(frozen=True)
class RunDescription:
    """One compression's checked inputs (built by `preflight`, never changed afterwards)."""
    cfg: Config
    teacher: ElasticGenerator          # frozen, on `device`
    teacher_config: dict[str, Any] | None  # the settings saved in the teacher's checkpoint
    device: torch.device
    input_size: InputSize              # (1, C, H, W) at the evaluation size
    student: ElasticGenerator          # the student's template (family, codec, spaces)
    space: SearchSpace
    budget: CheckedBudget | None       # None when no budget is set (a fixed compress.config)
    held_out: tuple[str, ...]          # training inputs kept out of compression training


def preflight(cfg: Config, out: Path, search: bool = True) -> RunDescription:
    """Every check that can fail on the user's input (teacher, data, budget, output folder),
    writing nothing. `search`: whether the stages include the search (it needs a budget)."""
    device = device_for(cfg)
    teacher = open_teacher(cfg.compress.teacher).to(device)
    check_teacher_and_data(cfg, teacher)
    size = input_size(cfg)
    student = student_template(cfg, teacher)
    space = SearchSpace.for_model(student, cfg.compress.space)
    check_out(out, cfg)
    checked = None
    if cfg.compress.budget:
        skeleton = supernet_skeleton(cfg, student, space)
        checked = checked_budget(cfg, teacher, skeleton, space, device, size)
    elif search and not cfg.compress.config:
        raise UserError("no budget given: pass --budget (e.g. 3G, 1/10, 5%, 30ms) or use a "
                        "preset that sets compress.budget")
    names = held_out_names(cfg)
    if cfg.compress.metric == "miou":  # the segmenter's file and the label layout, before training
        from gancompress.weights import DRN_D_105_CITYSCAPES, find_weights
        try:
            find_weights(DRN_D_105_CITYSCAPES.name, cfg.compress.drn_weights or None)
        except UserError as err:
            raise UserError(f"compress.metric=miou: {err} (for compress: "
                            f"compress.drn_weights=FILE)") from None
        held_out_label_batches(cfg, names[:1])
    return RunDescription(cfg, teacher, teacher_saved_config(teacher), device, size, student,
                          space, checked, tuple(names))


def check_teacher_and_data(cfg: Config, teacher: ElasticGenerator) -> None:
    """UserError unless the data (cfg.data) fits the teacher."""
    t = teacher.arch
    d = cfg.data
    if not d.root:
        raise UserError("no dataset folder given: pass --data DIR")
    check_data_channels(cfg, teacher)
    if d.mode == "labels":  # one-hot label maps: nothing to read as colour or grey
        return
    from gancompress.data import open_dataset
    # Read one pair in colour to see what the files hold (the loader would convert silently).
    dataset = open_dataset(d.root, mode=d.mode, phase="train", direction=d.direction,
                           preprocess=d.preprocess, load_size=d.crop_size, crop_size=d.crop_size,
                           flip=False, in_channels=3, out_channels=3, augment=False)
    item = dataset[0]
    for side, channels in (("source", t["in_channels"]), ("target", t["out_channels"])):
        if side in item and channels == 1 and _is_colour(item[side]):
            which = "input" if side == "source" else "target"
            raise UserError(f"data folder {d.root} holds colour {which} "
                            f"images ({Path(item[side + '_path']).name}) but the teacher "
                            f"{'takes' if side == 'source' else 'makes'} 1-channel images; give "
                            f"the data the teacher was trained on")


def _is_colour(image: torch.Tensor, tolerance: float = 0.05) -> bool:
    """(3, H, W) image whose channels differ (not a grey image stored as RGB)."""
    return bool((image - image.mean(0, keepdim=True)).abs().max() > tolerance)


def supernet_skeleton(cfg: Config, student: ElasticGenerator, space: SearchSpace
                      ) -> ElasticGenerator:
    """An (untrained) supernet of the configured space, of the student's family: for costs
    before training."""
    widths = space.widths(space.largest())
    return build_generator(student.arch_name, **student_arch(cfg, student, widths)).eval()


def check_out(out: Path, cfg: Config) -> None:
    """A new/empty folder, or one holding a compression with the same settings."""
    saved_path = out / "compress.json"
    if saved_path.is_file():
        try:
            saved = Config.from_dict(json.loads(saved_path.read_text()), source=str(saved_path))
        except (json.JSONDecodeError, OSError) as err:
            raise UserError(f"cannot read {saved_path}: {err}") from None
        # paths into the folder are relative to it (it may have moved); a teacher found
        # elsewhere with the SHA-256 recorded in OUT/inputs.json is the same teacher
        changed = diff(resolved_config(saved, out), cfg)
        left = moved_inputs(out, changed)
        if left:
            lines = "; ".join(f"{k}: {text}" for k, text in left[:6])
            hint = ""
            if {k for k, _ in left} == {"compress.budget"}:
                hint = (f" To search its supernet under another budget: gancompress search "
                        f"--supernet {out / 'supernet' / 'supernet.pth'} --budget B --out NEW")
            raise UserError(f"{out} holds a compression with other settings ({lines}); rerun with "
                            f"the same settings to resume, or choose another --out (nothing was "
                            f"changed).{hint}")
    elif out.exists() and (not out.is_dir() or not folder_is_empty(out)):
        raise UserError(f"{out} exists and is not an empty folder nor a compression folder; choose "
                        f"a new --out (nothing was changed)")
