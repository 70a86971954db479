"""The one training loop of gancompress, with pluggable tasks.

    from gancompress.config import preset, apply_overrides
    from gancompress.training.loop import train
    cfg = apply_overrides(preset("demo"), ["data.root=demo_data"])
    train(cfg, "runs/demo")                  # new run folder (refused if it exists, non-empty)
    train(cfg, "runs/demo", resume=True)     # continue after a crash / SIGKILL, bitwise identical

The loop owns everything that is the same for every kind of training: the run folder, seeding,
data order, learning-rate schedule, logging, checkpoints, resume, sample grids, progress bar.
A *task* owns what differs: models, optimisers, losses and the update rule.

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

Exact resume
------------
Everything that influences the weights is either saved (task state incl. optimisers and image
pools; python / numpy / torch / cuda RNG states) or a pure function of (seed, step): the data
order and each item's crop/flip (data/sampling.py, data/datasets.py), and the learning rate.
A run killed at any moment and resumed from its last checkpoint therefore ends with the same
weights as an uninterrupted run (bitwise on CPU with the same thread count). The DataLoader gets
its own torch.Generator so that creating an iterator mid-epoch does not consume the global RNG.

Several processes (torchrun; training/distributed.py)
-----------------------------------------------------
Every rank runs this loop. train.batch_size is per process; the global batch (batch_size x
processes, recorded as train.global_batch_size) is what steps, epochs and the lr schedule count,
and each rank loads its contiguous slice of it (data/sampling.py). Task.optimize sums the
gradients over the ranks, weighted by each rank's share of the global batch, after backward
(by hand rather than with DistributedDataParallel: exact for elastic supernets, whose narrow
widths leave weight slices unused, and for GAN steps that call D several times per update and
toggle requires_grad), and BatchNorm layers of trained models are synchronized
(models/elastic.py), so N processes at batch b train what one process at batch N*b trains.
Models start identical (same seed, then rank 0's weights broadcast); each rank's random streams
differ (rank 0 keeps the single-process ones). Only rank 0 writes the run folder; checkpoints
also hold every rank's RNG state and task extras ("ranks", gathered by rank 0), so a job that
lost a rank resumes bitwise with the same process count. Another process count may resume if
the global batch stays the same; the log then notes that bitwise equality is not promised.

Learning rate (REFERENCE.md sec. 3): constant for train.epochs epochs, then linear decay over
train.epochs_decay epochs: factor = 1 - max(0, e + 1 - epochs) / (epochs_decay + 1), with e the
0-based epoch (lr_update="epoch", published) or the fractional epoch reached after the step
(lr_update="step"). The loop sets lr = initial_lr * factor on every optimiser param group before
each step; tasks never step schedulers themselves.

The Task interface
------------------
Subclass `Task` and register it by name in `TASKS` (a dict: name -> class or "module:Class"
string, resolved lazily), or with `register_task("name", cls)`; select it with train.task=name
or pass `task=` to `train()`.

    class MyTask(Task):
        def __init__(self, config, device):
            super().__init__(config, device)        # sets self.config, self.device, self.amp
            self.student = self.add_model("student", build(...))   # saved + train()/eval()
            self.add_optimizer("student", self.student.parameters())  # Adam(lr, beta1, beta2)
            self.teacher = load_generator(...)      # frozen helpers: plain attributes, not saved
        def step(self, batch, step) -> dict[str, float]:
            with self.autocast():                   # mixed precision when train.amp on CUDA
                loss = ...
            self.optimize("student", loss)          # zero_grad, (scaled) backward, step
            return {"loss": loss.item()}
        def sample(self, batch) -> list[list[Tensor]]:   # called in eval mode under no_grad
            return [[s, o, t] for s, o, t in zip(batch["source"], out, batch["target"])]
        def export(self, out_dir) -> list[Path]:   # final artefacts, e.g. save_generator(...)
            ...

Members of Task used by the loop (override when needed):
    __init__(config, device)    build models/optimisers; the loop has seeded all RNGs before
    step(batch, step)           one update; batch = dataset items collated and moved to the
                                device: {"source": (B,C,H,W), "target": ..., "source_path": [...]};
                                returns floats to log (averaged over train.log_every steps)
    sample(batch)               rows of (C,H,W) images for the sample grid
    export(out_dir)             write final files; returns their paths
    state_dict() / load_state_dict(state)
                                default: every model and optimiser added with add_model /
                                add_optimizer, AMP scalers, plus extra_state() (image pools,
                                sampled widths, anything else that must survive a resume)
    extra_state() / load_extra_state(state)
    set_lr(factor)              default: lr = group["initial_lr"] * factor for all optimisers
    train(mode)                 default: .train(mode) on every model added with add_model
    describe()                  one line for the log (default: parameter counts per model)
Rules for exact resume: draw randomness only from the global RNGs (torch / numpy / python) or
from generators you save in extra_state(); keep state in plain tensors, numbers, strings, lists
and dicts (checkpoints load with weights_only=True).
"""
from __future__ import annotations

