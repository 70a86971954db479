"""What the training loop (training/loop.py) needs around the steps: random-number states as
plain tensors, the learning-rate schedule, the device, the run folder (config, checkpoint,
JSON-lines log, TensorBoard), Ctrl-C handling, the data loader and the sample batch.

Run folder
----------
    RUN/config.json        the full Config (Config.to_dict())
    RUN/log.jsonl          one JSON object per line: {"step", "epoch", "lr", "losses": {...},
                           "time": {"data_s", "step_s", "images_per_s"}, "elapsed_s"}, plus
                           {"event": "start" | "resume" | "checkpoint" | "done", ...} lines
    RUN/checkpoint.pt      written atomically (temp file + rename) every train.checkpoint_every
                           steps and at the end; plain dicts/tensors only (checkpoint.safe_load):
                           {"format": "gancompress-run", "version", "step", "config",
                            "task": task.state_dict(), "rng": {...}, "elapsed_s"}
    RUN/samples/step_XXXXXXX.png   sample grids (one row per image: what task.sample returns)
    RUN/<files written by task.export>, e.g. generator.pth (load with load_generator(path))

Learning rate (docs/reference.md sec. 3): constant for train.epochs epochs, then linear decay over
train.epochs_decay epochs: factor = 1 - max(0, e + 1 - epochs) / (epochs_decay + 1), with e the
0-based epoch (lr_update="epoch", published) or the fractional epoch reached after the step
(lr_update="step"). The loop sets lr = initial_lr * factor on every optimiser param group before
each step; tasks never step schedulers themselves.
"""
from __future__ import annotations

import json
import math
import os
import random
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gancompress import distributed
from gancompress.config import Config, diff, field_info, keys, set_key
from gancompress.data import EpochBatchSampler, dataset_from_config
from gancompress.devices import parse_device
from gancompress.errors import UserError
from gancompress.files import atomic_write_text, folder_is_empty, sha256_file
from gancompress.models.checkpoint import safe_load

