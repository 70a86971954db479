"""Compression training tasks for the loop in train.py: distill, supernet, finetune.

All three train a student generator from a frozen teacher (GAN Compression sec. 3.1-3.3;
REFERENCE.md sec. 1-3) with the same per-step losses:
    G:  lambda_recon   * L1(student(x), y)             paired data: y = ground truth
                                                       unpaired:    y = teacher(x)
      + lambda_recon * lambda_output * L1(student(x), teacher(x))    (paired data only)
      + lambda_recon * lambda_identity * L1(student(b), b)   unpaired: b a real target-domain
                                                       image (CycleGAN's identity term;
                                                       C -> C channel generators only)
      + lambda_distill * sum_i MSE(map_i(f_i^student), f_i^teacher)   (4 trunk taps)
                      or sum_i (1 - KA(f_i^student, f_i^teacher))     (distill_loss=ka, CAT)
      + lambda_gan     * gan(D(student(x)))            D fresh or the teacher's (compress.disc_init)
      + lambda_feat    * feature matching to D(real)  where D returns its stages (GauGAN's)
      + lambda_vgg     * VGG19 perceptual loss to y   paired data, teacher trained with it (GauGAN)
    D:  0.5 * [gan(D(real), real) + gan(D(fake), fake)]  (paired: D sees concat(source, image))
The teacher runs in eval mode without gradients; it is a plain attribute, never saved or trained.

What differs is which widths of the student run in a step:
    distill   the student's own widths (a fixed network: the original pipeline's pre-distilled
              student, or its mobile teacher)
    supernet  once-for-all training: each step samples a sub-network, every position uniformly
              and independently (compress.sampling=uniform, published), or the sandwich rule
              (widest + narrowest + one random sub-network per step, gradients summed)
    finetune  the chosen sub-network (compress.config) of the trained supernet
Exports: distill -> student.pth; supernet / finetune -> supernet.pth (meta: search space, and
the fine-tuned config); `gancompress extract` turns a supernet into a compact model.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gancompress.compress.distill import (
    FeatureMappings,
    alignment_loss,
    distillation_loss,
    freeze,
)
from gancompress.compress.prune import l1_prune
from gancompress.compress.space import SearchSpace
from gancompress.config import Config
from gancompress.errors import UserError
from gancompress.models import build_generator, generator_class
from gancompress.models.checkpoint import load_generator, safe_load, save_generator
from gancompress.models.elastic import (
    ElasticGenerator,
    crop_state,
    parse_config_numbers,
    using_widths,
)
from gancompress.training.loop import Task, register_task
from gancompress.training.losses import disc_loss, feature_matching, gen_loss, stage_features
from gancompress.training.tasks import discriminator_from_config, init_weights, set_requires_grad

# ----------------------------------------------------------------------------------------------
# Helpers shared with the pipeline

def load_teacher(path: str | Path, device: str | torch.device = "cpu") -> ElasticGenerator:
    """The teacher generator, frozen (eval mode, no gradients); any registered family."""
    if not str(path):
        raise UserError("no teacher given: pass --teacher FILE (or compress.teacher=FILE)")
    return freeze(load_generator(path, device=device))


def data_kind(config: Config) -> str:
    """'paired' (aligned folders, label maps -> photos), 'unpaired' (trainA / trainB) or
    'single' (one folder)."""
    from gancompress.data import resolve_layout
    if config.data.mode == "labels":
        return "paired"
    return {"aligned": "paired", "unaligned": "unpaired", "single": "single"}[
        resolve_layout(config.data.root, config.data.mode, "train").mode]


def check_data_channels(config: Config, teacher: ElasticGenerator) -> None:
    """UserError unless the data feeds the teacher's input channels and holds its outputs'."""
    from gancompress.data import data_channels
    d, t = config.data, teacher
    given = data_channels(d)
    if given == (t.in_channels, t.out_channels):
        return
    if d.mode == "labels":
        raise UserError(f"the label maps in {d.root} make {given[0]}-channel inputs (one-hot "
                        f"label ids + dontcare + instance edges) but the teacher takes "
                        f"{t.in_channels}; set data.label_nc / data.contain_dontcare / "
                        f"data.no_instance as the teacher was trained, or use its data")
    raise UserError(f"data folder {d.root} is read as {given[0]} -> {given[1]} channels "
                    f"(data.in_channels / data.out_channels) but the teacher maps "
                    f"{t.in_channels} -> {t.out_channels} channels; use the teacher's data or "
                    f"set data.in_channels={t.in_channels} data.out_channels={t.out_channels}")


def student_template(config: Config, teacher: ElasticGenerator) -> ElasticGenerator:
    """A network of the student's family whose codec, search spaces and `student_arch` define
    the student: the teacher itself, or (compress.student_family set to another family) a fresh
    one of that family with the teacher's image channels and compress.student_args."""
    import inspect

    c = config.compress
    family = c.student_family.strip() or teacher.arch_name
    if family == teacher.arch_name:
        if c.student_args:
            raise UserError("compress.student_args describes a student of another family; a "
                            f"{family} student takes the teacher's architecture (set "
                            f"compress.student_family to another family, or drop student_args)")
        return teacher
    if c.pipeline != "fast":
        raise UserError(f"a {family} student for a {teacher.arch_name} teacher needs the fast "
                        f"pipeline (compress.pipeline=fast): the original one prunes a mobile "
                        f"teacher of the student's own family")
    params = inspect.signature(generator_class(family).__init__).parameters
    args = {"in_channels": teacher.in_channels, "out_channels": teacher.out_channels}
    if "conv" in params:
        args["conv"] = c.student_conv
    args.update(c.student_args)
    return build_generator(family, **generator_class(family).arch_args(args))