import contextlib
import importlib
import json
import math
import random
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from gancompress.config import Config, absolute_paths, diff, validate
from gancompress.data import EpochBatchSampler, dataset_from_config
from gancompress.devices import parse_device
from gancompress.errors import UserError
from gancompress.files import atomic_write_text, check_writable, folder_is_empty
from gancompress.imaging import make_grid, save_image
from gancompress.models.checkpoint import atomic_torch_save, safe_load
from gancompress.models.elastic import synchronize_batchnorm
from gancompress.training import distributed

RUN_FORMAT = "gancompress-run"
RUN_VERSION = 1
_STOP_KEY = " stop"  # not a loss name: the stop flag travels with the per-step loss all-reduce


# ----------------------------------------------------------------------------------------------
# Task interface and registry
# ----------------------------------------------------------------------------------------------

class Task:
    """Base class of a training task (see the module docstring for the full interface)."""

    name: str = ""
    # dataset layouts the task can learn from (None: any); the loop refuses others up front
    data_modes: tuple[str, ...] | None = None

    def __init__(self, config: Config, device: torch.device):
        self.config = config
        self.device = torch.device(device)
        self.amp = bool(config.train.amp) and self.device.type == "cuda"
        self.models: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        # This process's share of the step's global batch (set by the loop before each step;
        # 1 in a single process): gradients are all-reduced with this weight in optimize().
        self.batch_share = 1.0

    # -- building ------------------------------------------------------------------------------
    def add_model(self, name: str, model: nn.Module) -> nn.Module:
        """Register a trained model: moved to the device, saved in checkpoints, in train mode.

        Under torch.distributed its BatchNorm layers are synchronized across processes."""
        if distributed.active():
            model = synchronize_batchnorm(model)
        model = model.to(self.device).train()
        self.models[name] = model
        return model

    def add_optimizer(self, name: str, params: Iterable[nn.Parameter], lr: float | None = None,
                      betas: tuple[float, float] | None = None, disc: bool | None = None
                      ) -> torch.optim.Optimizer:
        """Adam with the configured lr / betas (REFERENCE.md sec. 3); the loop schedules its lr.

        Discriminator optimisers (`disc`, default: names starting with "disc") take
        train.lr_disc / beta1_disc / beta2_disc when set (two time-scale update rule, TTUR).
        """
        t = self.config.train
        if disc is None:
            disc = name.startswith("disc")
        if lr is None:
            lr = t.lr_disc if disc and t.lr_disc > 0 else t.lr
        if betas is None:
            betas = (t.beta1, t.beta2)
            if disc:
                betas = (t.beta1_disc if t.beta1_disc >= 0 else t.beta1,
                         t.beta2_disc if t.beta2_disc >= 0 else t.beta2)
        optimizer = torch.optim.Adam(list(params), lr=lr, betas=betas)
        for group in optimizer.param_groups:
            group["initial_lr"] = group["lr"]
        self.optimizers[name] = optimizer
        if self.amp:
            self.scalers[name] = torch.amp.GradScaler("cuda")
        return optimizer

    # -- helpers for step() --------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        """float16 autocast when train.amp is on and the device is CUDA; otherwise a no-op."""
        if self.amp:
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def optimize(self, name: str, loss: torch.Tensor) -> None:
        """zero_grad, backward (loss-scaled under AMP), optimiser step for optimiser `name`.

        Several processes: between backward and step the gradients are summed over the ranks,
        weighted by each rank's share of the global batch (distributed.reduce_gradients), so
        every rank takes the step one process would take on the whole global batch.
        """
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        scaler = self.scalers.get(name)
        if scaler is None:
            loss.backward()
            self._reduce_gradients(optimizer)
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            self._reduce_gradients(optimizer)  # scaled alike on every rank: same scaler state
            scaler.step(optimizer)
            scaler.update()

    def _reduce_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        if distributed.active():
            distributed.reduce_gradients(
                (p for group in optimizer.param_groups for p in group["params"]),
                self.batch_share)

    # -- the interface the loop calls ----------------------------------------------------------
    def step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        raise NotImplementedError

    def sample(self, batch: dict[str, Any]) -> list[list[torch.Tensor]]:
        raise NotImplementedError

    def export(self, out_dir: Path) -> list[Path]:
        return []

    def set_lr(self, factor: float) -> None:
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * factor

    def train(self, mode: bool = True) -> None:
        for model in self.models.values():
            model.train(mode)

    def describe(self) -> str:
        return ", ".join(f"{name}: {sum(p.numel() for p in m.parameters()):,} params"
                         for name, m in self.models.items())

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"models": {k: m.state_dict() for k, m in self.models.items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
                "extra": self.extra_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for kind, mine in (("models", self.models), ("optimizers", self.optimizers)):
            saved = state.get(kind, {})
            if set(saved) != set(mine):
                raise UserError(f"checkpoint holds {kind} {sorted(saved)}, but task "
                                f"{self.name or type(self).__name__} has {sorted(mine)}: it was "
                                f"written by a different task or version")
        for name, model in self.models.items():
            try:
                model.load_state_dict(state["models"][name])
            except RuntimeError as err:
                raise UserError(f"checkpoint weights of {name!r} do not fit the configured "
                                f"model: {str(err).splitlines()[0][:300]}") from None
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scaler in self.scalers.items():
            if name in state.get("scalers", {}):
                scaler.load_state_dict(state["scalers"][name])
        self.load_extra_state(state.get("extra", {}))


TASKS: dict[str, str | type[Task]] = {
    "pix2pix": "gancompress.training.tasks:Pix2PixTask",
    "cyclegan": "gancompress.training.tasks:CycleGANTask",
    "munit": "gancompress.training.munit:MunitTask",
    # MUNIT compression stages (content, style and output distillation)
    "munit-distill": "gancompress.compress.munit_tasks:MunitDistillTask",
    "munit-supernet": "gancompress.compress.munit_tasks:MunitSupernetTask",
    "munit-finetune": "gancompress.compress.munit_tasks:MunitFinetuneTask",
    "gaugan": "gancompress.training.gaugan:GauGANTask",
    # compression stages (compress helper): GAN Compression distillation / supernet / fine-tune
    "distill": "gancompress.compress.tasks:DistillTask",
    "supernet": "gancompress.compress.tasks:SupernetTask",
    "finetune": "gancompress.compress.tasks:FinetuneTask",
}


def register_task(name: str, cls: type[Task] | str | None = None):
    """TASKS[name] = cls; usable as a decorator: @register_task("distill")."""
    if cls is None:
        def decorator(c: type[Task]) -> type[Task]:
            TASKS[name] = c
            return c
        return decorator
    TASKS[name] = cls
    return cls


def get_task(name: str) -> type[Task]:
    if name not in TASKS:
        raise UserError(f"unknown task {name!r} (train.task); available: {', '.join(TASKS)}")
    entry = TASKS[name]
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
        TASKS[name] = entry
    return entry


# ----------------------------------------------------------------------------------------------
# RNG states as plain tensors (weights_only-safe)
# ----------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------
# Schedule, device, run folder
# ----------------------------------------------------------------------------------------------

def lr_factor(step: int, steps_per_epoch: int, epochs: int, epochs_decay: int,
              per: str = "epoch") -> float:
    """Multiplier of the initial lr for `step` (0-based), REFERENCE.md sec. 3 linear decay."""
    if per == "epoch":
        progress = step // steps_per_epoch + 1
    else:
        progress = (step + 1) / steps_per_epoch
    return 1.0 - max(0.0, progress - epochs) / (epochs_decay + 1)


def resolve_device(name: str) -> torch.device:
    """The configured device (devices.parse_device); under torchrun also joins the process group
    (then cuda:LOCAL_RANK on CUDA)."""
    return distributed.init(parse_device(name, "train.device ="))


def load_run_config(out_dir: str | Path) -> Config:
    """The Config a run folder was started with (config.json, else the checkpoint's copy)."""
    out = Path(out_dir)
    path = out / "config.json"
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"cannot read {path}: {err}") from None
        return Config.from_dict(data, source=str(path))
    if (out / "checkpoint.pt").is_file():
        ckpt = _load_checkpoint(out / "checkpoint.pt")
        return Config.from_dict(ckpt.get("config", {}), source=str(out / "checkpoint.pt"))
    raise UserError(f"{out} is not a run folder (no config.json); start a new run without "
                    f"--resume")