RUN_FORMAT = "gancompress-run"
RUN_VERSION = 1


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def rng_state() -> dict[str, Any]:
    version, words, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python_version": version, "python": torch.tensor(words, dtype=torch.int64),
             "python_gauss": gauss, "numpy": torch.from_numpy(keys.astype(np.int64)),
             "numpy_pos": int(pos), "numpy_has_gauss": int(has_gauss),
             "numpy_gauss": float(cached), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = [s for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate((state["python_version"], tuple(int(v) for v in state["python"].tolist()),
                     state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"],
                         state["numpy_has_gauss"], state["numpy_gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][:torch.cuda.device_count()])


def lr_factor(step: int, steps_per_epoch: int, epochs: int, epochs_decay: int,
              per: str = "epoch") -> float:
    """Multiplier of the initial lr for `step` (0-based), docs/reference.md sec. 3 linear decay."""
    if per == "epoch":
        progress = step // steps_per_epoch + 1
    else:
        progress = (step + 1) / steps_per_epoch
    return 1.0 - max(0.0, progress - epochs) / (epochs_decay + 1)


def resolve_device(name: str) -> torch.device:
    """The configured device (devices.parse_device); under torchrun also joins the process group
    (then cuda:LOCAL_RANK on CUDA)."""
    return distributed.init(parse_device(name, "train.device ="))


# -- run folders that move -------------------------------------------------------------------
# A run folder records the paths of its own contents (a compression stage's held_out.txt, the
# previous stage's folder and files) relative to itself, resolved on read: the folder can be
# moved or copied and resumed there. Paths outside it (data, teacher) stay absolute; on resume
# a file found elsewhere is accepted when its SHA-256 is the one recorded in RUN/inputs.json,
# and the data folder by its file-list fingerprint (check_same_data).

INPUTS_FILE = "inputs.json"


def _path_keys() -> list[str]:
    return [k for k in keys() if field_info(k).metadata.get("path")]


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and value not in ("fresh", "prune")


def _real(path: str | Path) -> Path:
    try:
        return Path(os.path.realpath(os.path.expanduser(str(path))))
    except ValueError:  # a NUL character (a hand-edited or damaged config.json)
        raise UserError(f"{str(path)!r} is not a usable path") from None


def run_root(folder: str | Path) -> Path:
    """The folder a run's own paths may point into: a compression stage (OUT/supernet) points
    into its compression folder OUT (held_out.txt, the previous stage), a plain run into itself."""
    folder = _real(folder)
    return folder.parent if (folder.parent / "compress.json").is_file() else folder


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def portable_config(cfg: Config, folder: str | Path) -> Config:
    """cfg as `folder` records it: paths inside the run (run_root) relative to `folder`."""
    out, base, root = cfg.copy(), _real(folder), run_root(folder)
    for key in _path_keys():
        value = out.get(key)
        if _is_path(value) and os.path.isabs(value) and _inside(_real(value), root):
            set_key(out, key, os.path.relpath(_real(value), base), source=str(folder),
                    from_text=False)
    return out


def resolved_config(cfg: Config, folder: str | Path) -> Config:
    """Inverse of portable_config: relative paths resolved against `folder` (a run folder of
    an earlier version records absolute paths only: kept as they are)."""
    out, base = cfg.copy(), _real(folder)
    for key in _path_keys():
        value = out.get(key)
        if _is_path(value) and not os.path.isabs(value):
            set_key(out, key, str(_real(base / value)), source=str(folder), from_text=False)
    return out


def record_inputs(folder: str | Path, cfg: Config) -> None:
    """RUN/inputs.json: the SHA-256 of each file outside the run that the settings name (the
    teacher, a file list...), so a resume may find them elsewhere (moved_inputs)."""
    root, record = run_root(folder), {}
    for key in _path_keys():
        value = cfg.get(key)
        if field_info(key).metadata.get("runtime") or not _is_path(value):
            continue
        path = _real(value)
        if path.is_file() and not _inside(path, root):
            record[key] = {"path": str(path), "sha256": sha256_file(path)}
    atomic_write_text(Path(folder) / INPUTS_FILE, json.dumps(record, indent=2) + "\n")


def write_run_config(folder: str | Path, cfg: Config) -> None:
    """RUN/config.json (portable paths) and RUN/inputs.json."""
    atomic_write_text(Path(folder) / "config.json", portable_config(cfg, folder).to_json())
    record_inputs(folder, cfg)


def _recorded_inputs(folder: Path) -> dict[str, Any]:
    try:
        record = json.loads((folder / INPUTS_FILE).read_text())
    except (OSError, ValueError):
        return {}  # a run folder of an earlier version: paths are compared as text
    return record if isinstance(record, dict) else {}


def moved_inputs(folder: str | Path, changed: list[tuple[str, Any, Any]]
                 ) -> list[tuple[str, str]]:
    """The differences of `changed` (diff(saved, given)) that remain once paths are compared
    by what they name: the same file under another name (symlinks, ..), or a file outside the
    run found elsewhere with its recorded SHA-256, is no difference. Returns (key, text)."""
    record = _recorded_inputs(Path(folder))
    left = []
    for key, was, now in changed:
        if not (key in _path_keys() and _is_path(was) and _is_path(now)):
            left.append((key, f"run has {was!r}, given {now!r}"))
            continue
        if _real(was) == _real(now):
            continue
        entry = record.get(key)
        known = isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
        if known and _real(now).is_file() and sha256_file(_real(now)) == entry["sha256"]:
            continue  # moved, same content
        gone = "" if Path(was).exists() else " (no longer there)"
        what = ("with other content (SHA-256 differs from the one recorded)" if known
                else "(this run records no content hash: give the same path)")
        left.append((key, f"moved or changed: the run used {was}{gone}, given {now} {what}"))
    return left


def load_run_config(out_dir: str | Path) -> Config:
    """The Config a run folder was started with (config.json, else the checkpoint's copy), with
    the paths it records about its own contents resolved against where it is now."""
    out = Path(out_dir)
    path = out / "config.json"
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"cannot read {path}: {err}") from None
        return resolved_config(Config.from_dict(data, source=str(path)), out)
    if (out / "checkpoint.pt").is_file():
        ckpt = load_checkpoint(out / "checkpoint.pt")
        return resolved_config(Config.from_dict(ckpt.get("config", {}),
                                                source=str(out / "checkpoint.pt")), out)
    raise UserError(f"{out} is not a run folder (no config.json); start a new run without "
                    f"--resume")


def check_folder(out: Path, cfg: Config, resume: bool) -> Path | None:
    """Refuse unsafe starts (nothing is written); on resume return the checkpoint path, if any."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder for the run (nothing was changed)")
    if not resume:
        if out.exists() and not folder_is_empty(out):
            raise UserError(f"{out} already exists and is not empty; pass --resume to continue "
                            f"the run in it, or choose a new --out folder (nothing was changed)")
        return None
    if not (out / "config.json").is_file() and not (out / "checkpoint.pt").is_file():
        raise UserError(f"cannot resume: {out} has no config.json (not a gancompress run "
                        f"folder); start a new run without --resume")
    saved = load_run_config(out)
    # a MUNIT compression stage of an earlier version (train.task=munit-supernet) is the same
    # task as the stage's name today
    changed = [c for c in diff(saved, cfg) if not (
        c[0] == "train.task" and str(c[1]).removeprefix("munit-") == c[2])]
    world = distributed.world_size()
    saved_global = saved.train.global_batch_size or saved.train.batch_size
    if any(k == "train.batch_size" for k, _, _ in changed):
        if saved_global == cfg.train.batch_size * world:  # same global batch, other world size
            changed = [c for c in changed if c[0] != "train.batch_size"]
    elif saved_global != cfg.train.batch_size * world:
        fix = (f"resume with train.batch_size={saved_global // world}" if saved_global % world == 0
               else f"use a process count that divides {saved_global}")
        raise UserError(f"cannot resume {out}: its global batch is {saved_global} images per "
                        f"step, but {world} process(es) x train.batch_size="
                        f"{cfg.train.batch_size} make {cfg.train.batch_size * world}; {fix}")
    left = moved_inputs(out, changed)
    if left:
        lines = "; ".join(f"{k}: {text}" for k, text in left[:8])
        raise UserError(f"cannot resume {out}: the given config differs from the run's ({lines}). "
                        f"Resume with the same settings (e.g. omit --preset and overrides), or "
                        f"start a new run folder")
    path = out / "checkpoint.pt"
    return path if path.is_file() else None  # killed before its first checkpoint: start over


def check_steps_done(out: Path, ckpt: dict[str, Any], max_steps: int) -> None:
    """Refuse (before anything is written) a resume whose train.max_steps is below the steps
    the run has done: it would rewrite a finished run's files with nothing trained."""
    done = int(ckpt.get("step", 0))
    if max_steps and max_steps < done:
        raise UserError(f"cannot resume {out} with train.max_steps={max_steps}: it has done "
                        f"{done} steps already; give train.max_steps above {done} (or 0 for the "
                        f"whole schedule) to train on (nothing was changed)")


def load_checkpoint(path: Path) -> dict[str, Any]:
    ckpt = safe_load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != RUN_FORMAT:
        raise UserError(f"{path} is not a gancompress run checkpoint")
    if ckpt.get("version", 0) > RUN_VERSION:
        raise UserError(f"{path} was written by a newer gancompress; upgrade to resume it")
    return ckpt


class RunLog:
    """Append-only JSON-lines log; on resume drops lines past the checkpoint (they are redone)."""

    def __init__(self, path: Path, keep_until: int | None):
        self.path = path
        if keep_until is not None and path.is_file():
            kept = []
            for line in path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by the kill
                if record.get("step", 0) <= keep_until:
                    kept.append(line)
            atomic_write_text(path, "".join(f"{line}\n" for line in kept))
        self.file = open(path, "a")

    def write(self, record: dict[str, Any]) -> None:
        # allow_nan=False keeps every line valid JSON: non-finite numbers are written as strings
        self.file.write(json.dumps(json_safe(record), allow_nan=False) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def open_tensorboard(out: Path, enabled: bool, log: RunLog):
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.write({"event": "warning", "message": "train.tensorboard=true but tensorboard is "
                   "not installed (pip install tensorboard); logging to log.jsonl only"})
        print("gancompress train: tensorboard is not installed; logging to log.jsonl only")
        return None
    return SummaryWriter(str(out / "tensorboard"))


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}


def eval_batch(cfg: Config, n: int, seed: int) -> dict[str, Any]:
    """First n items of the eval split (test, else val, else train), without augmentation."""
    first = cfg.data.eval_phase
    phases = [first] + [p for p in ("test", "val", "train") if p != first]
    for phase in phases:
        try:
            dataset = dataset_from_config(cfg.data, phase, train=False, seed=seed)
        except UserError:
            if phase == "train":
                raise
            continue
        items = [dataset[i] for i in range(min(n, len(dataset)))]
        return torch.utils.data.default_collate(items)
    raise AssertionError("unreachable")


def clean_worker_error(err: UserError) -> UserError:
    # DataLoader workers re-raise with the whole remote traceback in the message; keep the cause.
    text = str(err)
    marker = "UserError: "
    if "Traceback" in text and marker in text:
        text = text.rsplit(marker, 1)[1].strip()
    return UserError(text)


# ----------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------


class Diverged(UserError):
    """A loss became NaN/inf: the weights are unusable, so nothing is saved."""


def json_safe(value: Any) -> Any:
    """`value` with non-finite floats replaced by strings ("nan", "inf"): valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


class StopRequest:
    """SIGINT handler: the first Ctrl-C asks the loop to stop at the next step boundary (it then
    saves a checkpoint and exits 130); a second one interrupts at once."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        import sys
        print("\ngancompress: stopping after this step to save a checkpoint (Ctrl-C again to "
              "stop now)", file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _ignore_sigint(_worker_id: int) -> None:
    # Data workers share the terminal's process group: let the main process handle Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def check_same_data(out: Path, ckpt: dict[str, Any], data: dict[str, Any], root: str) -> None:
    saved = ckpt.get("data")
    if not isinstance(saved, dict) or saved == data:
        return
    raise UserError(f"cannot resume {out}: it was trained on {saved.get('images')} images "
                    f"(file list fingerprint {saved.get('fingerprint')}), but {root} holds "
                    f"{data['images']} images ({data['fingerprint']}); an exact resume needs the "
                    f"same data. Resume with the run's dataset (omit --data to use the one "
                    f"recorded in {out / 'config.json'}), or start a new run folder")


def loader(dataset, batch_size: int, seed: int, epoch: int, start: int, workers: int,
            device: torch.device, rank: int = 0, world: int = 1) -> torch.utils.data.DataLoader:
    # batch_size: the global batch; this rank loads its slice of it
    sampler = EpochBatchSampler(len(dataset), batch_size, seed, epoch, start, rank=rank,
                                world=world)
    # A private generator: building the iterator must not draw from the global torch RNG, or
    # a resumed run (new iterator mid-epoch) would diverge from an uninterrupted one.
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=workers,
                                       pin_memory=device.type == "cuda",
                                       worker_init_fn=_ignore_sigint if workers else None,
                                       generator=torch.Generator().manual_seed(seed + epoch))


def progress_bar(total: int, start: int, enabled: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=start, disable=not enabled, unit="step", dynamic_ncols=True,
                smoothing=0.05)


def steps_for(config: Config) -> tuple[int, int]:
    """(steps per epoch, total steps) of a config, reading only the training file list (with
    the process count torchrun gives, if any: steps count global batches)."""
    dataset = dataset_from_config(config.data, "train", train=True, seed=config.train.seed)
    world = distributed.world_size() if distributed.active() else distributed.env_world_size()
    spe = EpochBatchSampler.batches_per_epoch(len(dataset), config.train.batch_size * world,
                                              world)
    total = (config.train.epochs + config.train.epochs_decay) * spe
    return spe, min(total, config.train.max_steps) if config.train.max_steps else total


__all__ = ["RUN_FORMAT", "RUN_VERSION", "seed_everything", "rng_state", "set_rng_state",
           "lr_factor", "resolve_device", "load_run_config", "check_folder", "load_checkpoint",
           "portable_config", "resolved_config", "record_inputs", "write_run_config",
           "moved_inputs", "run_root", "check_steps_done",
           "RunLog", "open_tensorboard", "to_device", "eval_batch", "clean_worker_error",
           "Diverged", "json_safe", "StopRequest", "check_same_data", "loader", "progress_bar",
           "steps_for"]
