"""MUNIT compression tasks (Fast GAN Compression; REFERENCE-FAMILIES.md sec. 6.4): distill,
supernet and finetune for a MUNIT teacher, registered in training.loop.TASKS as munit-distill,
munit-supernet and munit-finetune (the pipeline picks them through
`MunitGenerator.compression_tasks`).

A MUNIT translation depends on a style code, so the generic distillation (one input, one output)
does not fit: per step, with A images x_A and unpaired B images x_B,
    style      on steps with step % munit.style_every != 0 both networks encode the style of x_B
               and L_s = munit.lambda_style * L1(s_S, s_T); on the others one random style
               s ~ N(0, I) is fed to both (s_S = s_T = s)
    output     L_x = loss.lambda_recon * L1(S.decode(c_S, s_S), T.decode(c_T, s_T))   (x10)
    content    L_c = compress.lambda_distill * L1(map(c_S), c_T), map = 1x1 conv trunk_S -> trunk_T
    GAN        LSGAN with the multi-scale image discriminator (fresh): D on x_B vs the student's
               output, summed over scales, weighted by compress.lambda_gan
G and D losses are computed against the same D; G is stepped, then D (the published order of
the two optimiser steps after both backward passes gives the same updates). Optimiser as the
teacher's task: Adam with munit.weight_decay, lr x munit.lr_gamma every munit.lr_step steps.
The teacher is frozen; the student is a supernet (munit-supernet: one uniformly sampled
sub-network per step), a fixed network (munit-distill) or one sub-network of a trained supernet
(munit-finetune, compress.config).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gancompress.compress.distill import FeatureMappings
from gancompress.compress.space import SearchSpace
from gancompress.compress.tasks import (_load_part, _stage_checkpoint, build_student, load_teacher,
                                        width_rng)
from gancompress.config import Config
from gancompress.errors import UserError
from gancompress.models.checkpoint import save_generator
from gancompress.models.elastic import parse_config_numbers, using_widths
from gancompress.training.loop import Task
from gancompress.training.munit import (
    add_weight_decay,
    informative_batch,
    lsgan_sum,
    ms_discriminator,
    step_lr,
)
from gancompress.training.tasks import set_requires_grad


class MunitDistillTask(Task):
    """Distil a fixed-width MUNIT student from a MUNIT teacher (see the module docstring)."""

    name = "munit-distill"

    def __init__(self, config: Config, device: torch.device):
        super().__init__(config, device)
        c = config.compress
        self.teacher = load_teacher(c.teacher, self.device)
        if self.teacher.arch_name != "munit":
            raise UserError(f"task {self.name} distils a MUNIT teacher, but {c.teacher} holds a "
                            f"{self.teacher.arch_name} generator; use train.task="
                            f"{self.name.removeprefix('munit-')}")
        self.space = SearchSpace.for_model(self.teacher, c.space)
        self.student = self.add_model("student", build_student(config, self.teacher,
                                                               self.student_widths()))
        self.mappings = self.add_model("mappings", FeatureMappings.between(self.student,
                                                                           self.teacher))
        wd = config.munit.weight_decay
        add_weight_decay(self.add_optimizer(
            "generator", [*self.student.parameters(), *self.mappings.parameters()]), wd)
        self.disc = None
        if c.lambda_gan > 0:
            self.disc = self.add_model("disc", ms_discriminator(config,
                                                                self.teacher.out_channels))
            add_weight_decay(self.add_optimizer("disc", self.disc.parameters()), wd)
        if c.init_from_run:
            models = _stage_checkpoint(c.init_from_run)
            _load_part(self.mappings, models["mappings"], "content mapping", c.init_from_run)
            if self.disc is not None and "disc" in models:
                _load_part(self.disc, models["disc"], "discriminator", c.init_from_run)

    # -- widths ---------------------------------------------------------------------------------
    def student_widths(self) -> dict[str, int]:
        c = self.config.compress
        if c.student_widths:
            return self.space.to_widths(parse_config_numbers(c.student_widths))
        return self.space.widths(self.space.largest())

    def step_widths(self, step: int) -> dict[str, int] | None:
        return None

    def sample_widths(self) -> list[dict[str, int] | None]:
        return [None]

    def set_lr(self, factor: float) -> None:
        pass  # step schedule, applied in step() (training.munit.step_lr)

    # -- one step -------------------------------------------------------------------------------
    def step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        if "target" not in batch:
            raise UserError("MUNIT distillation needs B-domain images (their styles and the "
                            "discriminator's real images): use an unaligned (trainA/, trainB/) "
                            "or aligned folder, not a single folder")
        step_lr(self, step)
        u, c, lambda_x = self.config.munit, self.config.compress, self.config.loss.lambda_recon
        x_a, x_b = batch["source"], batch["target"]
        kept = informative_batch(self, x_a, x_b)  # constant images overflow the gradients
        if kept is None:
            return {"skipped": 1.0}
        x_a, x_b = kept
        style_step = step % u.style_every != 0
        widths = self.step_widths(step)
        logs: dict[str, float] = {}
        with torch.no_grad(), self.autocast():
            content_t = self.teacher.encode(x_a)
            style_t = (self.teacher.style_of(x_b) if style_step
                       else self.teacher.random_style(len(x_a)))
            fake_t = self.teacher.decode(content_t, style_t)
        with self.autocast(), using_widths(self.student, widths):
            content_s = self.student.encode(x_a)
            style_s = self.student.style_of(x_b) if style_step else style_t
            fake_s = self.student.decode(content_s, style_s)
            losses = {"G_recon": lambda_x * F.l1_loss(fake_s, fake_t),
                      "G_content": c.lambda_distill * F.l1_loss(self.mappings([content_s])[0],
                                                                content_t)}
            if style_step:
                losses["G_style"] = u.lambda_style * F.l1_loss(style_s, style_t)
            if self.disc is not None:
                set_requires_grad(self.disc, False)
                losses["G_gan"] = c.lambda_gan * lsgan_sum(self.disc(fake_s), True)
        self.optimize("generator", sum(losses.values()))
        logs.update({k: v.item() for k, v in losses.items()})
        if self.disc is not None:
            set_requires_grad(self.disc, True)
            with self.autocast():
                loss_d = c.lambda_gan * (lsgan_sum(self.disc(fake_s.detach()), False)
                                         + lsgan_sum(self.disc(x_b), True))
            self.optimize("disc", loss_d)
            logs["D"] = loss_d.item()
        return logs

    # -- samples and export ---------------------------------------------------------------------
    def sample(self, batch: dict[str, Any]) -> list[list[torch.Tensor]]:
        """Per row: A, teacher and student(s) with two fixed random styles, and the B image."""
        x_a = batch["source"]
        gen = torch.Generator().manual_seed(0)
        styles = [self.teacher.random_style(len(x_a), gen) for _ in range(2)]
        columns = [x_a] + [self.teacher(x_a, s) for s in styles]
        for widths in self.sample_widths():
            with using_widths(self.student, widths):
                columns += [self.student(x_a, s) for s in styles]
        if "target" in batch:
            columns.append(batch["target"])
        return [list(row) for row in zip(*columns)]

    def export_meta(self) -> dict[str, Any]:
        return {"kind": "student", "teacher": str(Path(self.config.compress.teacher).resolve()),
                "space": self.space.to_meta(), "config": self.config.to_dict()}

    def export(self, out_dir: Path) -> list[Path]:
        path = Path(out_dir) / "student.pth"
        save_generator(self.student, path, meta=self.export_meta())
        return [path]


class MunitSupernetTask(MunitDistillTask):
    """Once-for-all MUNIT supernet: one sub-network sampled per step, every position uniformly."""

    name = "munit-supernet"

    def step_widths(self, step: int) -> dict[str, int] | None:
        # from (seed, step): every rank of a multi-process run trains the same sub-network, and
        # a resumed run draws what an uninterrupted one would
        return self.space.widths(self.space.sample(width_rng(self.config.train.seed, step)))

    def sample_widths(self) -> list[dict[str, int] | None]:
        return [self.space.widths(self.space.largest()), self.space.widths(self.space.smallest())]

    def export_meta(self) -> dict[str, Any]:
        return {**super().export_meta(), "kind": "supernet", "sampling": "uniform"}

    def export(self, out_dir: Path) -> list[Path]:
        path = Path(out_dir) / "supernet.pth"
        save_generator(self.student, path, meta=self.export_meta())
        return [path]


class MunitFinetuneTask(MunitSupernetTask):
    """Fine-tune one sub-network (compress.config) of a trained MUNIT supernet (off by default:
    the published recipe skips it, as it raised FID)."""

    name = "munit-finetune"

    def __init__(self, config: Config, device: torch.device):
        if not config.compress.config:
            raise UserError("the munit-finetune task needs the sub-network: compress.config=...")
        super().__init__(config, device)
        self.widths = self.space.widths(self.space.decode(config.compress.config))

    def step_widths(self, step: int) -> dict[str, int] | None:
        return self.widths

    def sample_widths(self) -> list[dict[str, int] | None]:
        return [self.widths]

    def export_meta(self) -> dict[str, Any]:
        return {**super().export_meta(), "finetuned_config": self.config.compress.config}
