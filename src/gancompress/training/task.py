"""The training task: what differs between kinds of training (models, optimisers, losses, the
update rule), behind the interface the one loop (training/loop.py) calls.

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

The GAN update
--------------
`Task.update(g_phase, d_phase, discs, d_first)` is the one adversarial update of the code base
(teacher training, training/objectives.TeacherTask, and every compression stage,
compress/tasks.DistillTask): a discriminator phase and a generator phase in the objective's
published order, each `phase() -> (loss, logs)` followed by its optimiser step, with the
discriminators' requires_grad off during the generator phase (their gradients would be wasted
work) and on again afterwards.

Several processes (torchrun; gancompress/distributed.py): `optimize` sums the gradients over the
ranks, weighted by each rank's share of the global batch (`batch_share`, set by the loop), after
backward (by hand rather than with DistributedDataParallel: exact for elastic supernets, whose
narrow widths leave weight slices unused, and for GAN steps that call D several times per
update and toggle requires_grad); BatchNorm layers of models added with add_model are
synchronized (models/elastic.py).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from gancompress import distributed
from gancompress.config import Config
from gancompress.errors import UserError
from gancompress.models.elastic import synchronize_batchnorm

Phase = Callable[[], tuple[torch.Tensor, dict[str, float]]]


def set_requires_grad(models: nn.Module | Sequence[nn.Module], flag: bool) -> None:
    """Freeze D while G is updated (its gradients would be wasted work)."""
    for model in [models] if isinstance(models, nn.Module) else models:
        for p in model.parameters():
            p.requires_grad_(flag)


class Task:
    """Base class of a training task (see the module docstring for the full interface)."""

    name: str = ""
    # dataset layouts the task can learn from (None: any); the loop refuses others up front
    data_modes: tuple[str, ...] | None = None

    @classmethod
    def data_modes_for(cls, config: Config) -> tuple[str, ...] | None:
        """The dataset layouts this task learns from under `config` (None: any); the loop
        refuses others before anything is built."""
        return cls.data_modes

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
        """Adam with the configured lr / betas (docs/reference.md sec. 3); the loop schedules its lr.

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

    def update(self, g_phase: Phase, d_phase: Phase | None = None,
               discs: Sequence[nn.Module] = (), d_first: bool = True,
               g_optimizer: str = "generator", d_optimizer: str = "disc") -> dict[str, float]:
        """The one GAN update: the discriminator phase and the generator phase in the order
        `d_first` gives (each: `phase() -> (loss, logs)`, then that optimiser's step), `discs`
        trainable only in the discriminator phase. Returns the phases' logs merged."""
        logs: dict[str, float] = {}
        phases = [("d", d_phase), ("g", g_phase)]
        for kind, phase in phases if d_first else phases[::-1]:
            if phase is None:
                continue
            set_requires_grad(discs, kind == "d")
            loss, part = phase()
            self.optimize(d_optimizer if kind == "d" else g_optimizer, loss)
            logs.update(part)
        set_requires_grad(discs, True)
        return logs

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


__all__ = ["Task", "Phase", "set_requires_grad"]