def _check_folder(out: Path, cfg: Config, resume: bool) -> Path | None:
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
    changed = diff(saved, cfg)
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
    if changed:
        lines = "; ".join(f"{k}: run has {a!r}, given {b!r}" for k, a, b in changed[:8])
        raise UserError(f"cannot resume {out}: the given config differs from the run's ({lines}). "
                        f"Resume with the same settings (e.g. omit --preset and overrides), or "
                        f"start a new run folder")
    path = out / "checkpoint.pt"
    return path if path.is_file() else None  # killed before its first checkpoint: start over


def _load_checkpoint(path: Path) -> dict[str, Any]:
    ckpt = safe_load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != RUN_FORMAT:
        raise UserError(f"{path} is not a gancompress run checkpoint")
    if ckpt.get("version", 0) > RUN_VERSION:
        raise UserError(f"{path} was written by a newer gancompress; upgrade to resume it")
    return ckpt


class _Log:
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


def _tensorboard(out: Path, enabled: bool, log: _Log):
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


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}


def _eval_batch(cfg: Config, n: int, seed: int) -> dict[str, Any]:
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


def _clean_worker_error(err: UserError) -> UserError:
    # DataLoader workers re-raise with the whole remote traceback in the message; keep the cause.
    text = str(err)
    marker = "UserError: "
    if "Traceback" in text and marker in text:
        text = text.rsplit(marker, 1)[1].strip()
    return UserError(text)


