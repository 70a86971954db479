"""Compression tasks: one `DistillTask(objective, sampler)` for every stage and family, and the
registry of every training task (TASKS).

A compression task is the teacher family's objective (training/objectives.py) x a width sampler
(compress/sampling.py): distill = fixed widths, supernet = uniform or sandwich sampling,
finetune = one config. It trains a student generator from a frozen teacher (GAN Compression
sec. 3.1-3.3; docs/reference.md sec. 1-3). The teacher runs in eval mode without gradients; it is a
plain attribute, never saved or trained. Every sub-network the sampler gives for a step adds its
terms (sandwich: gradients summed), and the update is Task.update, the only GAN update.

Losses of the generic path (pix2pix, CycleGAN, GauGAN, U-Net ... teachers), D first:
    G:  lambda_recon   * L1(student(x), y)             paired data: y = ground truth,
                                                       weighted by lambda_target too
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
A MUNIT teacher brings its own distillation terms (style, content and output; its objective's
distill_* methods), optimiser settings (weight decay, step schedule) and multi-scale D.

Exports: distill -> student.pth; supernet / finetune -> supernet.pth (meta: search space, the
sampling, and the fine-tuned config); `gancompress extract` turns a supernet into a compact
model. Task names (train.task): TASKS below; the munit-* names of older runs still load.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gancompress.compress.distill import (
    FeatureMappings,
    alignment_loss,
    distillation_loss,
    freeze,
)
from gancompress.compress.prune import l1_prune
from gancompress.compress.sampling import Sampler, Widths, sampler_for
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
from gancompress.training.losses import disc_loss, feature_matching, gen_loss, stage_features
from gancompress.training.objectives import OBJECTIVES, Objective, TeacherTask
from gancompress.training.parts import discriminator_from_config, init_weights
from gancompress.training.task import Task

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
        student_arch(config, teacher)  # the student options' UserError, before any training
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
    template = build_generator(family, **generator_class(family).arch_args(args))
    student_arch(config, template)
    return template


def student_arch(config: Config, template: ElasticGenerator,
                 widths: dict[str, int] | None = None) -> dict[str, Any]:
    """Constructor arguments of the student (or supernet) at `widths`: the template's
    `student_config` with compress.student_conv, student_norm and student_pad ('' = the
    teacher's; UserError for an option the family does not offer)."""
    c = config.compress
    return template.student_config(c.student_conv, widths, norm=c.student_norm.strip(),
                                   pad=c.student_pad.strip())


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
        wanted = student_arch(config, teacher)
        changed = [k for k in ("norm", "pad") if k in teacher.arch and wanted[k] != teacher.arch[k]]
        if changed:
            raise UserError(f"compress.student_init=prune keeps the teacher's layers, but "
                            f"compress.student_{changed[0]} asks for {wanted[changed[0]]!r} "
                            f"(the teacher's is {teacher.arch[changed[0]]!r}); use "
                            f"compress.student_init=fresh or leave student_{changed[0]} empty")
        student, _ = l1_prune(teacher, widths)
        student.requires_grad_(True)
        return student
    student = build_generator(template.arch_name, **student_arch(config, template, widths))
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


def objective_for(config: Config, teacher: ElasticGenerator, kind: str) -> Objective:
    """The objective of a teacher's family: MUNIT's own for a MUNIT teacher, GauGAN's for label
    maps, else pix2pix (paired or single-folder data) or CycleGAN (unpaired)."""
    if teacher.arch_name == "munit":
        return OBJECTIVES["munit"](config)
    if config.data.mode == "labels":
        return OBJECTIVES["gaugan"](config)
    return OBJECTIVES["cyclegan" if kind == "unpaired" else "pix2pix"](config)


class DistillTask(Task):
    """A compression stage: the family's objective x a width sampler (module docstring).

    The stage is train.task (distill | supernet | finetune, or munit-<stage> of older runs);
    `objective` / `sampler` replace the ones the teacher and the stage give."""

    def __init__(self, config: Config, device: torch.device, objective: Objective | None = None,
                 sampler: Sampler | None = None):
        super().__init__(config, device)
        c = config.compress
        self.stage = config.train.task.removeprefix("munit-")
        if self.stage == "finetune" and not c.config and sampler is None:
            raise UserError(f"the {config.train.task} task needs the sub-network: "
                            f"compress.config=16_16_...")
        self.teacher = load_teacher(c.teacher, self.device)
        t = self.teacher
        if config.train.task.startswith("munit-") and t.arch_name != "munit":
            raise UserError(f"task {config.train.task} distils a MUNIT teacher, but {c.teacher} "
                            f"holds a {t.arch_name} generator; use train.task={self.stage}")
        self.kind = "unpaired" if t.arch_name == "munit" else data_kind(config)
        self.objective = objective or objective_for(config, t, self.kind)
        o = self.objective
        if not o.distills:
            check_data_channels(config, t)
        self.paired = self.kind == "paired"
        # CycleGAN's identity term: unpaired data, and only where a target-domain image can be
        # an input (as many channels in as out)
        self.identity = (not o.distills and c.lambda_identity > 0 and self.kind == "unpaired"
                         and t.in_channels == t.out_channels)
        self.space = SearchSpace.for_model(student_template(config, t), c.space)
        self.student = self.add_model("student", build_student(config, t, self.student_widths()))
        self.mappings = self.add_model("mappings", FeatureMappings.between(self.student, t))
        o.add_optimizer(self, "generator", [*self.student.parameters(),
                                            *self.mappings.parameters()])
        self.vgg = None
        if o.distills:
            self.disc = o.student_disc(self, t.out_channels)
        else:
            self.disc = self._generic_disc()
            if config.loss.lambda_vgg > 0 and self.paired:  # the teacher trained with it
                from gancompress.models.vgg import load_vgg19
                self.vgg, _ = load_vgg19(config.loss.vgg_weights or None)
                self.vgg.to(self.device)
        self.use_gan = self.disc is not None
        if c.init_from_run:
            models = _stage_checkpoint(c.init_from_run)
            _load_part(self.mappings, models["mappings"], "feature mappings", c.init_from_run)
            if self.disc is not None and "disc" in models:
                _load_part(self.disc, models["disc"], "discriminator", c.init_from_run)
        self.sampler = sampler or sampler_for(self.stage, config, self.space)

    def _generic_disc(self) -> torch.nn.Module | None:
        c, t = self.config.compress, self.teacher
        if c.lambda_gan <= 0 or self.kind == "single":  # single folders: no real images
            return None
        in_ch = t.in_channels + t.out_channels if self.paired else t.out_channels
        disc = self.add_model("disc", discriminator_from_config(self.config, in_ch))
        self.objective.add_optimizer(self, "disc", disc.parameters())
        if c.disc_init == "teacher" and not c.init_from_run:
            self._disc_from_teacher(disc)
        return disc

    # -- widths -------------------------------------------------------------------------------
    def student_widths(self) -> dict[str, int]:
        """Widest widths of the student network (its constructor widths)."""
        c = self.config.compress
        if c.student_widths:
            return self.space.to_widths(parse_config_numbers(c.student_widths))
        return self.space.widths(self.space.largest())

    def step_widths(self, step: int) -> list[Widths]:
        """Sub-networks trained at global step `step` (None = the student's own widths)."""
        return self.sampler.widths(step)

    # -- init -----------------------------------------------------------------------------------
    def _disc_from_teacher(self, disc: torch.nn.Module) -> None:
        path = Path(self.config.compress.teacher).parent / "checkpoint.pt"
        if not path.is_file():
            raise UserError(f"compress.disc_init=teacher: no run checkpoint {path} beside the "
                            f"teacher (the discriminator is saved there by `gancompress train`); "
                            f"use compress.disc_init=fresh")
        models = safe_load(path).get("task", {}).get("models", {})
        for key in ("disc", "disc_target"):  # pix2pix, CycleGAN (D of the target domain)
            if key in models:
                _load_part(disc, models[key], "teacher's discriminator", str(path))
                return
        raise UserError(f"{path} holds no discriminator (models: {sorted(models)}); use "
                        f"compress.disc_init=fresh")

    # -- one step -------------------------------------------------------------------------------
    def set_lr(self, factor: float) -> None:
        if self.objective.loop_schedule:
            super().set_lr(factor)

    def step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        o = self.objective
        batch = o.begin_step(self, batch, step)
        if batch is None:
            return {"skipped": 1.0}
        widths = self.step_widths(step)
        path = o if o.distills else self
        out = path.distill_forward(self, batch, step, widths)
        d_phase = (lambda: path.distill_d_loss(self, batch, out)) if self.use_gan else None
        return self.update(lambda: path.distill_g_loss(self, batch, out), d_phase,
                           [self.disc] if self.use_gan else [], o.distill_d_first)

    # The generic distillation path (objectives without their own terms)
    def _disc_input(self, source: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return torch.cat([source, image], 1) if self.paired else image

    @staticmethod
    def distill_forward(task: DistillTask, batch: dict[str, Any], step: int,
                        widths: list[Widths]) -> dict[str, Any]:
        source, target = batch["source"], batch.get("target")
        with torch.no_grad(), task.autocast():
            teacher_out, teacher_feats = task.teacher(source, return_features=True)
        outs, feats, identity = [], [], []
        with task.autocast():
            for w in widths:
                with using_widths(task.student, w):
                    o, f = task.student(source, return_features=True)
                    if task.identity and target is not None:
                        identity.append(task.student(target))
                outs.append(o)
                feats.append(f)
        return {"teacher_out": teacher_out, "teacher_feats": teacher_feats, "outs": outs,
                "feats": feats, "identity": identity,
                "reference": target if task.paired else teacher_out,
                "real": target if target is not None else teacher_out}

    @staticmethod
    def distill_d_loss(task: DistillTask, batch: dict[str, Any], out: dict[str, Any]
                       ) -> tuple[torch.Tensor, dict[str, float]]:
        # D first, on this step's fakes (pix2pix order)
        mode, source, outs = task.config.loss.gan_mode, batch["source"], out["outs"]
        with task.autocast():
            real_logits = task.disc(task._disc_input(source, out["real"]))
            loss = sum(disc_loss(mode, real_logits, task.disc(task._disc_input(source, o.detach())))
                       for o in outs) / len(outs)
        return loss, {"D": loss.item()}

    @staticmethod
    def distill_g_loss(task: DistillTask, batch: dict[str, Any], out: dict[str, Any]
                       ) -> tuple[torch.Tensor, dict[str, float]]:
        # the losses of every sub-network of the step summed (sandwich: gradients add up)
        c, loss, mode = task.config.compress, task.config.loss, task.config.loss.gan_mode
        source, target = batch["source"], batch.get("target")
        outs, feats, reference = out["outs"], out["feats"], out["reference"]
        n = len(outs)
        logs: dict[str, float] = {}
        l1 = torch.nn.functional.l1_loss
        with task.autocast():
            recon = sum(l1(o, reference) for o in outs)
            target_weight = c.lambda_target if task.paired else 1.0
            if c.distill_loss == "ka":
                distill = sum(alignment_loss(f, out["teacher_feats"], task.mappings.pairs)
                              for f in feats)
            else:
                distill = sum(distillation_loss(f, out["teacher_feats"], task.mappings)
                              for f in feats)
            total = loss.lambda_recon * target_weight * recon + c.lambda_distill * distill
            if task.paired and c.lambda_output > 0:
                # distil toward the teacher's output as well as the ground truth
                output = sum(l1(o, out["teacher_out"]) for o in outs)
                total = total + loss.lambda_recon * c.lambda_output * output
                logs["G_output"] = output.item() / n
            if out["identity"]:  # a real target-domain image stays what it is
                idt = sum(l1(i, target) for i in out["identity"])
                total = total + loss.lambda_recon * c.lambda_identity * idt
                logs["G_identity"] = idt.item() / n
            if task.use_gan:
                judged = [task.disc(task._disc_input(source, o)) for o in outs]
                gan = sum(gen_loss(mode, j) for j in judged)
                total = total + c.lambda_gan * gan
                logs["G_gan"] = gan.item() / n
                if loss.lambda_feat > 0 and stage_features(judged[0]):  # D shows its stages
                    with torch.no_grad():
                        real_judged = task.disc(task._disc_input(source, out["real"]))
                    feat = sum(feature_matching(real_judged, j) for j in judged)
                    total = total + loss.lambda_feat * feat
                    logs["G_feat"] = feat.item() / n
            if task.vgg is not None:
                from gancompress.models.vgg import vgg_loss
                vgg = sum(vgg_loss(task.vgg, o, reference) for o in outs)
                total = total + loss.lambda_vgg * vgg
                logs["G_vgg"] = vgg.item() / n
        logs["G_recon"] = recon.item() / n
        logs["G_distill"] = distill.item() / n
        return total, logs

    # -- samples and export -----------------------------------------------------------------------
    def sample(self, batch: dict[str, Any]) -> list[list[torch.Tensor]]:
        if self.objective.distills:
            return self.objective.distill_sample(self, batch, self.sampler.shown())
        source = batch["source"]
        columns = [self.teacher.input_picture(source), self.teacher(source)]
        for widths in self.sampler.shown():
            with using_widths(self.student, widths):
                columns.append(self.student(source))
        if "target" in batch and self.paired:
            columns.append(batch["target"])
        return [list(row) for row in zip(*columns)]

    def export_meta(self) -> dict[str, Any]:
        meta = {"kind": self.sampler.kind,
                "teacher": str(Path(self.config.compress.teacher).resolve()),
                "space": self.space.to_meta(), "config": self.config.to_dict()}
        if self.sampler.kind == "supernet":
            meta["sampling"] = self.config.compress.sampling
        if self.stage == "finetune":
            meta["finetuned_config"] = self.config.compress.config
        return meta

    def export(self, out_dir: Path) -> list[Path]:
        path = Path(out_dir) / f"{self.sampler.kind}.pth"
        save_generator(self.student, path, meta=self.export_meta())
        return [path]


# Every training task, by train.task name (TeacherTask picks its objective from the name,
# DistillTask its stage). munit-*: the names of the MUNIT stages in runs of earlier versions.
TASKS: dict[str, type[Task]] = {
    "pix2pix": TeacherTask,
    "cyclegan": TeacherTask,
    "gaugan": TeacherTask,
    "munit": TeacherTask,
    "distill": DistillTask,
    "supernet": DistillTask,
    "finetune": DistillTask,
    "munit-distill": DistillTask,
    "munit-supernet": DistillTask,
    "munit-finetune": DistillTask,
}


def get_task(name: str) -> type[Task]:
    """The task class of train.task = `name`."""
    if name not in TASKS:
        raise UserError(f"unknown task {name!r} (train.task); available: {', '.join(TASKS)}")
    return TASKS[name]


def train(config: Config, out_dir: str | Path, resume: bool = False,
          task: str | type[Task] | None = None, progress: bool | None = None) -> dict[str, Any]:
    """training.loop.train for any registered task (teacher objectives and compression stages):
    train.task (or `task`, a name or a class) is looked up in TASKS here, one layer above the
    loop, which receives the class."""
    from gancompress.training.loop import train as run

    if isinstance(task, str):
        config = config.copy()
        config.train.task = task
    cls = task if isinstance(task, type) else get_task(config.train.task)
    return run(config, out_dir, resume=resume, task=cls, progress=progress)
