"""The one training loop of gancompress.

    from gancompress.config import preset, apply_overrides
    from gancompress.training.loop import train
    cfg = apply_overrides(preset("demo"), ["data.root=demo_data"])
    train(cfg, "runs/demo")                  # new run folder (refused if it exists, non-empty)
    train(cfg, "runs/demo", resume=True)     # continue after a crash / SIGKILL, bitwise identical

The loop owns everything that is the same for every kind of training: the run folder, seeding,
data order, learning-rate schedule, logging, checkpoints, resume, sample grids, progress bar
(helpers in training/run.py). A *task* (training/task.py) owns what differs: models,
optimisers, losses and the update rule. train.task names one in compress/tasks.TASKS (teacher
objectives and compression stages); `train(..., task=cls)` runs any Task subclass.

`_train` is the loop in named phases: open (data, task, checkpoint restore, log), then per step
load -> step -> agree (ranks) -> report -> samples -> checkpoint, then finish (export).

Exact resume
------------
Everything that influences the weights is either saved (task state incl. optimisers and image
pools; python / numpy / torch / cuda RNG states) or a pure function of (seed, step): the data
order and each item's crop/flip (data/sampling.py, data/datasets.py), and the learning rate.
A run killed at any moment and resumed from its last checkpoint therefore ends with the same
weights as an uninterrupted run (bitwise on CPU with the same thread count). The DataLoader gets
its own torch.Generator so that creating an iterator mid-epoch does not consume the global RNG.

Several processes (torchrun; gancompress/distributed.py)
--------------------------------------------------------
Every rank runs this loop. train.batch_size is per process; the global batch (batch_size x
processes, recorded as train.global_batch_size) is what steps, epochs and the lr schedule count,
and each rank loads its contiguous slice of it (data/sampling.py). Task.optimize sums the
gradients over the ranks, weighted by each rank's share of the global batch, so N processes at
batch b train what one process at batch N*b trains. Models start identical (same seed, then
rank 0's weights broadcast); each rank's random streams differ (rank 0 keeps the single-process
ones). Only rank 0 writes the run folder; checkpoints also hold every rank's RNG state and task
extras ("ranks", gathered by rank 0), so a job that lost a rank resumes bitwise with the same
process count. Another process count may resume if the global batch stays the same; the log
then notes that bitwise equality is not promised.
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gancompress import distributed
from gancompress.config import Config, absolute_paths, validate
from gancompress.data import EpochBatchSampler, dataset_from_config
from gancompress.errors import UserError
from gancompress.files import check_writable
from gancompress.imaging import make_grid, save_image
from gancompress.models.checkpoint import atomic_torch_save
from gancompress.training.run import (
    RUN_FORMAT,
    RUN_VERSION,
    Diverged,
    RunLog,
    StopRequest,
    check_folder,
    check_same_data,
    check_steps_done,
    clean_worker_error,
    eval_batch,
    load_checkpoint,
    load_run_config,
    loader,
    lr_factor,
    open_tensorboard,
    portable_config,
    progress_bar,
    resolve_device,
    rng_state,
    seed_everything,
    set_rng_state,
    steps_for,
    to_device,
    write_run_config,
)
from gancompress.training.task import Task

_STOP_KEY = " stop"  # not a loss name: the stop flag travels with the per-step loss all-reduce


def get_task(name: str) -> type[Task]:
    """The task of a teacher objective (train.task = pix2pix, cyclegan, gaugan, munit). The
    compression stages live a layer up: compress.tasks.train looks every name up in the one
    registry (compress/tasks.TASKS) and hands the class to `train`."""
    from gancompress.training.objectives import OBJECTIVES, TeacherTask

    if name in OBJECTIVES:
        return TeacherTask
    raise UserError(f"train.task={name!r} is not a teacher objective ({', '.join(OBJECTIVES)}); "
                    f"compression stages are trained by gancompress compress / distill / "
                    f"supernet / finetune (in Python: gancompress.compress.tasks.train)")


def train(config: Config, out_dir: str | Path, resume: bool = False,
          task: str | type[Task] | None = None, progress: bool | None = None) -> dict[str, Any]:
    """Run (or resume) training; returns {"steps", "out_dir", "exported", "elapsed_s"}.

    The run folder is locked for the whole call (files.output_lock; by rank 0 under torchrun): a
    second process on the same folder is refused at once. Paths in the config are stored absolute.
    train.threads (if set) applies for the duration of the call; the previous value is restored.
    """
    cfg = validate(absolute_paths(config.copy()))
    if isinstance(task, str):  # the run records what it trains
        cfg.train.task = task
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
            return _train(cfg, out, resume, task if isinstance(task, type) else None, progress)
    finally:
        torch.set_num_threads(threads)


class _Run:
    """The state of one training call: task, data, run folder, counters, and what the phases
    of `_train` do with them (checkpoint, samples, log window)."""

    def __init__(self, cfg: Config, out: Path, resume: bool, task_cls: type[Task] | None,
                 progress: bool | None):
        t = self.t = cfg.train
        self.cfg, self.out = cfg, out
        task_cls = task_cls or get_task(t.task)
        self.device = resolve_device(t.device)  # joins the torchrun process group, if any
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self.main = distributed.is_main()
        self.global_batch = t.batch_size * self.world
        cfg.train.global_batch_size = self.global_batch
        ckpt_path = check_folder(out, cfg, resume)
        # Data, samples and models are built before the run folder is written, so a wrong
        # --data, a corrupt test image or an impossible model setting fails with nothing on disk.
        self.data = dataset_from_config(cfg.data, "train", train=True, seed=t.seed)
        modes = task_cls.data_modes_for(cfg)
        if modes is not None and self.data.layout.mode not in modes:
            hint = (" (unpaired domains: train.task=cyclegan, e.g. --preset cyclegan-horse2zebra)"
                    if self.data.layout.mode == "unaligned" else "")
            raise UserError(f"task {t.task} needs {' or '.join(modes)} data (A|B pairs), but "
                            f"{cfg.data.root} is read as {self.data.layout.mode}; give paired "
                            f"data{hint}")
        self.data.check()  # every file's header now, not a bad file at step N
        self.data_id = self.data.fingerprint()
        if len(self.data) < self.world:
            raise UserError(f"{len(self.data)} training images cannot feed {self.world} "
                            f"processes; use fewer processes")
        self.sample_batch = (to_device(eval_batch(cfg, t.n_samples, t.seed), self.device)
                             if self.main else None)
        ckpt = load_checkpoint(ckpt_path) if ckpt_path else None
        if ckpt is not None:
            check_same_data(out, ckpt, self.data_id, cfg.data.root)
            check_steps_done(out, ckpt, t.max_steps)
        seed_everything(t.seed)  # the same on every rank: identical initial weights
        self.task = task_cls(cfg, self.device)
        self.task.name = self.task.name or t.task
        for model in self.task.models.values():
            distributed.broadcast_module(model)
        if self.rank > 0:  # own streams for dropout etc.; rank 0 keeps the single-process ones
            seed_everything(int(np.random.SeedSequence([1, t.seed % 2**32, self.rank])
                                .generate_state(1)[0]))
        distributed.barrier()  # every rank has checked the folder before rank 0 writes to it
        if self.main:
            out.mkdir(parents=True, exist_ok=True)
            write_run_config(out, cfg)  # on resume: runtime keys, where the folder is now
        self.steps_per_epoch = EpochBatchSampler.batches_per_epoch(len(self.data),
                                                                   self.global_batch, self.world)
        self.total = (t.epochs + t.epochs_decay) * self.steps_per_epoch
        if t.max_steps:
            self.total = min(self.total, t.max_steps)
        self.start, self.elapsed, note = 0, 0.0, None
        if ckpt is not None:
            note = self._restore(ckpt)
        self.log = RunLog(out / "log.jsonl", keep_until=self.start if resume else None) \
            if self.main else None
        self.write({"event": "resume" if resume else "start", "step": self.start,
                    "total_steps": self.total, "steps_per_epoch": self.steps_per_epoch,
                    "train_images": len(self.data), "data": self.data_id,
                    "device": str(self.device), "threads": torch.get_num_threads(),
                    "processes": self.world, "batch_size": t.batch_size,
                    "global_batch_size": self.global_batch, "task": self.task.name,
                    "models": self.task.describe()})
        if note is not None:
            self.write({"event": "warning", "message": note})
            distributed.print0(f"gancompress train: note: {note}")
        if t.amp and self.device.type != "cuda":
            self.write({"event": "warning", "message": "train.amp ignored: mixed precision "
                        "needs CUDA"})
        self.board = open_tensorboard(out, t.tensorboard, self.log) if self.main else None
        self.bar = progress_bar(self.total, self.start,
                                (t.progress if progress is None else progress) and self.main)
        self.last_saved = self.start if ckpt is not None else None
        self.step = self.start
        self._new_window()

    def _restore(self, ckpt: dict[str, Any]) -> str | None:
        self.task.load_state_dict(ckpt["task"])
        saved_world = int(ckpt.get("world_size", 1))
        ranks = ckpt.get("ranks")
        note = None
        if saved_world == self.world:
            mine = ranks[self.rank] if ranks else {"rng": ckpt["rng"]}
            set_rng_state(mine["rng"])
            if "extra" in mine:
                self.task.load_extra_state(mine["extra"])
        else:
            note = (f"resuming a run of {saved_world} process(es) with {self.world}: the global "
                    f"batch is the same, the result is not promised to be bitwise equal to an "
                    f"uninterrupted run (random streams and reduction order differ)")
            own = (ckpt["rng"] if self.rank == 0 or not ranks
                   else ranks[self.rank % saved_world]["rng"])
            set_rng_state(own)
        self.start, self.elapsed = int(ckpt["step"]), float(ckpt.get("elapsed_s", 0.0))
        return note

    def write(self, record: dict[str, Any]) -> None:
        if self.log is not None:
            self.log.write(record)

    def _new_window(self) -> None:
        self.sums: dict[str, float] = {}
        self.window = {"n": 0, "data": 0.0, "step": 0.0, "images": 0}

    # -- the phases of a step ---------------------------------------------------------------------
    def batches(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """(images in this rank's slice, batch on the device) for each step from self.step."""
        it = None
        while True:
            epoch, offset = divmod(self.step, self.steps_per_epoch)
            if it is None or offset == 0:
                it = iter(loader(self.data, self.global_batch, self.t.seed, epoch, offset,
                                 self.cfg.data.num_workers, self.device, self.rank, self.world))
            try:
                batch = next(it)
            except UserError as err:
                raise clean_worker_error(err) from None
            yield offset, to_device(batch, self.device)

    def share(self, offset: int, local: int) -> None:
        """This rank's share of the step's global batch (the last batch may be short)."""
        if self.world > 1:
            self.task.batch_share = local / min(self.global_batch,
                                                len(self.data) - offset * self.global_batch)

    def agree(self, losses: dict[str, float], stop_requested: bool) -> tuple[dict, bool]:
        """One small all-reduce per step makes every rank take the same decisions: losses
        averaged over ranks (a NaN anywhere stops every rank), and a Ctrl-C seen by any rank
        stops all of them after this same step."""
        if self.world == 1:
            return losses, stop_requested
        losses[_STOP_KEY] = float(stop_requested)
        losses = distributed.mean_scalars(losses)
        return losses, losses.pop(_STOP_KEY) > 0

    def check_finite(self, losses: dict[str, float]) -> None:
        for k, v in losses.items():
            if not math.isfinite(v):
                raise self.diverged(k, v, self.step + 1)

    def report(self, losses: dict[str, float], factor: float, data_s: float, step_s: float,
               local: int) -> None:
        """Accumulate the step; every train.log_every steps write the window's means."""
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        w = self.window
        w["n"] += 1
        w["data"] += data_s
        w["step"] += step_s
        w["images"] += local
        self.bar.update(1)
        if self.step % self.t.log_every and self.step != self.total:
            return
        n = w["n"]
        means = {k: v / n for k, v in self.sums.items()}
        # images/s of the whole job: every rank's images over its own time, summed
        speed = distributed.sum_number(w["images"] / max(1e-9, w["data"] + w["step"]))
        lr = self.t.lr * factor
        self.write({"step": self.step, "epoch": round(self.step / self.steps_per_epoch, 4),
                    "lr": lr, "losses": means,
                    "time": {"data_s": w["data"] / n, "step_s": w["step"] / n,
                             "images_per_s": speed},
                    "elapsed_s": round(self.elapsed, 3)})
        self.bar.set_postfix({k: f"{v:.3g}" for k, v in means.items()}, refresh=False)
        if self.board is not None:
            for k, v in means.items():
                self.board.add_scalar(f"loss/{k}", v, self.step)
            self.board.add_scalar("lr", lr, self.step)
        self._new_window()

    def save_samples(self) -> None:
        if not self.main:
            return
        self.task.train(False)
        with torch.no_grad():
            rows = self.task.sample(self.sample_batch)
        self.task.train(True)
        grid = make_grid(rows)
        save_image(grid, self.out / "samples" / f"step_{self.step:07d}.png")
        if self.board is not None:
            self.board.add_image("samples", ((grid + 1) / 2).clamp(0, 1), self.step)

    def save_checkpoint(self) -> None:
        # Every rank's random streams and task extras (image pools) are gathered by rank 0;
        # models and optimisers are identical on all ranks (same all-reduced steps).
        own = {"rng": rng_state(), "extra": distributed.to_cpu(self.task.extra_state())}
        every = distributed.gather(own) if self.world > 1 else None
        self.last_saved = self.step
        if not self.main:
            return
        state = {"format": RUN_FORMAT, "version": RUN_VERSION, "step": self.step,
                 "config": portable_config(self.cfg, self.out).to_dict(),
                 "task": self.task.state_dict(),
                 "rng": own["rng"], "elapsed_s": self.elapsed, "data": self.data_id,
                 "world_size": self.world}
        if every is not None:
            state["ranks"] = every
        atomic_torch_save(state, self.out / "checkpoint.pt")
        self.write({"event": "checkpoint", "step": self.step})

    def diverged(self, name: str, value: float, step: int) -> Diverged:
        if self.last_saved is not None:
            good = (f"the last good checkpoint is step {self.last_saved} "
                    f"({self.out / 'checkpoint.pt'}); after changing the settings, start a new "
                    f"run, or --resume from it with the same settings")
        else:
            good = "no checkpoint was written yet; start again with other settings"
        return Diverged(f"loss {name} became {value} at step {step}: training diverged, so "
                        f"nothing from this step was saved. Lower train.lr or the loss weights "
                        f"(loss.*), or check the data; {good}")

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
        self.bar.close()


def _train(cfg: Config, out: Path, resume: bool, task_cls: type[Task] | None,
           progress: bool | None) -> dict[str, Any]:
    run = _Run(cfg, out, resume, task_cls, progress)  # open: data, task, restore, log
    t, task = run.t, run.task
    consistent, stopping = True, False
    tic = time.perf_counter()
    try:
        with StopRequest() as stop:
            batches = run.batches()
            while run.step < run.total:
                t0 = time.perf_counter()
                offset, batch = next(batches)                                     # load
                t1 = time.perf_counter()
                factor = lr_factor(run.step, run.steps_per_epoch, t.epochs, t.epochs_decay,
                                   t.lr_update)
                consistent = False  # an interrupt inside step() leaves a half-updated state
                task.set_lr(factor)
                local = int(batch["source"].shape[0])
                run.share(offset, local)
                losses = {k: float(v) for k, v in task.step(batch, run.step).items()}  # step
                losses, stop_agreed = run.agree(losses, stop.requested)              # agree
                run.check_finite(losses)
                run.step += 1
                consistent = True
                if run.device.type == "cuda":
                    torch.cuda.synchronize(run.device)
                t2 = time.perf_counter()
                run.elapsed += t2 - tic
                run.report(losses, factor, t1 - t0, t2 - t1, local)                  # report
                if run.step % t.eval_every == 0 or run.step == run.total:
                    run.save_samples()                                              # samples
                if run.step % t.checkpoint_every == 0 or run.step == run.total:
                    run.save_checkpoint()                                           # checkpoint
                # several processes: the agreed flag (a signal arriving after the all-reduce
                # is seen at the next step, by every rank at once)
                if (stop_agreed if run.world > 1 else stop.requested) and run.step < run.total:
                    stopping = True
                    raise KeyboardInterrupt
                tic = time.perf_counter()  # checkpoint and sample time is not training time
    except Diverged:
        run.write({"event": "diverged", "step": run.step, "last_checkpoint": run.last_saved})
        run.close()
        raise
    except (UserError, KeyboardInterrupt) as err:
        _stop(run, err, consistent, stopping)
        raise
    return _finish(run)


def _stop(run: _Run, err: BaseException, consistent: bool, stopping: bool) -> None:
    """Between steps the state is consistent: save it, so a fix + --resume loses nothing.
    With several processes saving needs every rank: only after a stop they all agreed on
    (otherwise the others are elsewhere, and the last periodic checkpoint is what resumes)."""
    step, last = run.step, run.last_saved
    together = run.world == 1 or stopping
    if consistent and together and step > run.start and last != step:
        run.save_checkpoint()
    if isinstance(err, KeyboardInterrupt):
        run.write({"event": "interrupted", "step": step, "saved": run.last_saved == step})
    run.close()
    if isinstance(err, UserError):
        last = run.last_saved
        where = (f"step {step}" if last == step or step == run.start
                 else f"its last checkpoint (step {last})" if last is not None else "the start")
        raise UserError(f"{err} [training stopped at step {step}; after fixing this, run again "
                        f"with --resume to continue from {where}]") from None


def _finish(run: _Run) -> dict[str, Any]:
    run.bar.close()
    exported = [str(p) for p in run.task.export(run.out)] if run.main else []
    run.write({"event": "done", "step": run.step, "exported": exported,
               "elapsed_s": round(run.elapsed, 3)})
    if run.log is not None:
        run.log.close()
    if run.board is not None:
        run.board.close()
    exported = distributed.broadcast(exported)  # also a barrier: the files exist for every rank
    return {"steps": run.step, "out_dir": str(run.out), "exported": exported,
            "elapsed_s": run.elapsed}


__all__ = ["Task", "get_task", "train", "lr_factor", "load_run_config", "seed_everything",
           "rng_state", "set_rng_state", "steps_for"]