def build_student(config: Config, teacher: ElasticGenerator, widths: dict[str, int]
                  ) -> ElasticGenerator:
    """The student at `widths` (its widest), initialised as compress.student_init says; of the
    teacher's family (`teacher.student_arch`) unless compress.student_family names another."""
    c = config.compress
    init = c.student_init.strip() or "fresh"
    template = student_template(config, teacher)
    if init == "prune" and template is not teacher:
        raise UserError("compress.student_init=prune needs a student of the teacher's family")
    if init == "prune":
        if teacher.arch.get("conv") != c.student_conv:
            raise UserError(f"compress.student_init=prune needs a teacher with {c.student_conv} "
                            f"convs, but the teacher's are {teacher.arch.get('conv')} (the original "
                            f"pipeline prunes the mobile teacher)")
        student, _ = l1_prune(teacher, widths)
        student.requires_grad_(True)
        return student
    student = build_generator(template.arch_name, **template.student_arch(c.student_conv, widths))
    init_weights(student, config.model.init_std)
    if init == "fresh":
        return student
    source = load_generator(init)
    mismatched = [k for k in student.arch if k != "widths" and source.arch.get(k) != student.arch[k]]
    if source.arch_name != student.arch_name or mismatched:
        key = mismatched[0] if mismatched else "family"
        raise UserError(f"compress.student_init = {init}: its {key} is "
                        f"{source.arch.get(key, source.arch_name)!r}, the student needs "
                        f"{student.arch.get(key, student.arch_name)!r}")
    student.load_state_dict(crop_state(source, widths, student))
    return student


def _stage_checkpoint(run: str | Path) -> dict[str, Any]:
    path = Path(run) / "checkpoint.pt"
    if not path.is_file():
        raise UserError(f"compress.init_from_run = {run}: no checkpoint.pt there (the previous "
                        f"stage has not been trained)")
    ckpt = safe_load(path)
    try:
        return ckpt["task"]["models"]
    except (KeyError, TypeError):
        raise UserError(f"{path} is not a gancompress run checkpoint") from None


def _load_part(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str, where: str
               ) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise UserError(f"the {what} in {where} does not fit this run's: "
                        f"{str(err).splitlines()[0][:200]}") from None


# ----------------------------------------------------------------------------------------------
# The task