# ----------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------

def train(config: Config, out_dir: str | Path, resume: bool = False,
          task: str | type[Task] | None = None, progress: bool | None = None) -> dict[str, Any]:
    """Run (or resume) training; returns {"steps", "out_dir", "exported", "elapsed_s"}.

    The run folder is locked for the whole call (files.output_lock; by rank 0 under torchrun): a
    second process on the same folder is refused at once. Paths in the config are stored absolute.
    train.threads (if set) applies for the duration of the call; the previous value is restored.
    """
    cfg = validate(absolute_paths(config.copy()))
    out = Path(out_dir)
    threads = torch.get_num_threads()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    try:
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out} is a file; give a folder for the run (nothing was "
                            f"changed)")
        if not resume and distributed.env_rank() == 0:  # torchrun: only rank 0 writes there
            check_writable(out, folder=True)
        with distributed.output_lock(out, "train"):
            return _train(cfg, out, resume, task, progress)
    finally:
        torch.set_num_threads(threads)


class _Diverged(UserError):
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


class _StopRequest:
    """SIGINT handler: the first Ctrl-C asks the loop to stop at the next step boundary (it then
    saves a checkpoint and exits 130); a second one interrupts at once."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self) -> _StopRequest:
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


def _check_same_data(out: Path, ckpt: dict[str, Any], data: dict[str, Any], root: str) -> None:
    saved = ckpt.get("data")
    if not isinstance(saved, dict) or saved == data:
        return
    raise UserError(f"cannot resume {out}: it was trained on {saved.get('images')} images "
                    f"(file list fingerprint {saved.get('fingerprint')}), but {root} holds "
                    f"{data['images']} images ({data['fingerprint']}); an exact resume needs the "
                    f"same data. Resume with the run's dataset (omit --data to use the one "
                    f"recorded in {out / 'config.json'}), or start a new run folder")


def _train(cfg: Config, out: Path, resume: bool, task: str | type[Task] | None,
           progress: bool | None) -> dict[str, Any]:
    t = cfg.train
    task_cls = get_task(task or t.task) if not isinstance(task, type) else task
    device = resolve_device(t.device)  # joins the torchrun process group, if any
    rank, world, main = distributed.rank(), distributed.world_size(), distributed.is_main()
    global_batch = t.batch_size * world
    cfg.train.global_batch_size = global_batch
    ckpt_path = _check_folder(out, cfg, resume)
    # Data, samples and models are built before the run folder is written, so a wrong --data,
    # a corrupt test image or an impossible model setting fails with nothing on disk.
    train_set = dataset_from_config(cfg.data, "train", train=True, seed=t.seed)
    modes = getattr(task_cls, "data_modes", None)
    if modes is not None and train_set.layout.mode not in modes:
        name = task if isinstance(task, str) else t.task
        hint = (" (unpaired domains: train.task=cyclegan, e.g. --preset cyclegan-horse2zebra)"
                if train_set.layout.mode == "unaligned" else "")
        raise UserError(f"task {name} needs {' or '.join(modes)} data (A|B pairs), but "
                        f"{cfg.data.root} is read as {train_set.layout.mode}; give paired data"
                        f"{hint}")
    train_set.check()  # every file's header now, not a bad file at step N
    data_id = train_set.fingerprint()
    if len(train_set) < world:
        raise UserError(f"{len(train_set)} training images cannot feed {world} processes; use "
                        f"fewer processes")
    sample_batch = _to_device(_eval_batch(cfg, t.n_samples, t.seed), device) if main else None
    ckpt = _load_checkpoint(ckpt_path) if ckpt_path else None
    if ckpt is not None:
        _check_same_data(out, ckpt, data_id, cfg.data.root)
    seed_everything(t.seed)  # the same on every rank: identical initial weights
    model_task = task_cls(cfg, device)
    model_task.name = model_task.name or (task if isinstance(task, str) else t.task)
    for model in model_task.models.values():
        distributed.broadcast_module(model)
    if rank > 0:  # own streams for dropout etc.; rank 0 keeps the single-process ones
        seed_everything(int(np.random.SeedSequence([1, t.seed % 2**32, rank]).generate_state(1)[0]))
    distributed.barrier()  # every rank has checked the folder before rank 0 writes to it
    if main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.json", cfg.to_json())  # on resume: runtime keys may change

    steps_per_epoch = EpochBatchSampler.batches_per_epoch(len(train_set), global_batch, world)
    total = (t.epochs + t.epochs_decay) * steps_per_epoch
    if t.max_steps:
        total = min(total, t.max_steps)
    start, elapsed = 0, 0.0
    note = None
    if ckpt is not None:
        model_task.load_state_dict(ckpt["task"])
        saved_world = int(ckpt.get("world_size", 1))
        ranks = ckpt.get("ranks")
        if saved_world == world:
            mine = ranks[rank] if ranks else {"rng": ckpt["rng"]}
            set_rng_state(mine["rng"])
            if "extra" in mine:
                model_task.load_extra_state(mine["extra"])
        else:
            note = (f"resuming a run of {saved_world} process(es) with {world}: the global batch "
                    f"is the same, the result is not promised to be bitwise equal to an "
                    f"uninterrupted run (random streams and reduction order differ)")
            own = ckpt["rng"] if rank == 0 or not ranks else ranks[rank % saved_world]["rng"]
            set_rng_state(own)
        start, elapsed = int(ckpt["step"]), float(ckpt.get("elapsed_s", 0.0))

    log = _Log(out / "log.jsonl", keep_until=start if resume else None) if main else None

    def write(record: dict[str, Any]) -> None:
        if log is not None:
            log.write(record)

    write({"event": "resume" if resume else "start", "step": start, "total_steps": total,
           "steps_per_epoch": steps_per_epoch, "train_images": len(train_set),
           "data": data_id, "device": str(device), "threads": torch.get_num_threads(),
           "processes": world,
           "batch_size": t.batch_size, "global_batch_size": global_batch,
           "task": model_task.name, "models": model_task.describe()})
    if note is not None:
        write({"event": "warning", "message": note})
        distributed.print0(f"gancompress train: note: {note}")
    if t.amp and device.type != "cuda":
        write({"event": "warning", "message": "train.amp ignored: mixed precision needs CUDA"})
    board = _tensorboard(out, t.tensorboard, log) if main else None
    show = (t.progress if progress is None else progress) and main
    bar = _progress_bar(total, start, show)
    last_saved = start if ckpt is not None else None

    def save_checkpoint(step: int) -> None:
        # Every rank's random streams and task extras (image pools) are gathered by rank 0;
        # models and optimisers are identical on all ranks (same all-reduced steps).
        nonlocal last_saved
        own = {"rng": rng_state(), "extra": distributed.to_cpu(model_task.extra_state())}
        every = distributed.gather(own) if world > 1 else None
        last_saved = step
        if not main:
            return
        state = {"format": RUN_FORMAT, "version": RUN_VERSION, "step": step,
                 "config": cfg.to_dict(), "task": model_task.state_dict(), "rng": own["rng"],
                 "elapsed_s": elapsed, "data": data_id, "world_size": world}
        if every is not None:
            state["ranks"] = every
        atomic_torch_save(state, out / "checkpoint.pt")
        write({"event": "checkpoint", "step": step})

    def save_samples(step: int) -> None:
        if not main:
            return
        model_task.train(False)
        with torch.no_grad():
            rows = model_task.sample(sample_batch)
        model_task.train(True)
        grid = make_grid(rows)
        save_image(grid, out / "samples" / f"step_{step:07d}.png")
        if board is not None:
            board.add_image("samples", ((grid + 1) / 2).clamp(0, 1), step)

    def diverged(name: str, value: float, step: int) -> _Diverged:
        if last_saved is not None:
            good = (f"the last good checkpoint is step {last_saved} ({out / 'checkpoint.pt'}); "
                    f"after changing the settings, start a new run, or --resume from it with "
                    f"the same settings")
        else:
            good = "no checkpoint was written yet; start again with other settings"
        return _Diverged(f"loss {name} became {value} at step {step}: training diverged, so "
                         f"nothing from this step was saved. Lower train.lr or the loss weights "
                         f"(loss.*), or check the data; {good}")

    step, consistent, stopping, stop_agreed = start, True, False, False
    sums: dict[str, float] = {}
    window = {"n": 0, "data": 0.0, "step": 0.0, "images": 0}
    loader_iter: Iterator | None = None
    tic = time.perf_counter()
    try:
        with _StopRequest() as stop:
            while step < total:
                epoch, offset = divmod(step, steps_per_epoch)
                if loader_iter is None or offset == 0:
                    loader_iter = iter(_loader(train_set, global_batch, t.seed, epoch, offset,
                                               cfg.data.num_workers, device, rank, world))
                t0 = time.perf_counter()
                try:
                    batch = next(loader_iter)
                except UserError as err:
                    raise _clean_worker_error(err) from None
                batch = _to_device(batch, device)
                t1 = time.perf_counter()
                factor = lr_factor(step, steps_per_epoch, t.epochs, t.epochs_decay, t.lr_update)
                consistent = False  # an interrupt inside step() leaves a half-updated state
                model_task.set_lr(factor)
                local = int(batch["source"].shape[0])
                if world > 1:
                    model_task.batch_share = local / min(global_batch,
                                                         len(train_set) - offset * global_batch)
                losses = {k: float(v) for k, v in model_task.step(batch, step).items()}
                if world > 1:
                    # One small all-reduce per step makes every rank take the same decisions:
                    # losses averaged over ranks (a NaN anywhere stops every rank), and a
                    # Ctrl-C seen by any rank stops all of them after this same step.
                    losses[_STOP_KEY] = float(stop.requested)
                    losses = distributed.mean_scalars(losses)
                    stop_agreed = losses.pop(_STOP_KEY) > 0
                for k, v in losses.items():
                    if not math.isfinite(v):
                        raise diverged(k, v, step + 1)
                step += 1
                consistent = True
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                t2 = time.perf_counter()
                elapsed += t2 - tic
                tic = t2
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v
                window["n"] += 1
                window["data"] += t1 - t0
                window["step"] += t2 - t1
                window["images"] += local
                bar.update(1)
                if step % t.log_every == 0 or step == total:
                    n = window["n"]
                    means = {k: v / n for k, v in sums.items()}
                    # images/s of the whole job: every rank's images over its own time, summed
                    speed = distributed.sum_number(window["images"] / max(
                        1e-9, window["data"] + window["step"]))
                    record = {"step": step, "epoch": round(step / steps_per_epoch, 4),
                              "lr": t.lr * factor, "losses": means,
                              "time": {"data_s": window["data"] / n,
                                       "step_s": window["step"] / n, "images_per_s": speed},
                              "elapsed_s": round(elapsed, 3)}
                    write(record)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in means.items()}, refresh=False)
                    if board is not None:
                        for k, v in means.items():
                            board.add_scalar(f"loss/{k}", v, step)
                        board.add_scalar("lr", t.lr * factor, step)
                    sums = {}
                    window = {"n": 0, "data": 0.0, "step": 0.0, "images": 0}
                if step % t.eval_every == 0 or step == total:
                    save_samples(step)
                if step % t.checkpoint_every == 0 or step == total:
                    save_checkpoint(step)
                # several processes: the agreed flag (a signal arriving after the all-reduce is
                # seen at the next step, by every rank at once)
                if (stop_agreed if world > 1 else stop.requested) and step < total:
                    stopping = True
                    raise KeyboardInterrupt
                tic = time.perf_counter()  # checkpoint and sample time is not training time
    except _Diverged:
        write({"event": "diverged", "step": step, "last_checkpoint": last_saved})
        if log is not None:
            log.close()
        bar.close()
        raise
    except (UserError, KeyboardInterrupt) as err:
        # Between steps the state is consistent: save it, so a fix + --resume loses nothing.
        # With several processes saving needs every rank: only after a stop they all agreed on
        # (otherwise the others are elsewhere, and the last periodic checkpoint is what resumes).
        together = world == 1 or stopping
        if consistent and together and step > start and last_saved != step:
            save_checkpoint(step)
        if isinstance(err, KeyboardInterrupt):
            write({"event": "interrupted", "step": step, "saved": last_saved == step})
        if log is not None:
            log.close()
        bar.close()
        if isinstance(err, UserError):
            where = (f"step {step}" if last_saved == step or step == start
                     else f"its last checkpoint (step {last_saved})" if last_saved is not None
                     else "the start")
            raise UserError(f"{err} [training stopped at step {step}; after fixing this, run "
                            f"again with --resume to continue from {where}]") from None
        raise
    bar.close()
    exported = [str(p) for p in model_task.export(out)] if main else []
    write({"event": "done", "step": step, "exported": exported, "elapsed_s": round(elapsed, 3)})
    if log is not None:
        log.close()
    if board is not None:
        board.close()
    exported = distributed.broadcast(exported)  # also a barrier: the files exist for every rank
    return {"steps": step, "out_dir": str(out), "exported": exported, "elapsed_s": elapsed}


def _loader(dataset, batch_size: int, seed: int, epoch: int, start: int, workers: int,
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


def _progress_bar(total: int, start: int, enabled: bool):
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


__all__ = ["Task", "TASKS", "register_task", "get_task", "train", "lr_factor", "load_run_config",
           "seed_everything", "rng_state", "set_rng_state", "steps_for"]