class DistillTask(Task):
    """Distil a fixed-width student (see the module docstring); base of supernet / finetune."""

    name = "distill"

    def __init__(self, config: Config, device: torch.device):
        super().__init__(config, device)
        c = config.compress
        self.teacher = load_teacher(c.teacher, self.device)
        t = self.teacher
        check_data_channels(config, t)
        self.kind = data_kind(config)
        self.paired = self.kind == "paired"
        # CycleGAN's identity term: unpaired data, and only where a target-domain image can be
        # an input (as many channels in as out)
        self.identity = (c.lambda_identity > 0 and self.kind == "unpaired"
                         and t.in_channels == t.out_channels)
        self.space = SearchSpace.for_model(student_template(config, self.teacher), c.space)
        self.student = self.add_model("student", build_student(config, self.teacher,
                                                               self.student_widths()))
        self.mappings = self.add_model("mappings", FeatureMappings.between(self.student,
                                                                           self.teacher))
        self.add_optimizer("generator", [*self.student.parameters(), *self.mappings.parameters()])
        self.use_gan = c.lambda_gan > 0 and self.kind != "single"  # single folders: no real images
        self.disc = None
        if self.use_gan:
            in_ch = t.in_channels + t.out_channels if self.paired else t.out_channels
            self.disc = self.add_model("disc", discriminator_from_config(config, in_ch))
            self.add_optimizer("disc", self.disc.parameters())
            if c.disc_init == "teacher" and not c.init_from_run:
                self._disc_from_teacher()
        self.vgg = None
        if config.loss.lambda_vgg > 0 and self.paired:  # the teacher trained with it (GauGAN)
            from gancompress.models.vgg import load_vgg19
            self.vgg, _ = load_vgg19(config.loss.vgg_weights or None)
            self.vgg.to(self.device)
        if c.init_from_run:
            models = _stage_checkpoint(c.init_from_run)
            _load_part(self.mappings, models["mappings"], "feature mappings", c.init_from_run)
            if self.disc is not None and "disc" in models:
                _load_part(self.disc, models["disc"], "discriminator", c.init_from_run)

    # -- widths -------------------------------------------------------------------------------
    def student_widths(self) -> dict[str, int]:
        """Widest widths of the student network (its constructor widths)."""
        c = self.config.compress
        if c.student_widths:
            return self.space.to_widths(parse_config_numbers(c.student_widths))
        return self.space.widths(self.space.largest())

    def step_widths(self, step: int) -> list[dict[str, int] | None]:
        """Sub-networks trained at global step `step` (None = the student's own widths)."""
        return [None]

    # -- init -----------------------------------------------------------------------------------
    def _disc_from_teacher(self) -> None:
        path = Path(self.config.compress.teacher).parent / "checkpoint.pt"
        if not path.is_file():
            raise UserError(f"compress.disc_init=teacher: no run checkpoint {path} beside the "
                            f"teacher (the discriminator is saved there by `gancompress train`); "
                            f"use compress.disc_init=fresh")
        models = safe_load(path).get("task", {}).get("models", {})
        for key in ("disc", "disc_target"):  # pix2pix, CycleGAN (D of the target domain)
            if key in models:
                _load_part(self.disc, models[key], "teacher's discriminator", str(path))
                return
        raise UserError(f"{path} holds no discriminator (models: {sorted(models)}); use "
                        f"compress.disc_init=fresh")

    # -- one step -------------------------------------------------------------------------------
    def _disc_input(self, source: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return torch.cat([source, image], 1) if self.paired else image

    def step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        c, mode = self.config.compress, self.config.loss.gan_mode
        source = batch["source"]
        target = batch.get("target")
        with torch.no_grad(), self.autocast():
            teacher_out, teacher_feats = self.teacher(source, return_features=True)
        reference = target if self.paired else teacher_out

        outs, feats, identity = [], [], []
        with self.autocast():
            for widths in self.step_widths(step):
                with using_widths(self.student, widths):
                    out, f = self.student(source, return_features=True)
                    if self.identity and target is not None:
                        identity.append(self.student(target))
                outs.append(out)
                feats.append(f)
        n = len(outs)
        logs: dict[str, float] = {}

        if self.use_gan:  # D first, on this step's fakes (pix2pix order)
            set_requires_grad(self.disc, True)
            real = target if target is not None else reference
            with self.autocast():
                real_logits = self.disc(self._disc_input(source, real))
                loss_disc = sum(disc_loss(mode, real_logits,
                                          self.disc(self._disc_input(source, o.detach())))
                                for o in outs) / n
            self.optimize("disc", loss_disc)
            logs["D"] = loss_disc.item()
            set_requires_grad(self.disc, False)

        # G: losses of every sub-network of the step summed (sandwich rule: gradients add up)
        with self.autocast():
            loss = self.config.loss
            recon = sum(torch.nn.functional.l1_loss(o, reference) for o in outs)
            if c.distill_loss == "ka":
                distill = sum(alignment_loss(f, teacher_feats, self.mappings.pairs) for f in feats)
            else:
                distill = sum(distillation_loss(f, teacher_feats, self.mappings) for f in feats)
            total = loss.lambda_recon * recon + c.lambda_distill * distill
            if self.paired and c.lambda_output > 0:
                # distil toward the teacher's output as well as the ground truth
                output = sum(torch.nn.functional.l1_loss(o, teacher_out) for o in outs)
                total = total + loss.lambda_recon * c.lambda_output * output
                logs["G_output"] = output.item() / n
            if identity:  # a real target-domain image stays what it is
                idt = sum(torch.nn.functional.l1_loss(i, target) for i in identity)
                total = total + loss.lambda_recon * c.lambda_identity * idt
                logs["G_identity"] = idt.item() / n
            if self.use_gan:
                judged = [self.disc(self._disc_input(source, o)) for o in outs]
                gan = sum(gen_loss(mode, j) for j in judged)
                total = total + c.lambda_gan * gan
                logs["G_gan"] = gan.item() / n
                if loss.lambda_feat > 0 and stage_features(judged[0]):  # D shows its stages
                    with torch.no_grad():
                        real_judged = self.disc(self._disc_input(source, real))
                    feat = sum(feature_matching(real_judged, j) for j in judged)
                    total = total + loss.lambda_feat * feat
                    logs["G_feat"] = feat.item() / n
            if self.vgg is not None:
                from gancompress.models.vgg import vgg_loss
                vgg = sum(vgg_loss(self.vgg, o, reference) for o in outs)
                total = total + loss.lambda_vgg * vgg
                logs["G_vgg"] = vgg.item() / n
        self.optimize("generator", total)
        if self.use_gan:
            set_requires_grad(self.disc, True)
        logs["G_recon"] = recon.item() / n
        logs["G_distill"] = distill.item() / n
        return logs

    # -- samples and export -----------------------------------------------------------------------
    def sample_widths(self) -> list[dict[str, int] | None]:
        return [None]

    def sample(self, batch: dict[str, Any]) -> list[list[torch.Tensor]]:
        source = batch["source"]
        columns = [self.teacher.input_picture(source), self.teacher(source)]
        for widths in self.sample_widths():
            with using_widths(self.student, widths):
                columns.append(self.student(source))
        if "target" in batch and self.paired:
            columns.append(batch["target"])
        return [list(row) for row in zip(*columns)]

    def export_meta(self) -> dict[str, Any]:
        return {"kind": "student", "teacher": str(Path(self.config.compress.teacher).resolve()),
                "space": self.space.to_meta(), "config": self.config.to_dict()}

    def export(self, out_dir: Path) -> list[Path]:
        path = Path(out_dir) / "student.pth"
        save_generator(self.student, path, meta=self.export_meta())
        return [path]


def width_rng(seed: int, step: int) -> random.Random:
    """The generator of step `step`'s sub-network in a supernet run: a pure function of (seed,
    step), so every process of a multi-process run samples the same widths and a resumed run
    (any process count) draws what an uninterrupted one would."""
    words = np.random.SeedSequence([2, seed % 2**32, step]).generate_state(2)
    return random.Random(int(words[0]) << 32 | int(words[1]))


class SupernetTask(DistillTask):
    """Once-for-all supernet training (GAN Compression sec. 3.3)."""

    name = "supernet"

    def step_widths(self, step: int) -> list[dict[str, int] | None]:
        space = self.space
        sampled = space.widths(space.sample(width_rng(self.config.train.seed, step)))
        if self.config.compress.sampling == "sandwich":
            return [space.widths(space.largest()), space.widths(space.smallest()), sampled]
        return [sampled]

    def sample_widths(self) -> list[dict[str, int] | None]:
        # the published practice: watch the largest and the smallest sub-networks
        return [self.space.widths(self.space.largest()), self.space.widths(self.space.smallest())]

    def export_meta(self) -> dict[str, Any]:
        return {**super().export_meta(), "kind": "supernet",
                "sampling": self.config.compress.sampling}

    def export(self, out_dir: Path) -> list[Path]:
        path = Path(out_dir) / "supernet.pth"
        save_generator(self.student, path, meta=self.export_meta())
        return [path]


class FinetuneTask(SupernetTask):
    """Fine-tune one sub-network (compress.config) inside the trained supernet."""

    name = "finetune"

    def __init__(self, config: Config, device: torch.device):
        if not config.compress.config:
            raise UserError("the finetune task needs the sub-network: compress.config=16_16_...")
        super().__init__(config, device)
        self.widths = self.space.widths(self.space.decode(config.compress.config))

    def step_widths(self, step: int) -> list[dict[str, int] | None]:
        return [self.widths]

    def sample_widths(self) -> list[dict[str, int] | None]:
        return [self.widths]

    def export_meta(self) -> dict[str, Any]:
        return {**super().export_meta(), "finetuned_config": self.config.compress.config}


for _task in (DistillTask, SupernetTask, FinetuneTask):
    register_task(_task.name, _task)
