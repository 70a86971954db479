"""The GAN objectives of gancompress, one per family of recipes, and teacher training with them.

An objective owns what one recipe trains and how: its models (G/D pairs, image pools, the VGG
of the perceptual loss), its optimiser settings (TTUR through train.lr_disc / beta*_disc,
MUNIT's weight decay and step schedule), `d_loss` and `g_terms`, the published order of the two
phases (`d_first`), and for MUNIT its own distillation terms (style / content / output path,
used by compress/tasks.DistillTask). The update itself (phases, optimiser steps,
requires_grad toggles) is `Task.update` (training/task.py), the only one.

pix2pix (Isola et al. 2017; docs/reference.md sec. 3), D first:
    fake = G(source)
    D:  0.5 * [gan(D(source, target), real) + gan(D(source, fake), fake)]
    G:  gan(D(source, fake), real) + lambda_recon * L1(fake, target)
CycleGAN (Zhu et al. 2017), G first:
    G:  gan(D_t(G_f(s))) + gan(D_s(G_b(t))) + lambda_cycle * [L1(G_b(G_f(s)), s) + L1(G_f(G_b(t)), t)]
        + lambda_cycle * lambda_identity * [L1(G_f(t), t) + L1(G_b(s), s)]
    D:  0.5 * [gan(D(real), real) + gan(D(pool(fake)), fake)] for each domain; the pool returns
        a past fake with probability 1/2 once it holds pool_size images.
GauGAN (Park et al. 2019; docs/families.md sec. 5), G first:
    fake = G(one-hot + edges); D sees cat(label map, image), fake and real in one batch
    G:  -mean(D(fake)) + lambda_feat * FM + lambda_vgg * VGG
    D:  hinge(D(real), real) + hinge(D(fake), fake)   (not halved; averaged over scales)
    TTUR in the presets; xavier-normal init; the export folds spectral norm.
MUNIT (Huang et al. 2018; docs/families.md sec. 6), D first, fresh styles s ~ N(0, I):
    D:  lambda_gan * sum over domains and scales [mean(D(fake)^2) + mean((D(real) - 1)^2)]
    G:  lambda_gan LSGAN + lambda_x image recon + lambda_c content recon + lambda_s style recon
        + lambda_cycle explicit cycle; Adam with weight decay, lr x lr_gamma every lr_step steps
    Distillation (Fast GAN Compression, docs/families.md sec. 6.4), G first: with x_A, x_B,
    on steps with step % munit.style_every != 0 both networks encode the style of x_B and
    L_s = lambda_style * L1(s_S, s_T), else one random style feeds both;
    L_x = lambda_recon * L1(S.decode(c_S, s_S), T.decode(c_T, s_T)),
    L_c = lambda_distill * L1(map(c_S), c_T), LSGAN with a fresh multi-scale D (lambda_gan).
    Every sub-network of the step (sandwich sampling: three) adds its terms.

Teacher training is `TeacherTask` (train.task = pix2pix | cyclegan | gaugan | munit): the
objective OBJECTIVES[train.task] with the loop's Task interface.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancompress.config import Config
from gancompress.data.segmaps import semantic_channels
from gancompress.errors import UserError
from gancompress.imaging import colour_ids
from gancompress.models import build_generator
from gancompress.models.checkpoint import save_generator
from gancompress.models.discriminators import build_discriminator
from gancompress.models.elastic import ElasticGenerator, using_widths
from gancompress.models.spade import SpadeGenerator
from gancompress.training.losses import (adversarial, disc_loss, feature_matching, gen_loss,
                                         reconstruction)
from gancompress.training.parts import (ImagePool, add_weight_decay, assemble,
                                        discriminator_from_config, generator_from_config,
                                        informative_batch, kaiming_init,
                                        lsgan_sum, ms_discriminator, munit_arch, step_lr,
                                        xavier_init)
from gancompress.training.task import Task

Terms = dict[str, torch.Tensor]


class Objective:
    """One GAN recipe: models, optimisers, D loss and G terms (see the module docstring)."""

    name = ""
    data_modes: tuple[str, ...] | None = None  # dataset layouts it learns from (None: any)
    d_first = True                # published order: discriminator phase, then generator phase
    g_optimizer, d_optimizer = "generator", "disc"
    loop_schedule = True          # False: the objective sets its own lr in begin_step
    distills = False              # has its own distillation terms (else DistillTask's generic)
    distill_d_first = True        # order of the distillation phases (the generic path: D first)

    def __init__(self, config: Config):
        self.config = config

    # -- models and optimisers ------------------------------------------------------------------
    def build(self, task: Task) -> None:
        """Create the trained models (task.add_model) and their optimisers."""
        raise NotImplementedError

    def discriminators(self) -> list[nn.Module]:
        raise NotImplementedError

    def add_optimizer(self, task: Task, name: str, params) -> torch.optim.Optimizer:
        return task.add_optimizer(name, params)

    def begin_step(self, task: Task, batch: dict[str, Any], step: int) -> dict[str, Any] | None:
        """The batch to learn from at `step` (None: skip the step)."""
        return batch

    # -- one step -------------------------------------------------------------------------------
    def forward(self, task: Task, batch: dict[str, Any]) -> dict[str, Any]:
        """What both phases use (e.g. the fakes); computed before the first phase."""
        return {}

    def d_loss(self, task: Task, batch: dict[str, Any], out: dict[str, Any]) -> Terms:
        raise NotImplementedError

    def g_terms(self, task: Task, batch: dict[str, Any], out: dict[str, Any]) -> Terms:
        raise NotImplementedError

    # -- samples, export, state -----------------------------------------------------------------
    def sample(self, task: Task, batch: dict[str, Any]) -> list[list[torch.Tensor]]:
        raise NotImplementedError

    def export(self, task: Task, out_dir: Path) -> list[Path]:
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any], device: torch.device) -> None:
        pass

    def _meta(self, **extra: Any) -> dict[str, Any]:
        return {"task": self.name, **extra, "config": self.config.to_dict()}


class Pix2Pix(Objective):
    """Paired image-to-image translation: conditional GAN + L1 to the ground truth."""

    name = "pix2pix"
    data_modes = ("aligned",)  # L1 to the target needs real pairs

    def build(self, task: Task) -> None:
        d = self.config.data
        self.generator = task.add_model("generator", generator_from_config(self.config))
        # pix2pix's D sees the condition and the image together: concat along channels.
        self.disc = task.add_model("disc", discriminator_from_config(
            self.config, d.in_channels + d.out_channels))
        self.add_optimizer(task, "generator", self.generator.parameters())
        self.add_optimizer(task, "disc", self.disc.parameters())

    def discriminators(self) -> list[nn.Module]:
        return [self.disc]

    def forward(self, task, batch):
        with task.autocast():
            return {"fake": self.generator(batch["source"])}

    def d_loss(self, task, batch, out):
        source, mode = batch["source"], self.config.loss.gan_mode
        with task.autocast():
            real = self.disc(torch.cat([source, batch["target"]], 1))
            fake = self.disc(torch.cat([source, out["fake"].detach()], 1))
            return {"D": disc_loss(mode, real, fake)}

    def g_terms(self, task, batch, out):
        loss = self.config.loss
        with task.autocast():
            return {"G_gan": gen_loss(loss.gan_mode, self.disc(torch.cat([batch["source"],
                                                                          out["fake"]], 1))),
                    "G_recon": reconstruction(out["fake"], batch["target"]) * loss.lambda_recon}

    def sample(self, task, batch):
        fake = self.generator(batch["source"])
        return [[s, f, t] for s, f, t in zip(batch["source"], fake, batch["target"])]

    def export(self, task, out_dir):
        path = Path(out_dir) / "generator.pth"
        save_generator(self.generator, path,
                       meta=self._meta(direction=self.config.data.direction))
        return [path]


class CycleGAN(Objective):
    """Unpaired translation: two generators, two discriminators, cycle and identity losses."""

    name = "cyclegan"
    d_first = False
    g_optimizer, d_optimizer = "generators", "discs"

    def build(self, task: Task) -> None:
        config = self.config
        d, loss = config.data, config.loss
        if loss.lambda_identity > 0 and d.in_channels != d.out_channels:
            raise UserError(f"the CycleGAN identity loss needs equal channel counts (data."
                            f"in_channels = {d.in_channels}, data.out_channels = "
                            f"{d.out_channels}); set loss.lambda_identity=0")
        self.forward_gen = task.add_model("generator_forward", generator_from_config(config))
        self.backward_gen = task.add_model("generator_backward", generator_from_config(
            config, in_channels=d.out_channels, out_channels=d.in_channels))
        self.disc_target = task.add_model("disc_target", discriminator_from_config(
            config, d.out_channels))
        self.disc_source = task.add_model("disc_source", discriminator_from_config(
            config, d.in_channels))
        self.add_optimizer(task, "generators", [*self.forward_gen.parameters(),
                                                *self.backward_gen.parameters()])
        self.add_optimizer(task, "discs", [*self.disc_target.parameters(),
                                           *self.disc_source.parameters()])
        seed = config.train.seed
        self.pool_target = ImagePool(loss.pool_size, seed=seed * 2 + 1)
        self.pool_source = ImagePool(loss.pool_size, seed=seed * 2 + 2)

    def discriminators(self) -> list[nn.Module]:
        return [self.disc_target, self.disc_source]

    def forward(self, task, batch):
        with task.autocast():
            fake_target = self.forward_gen(batch["source"])
            cycled_source = self.backward_gen(fake_target)
            fake_source = self.backward_gen(batch["target"])
            cycled_target = self.forward_gen(fake_source)
        return {"fake_target": fake_target, "cycled_source": cycled_source,
                "fake_source": fake_source, "cycled_target": cycled_target}

    def g_terms(self, task, batch, out):
        mode, loss = self.config.loss.gan_mode, self.config.loss
        source, target = batch["source"], batch["target"]
        with task.autocast():
            terms = {
                "G_gan_forward": gen_loss(mode, self.disc_target(out["fake_target"])),
                "G_gan_backward": gen_loss(mode, self.disc_source(out["fake_source"])),
                "cycle_source": reconstruction(out["cycled_source"], source) * loss.lambda_cycle,
                "cycle_target": reconstruction(out["cycled_target"], target) * loss.lambda_cycle,
            }
            if loss.lambda_identity > 0:
                weight = loss.lambda_cycle * loss.lambda_identity
                terms["identity_target"] = weight * reconstruction(self.forward_gen(target),
                                                                    target)
                terms["identity_source"] = weight * reconstruction(self.backward_gen(source),
                                                                    source)
        return terms

    def d_loss(self, task, batch, out):
        mode = self.config.loss.gan_mode
        with task.autocast():
            d_target = disc_loss(mode, self.disc_target(batch["target"]), self.disc_target(
                self.pool_target.query(out["fake_target"])))
            d_source = disc_loss(mode, self.disc_source(batch["source"]), self.disc_source(
                self.pool_source.query(out["fake_source"])))
        return {"D_target": d_target, "D_source": d_source}

    def sample(self, task, batch):
        fake_target = self.forward_gen(batch["source"])
        cycled = self.backward_gen(fake_target)
        fake_source = self.backward_gen(batch["target"])
        return [[s, f, c, t, b] for s, f, c, t, b in
                zip(batch["source"], fake_target, cycled, batch["target"], fake_source)]

    def extra_state(self):
        return {"pool_target": self.pool_target.state_dict(),
                "pool_source": self.pool_source.state_dict()}

    def load_extra_state(self, state, device):
        self.pool_target.load_state_dict(state["pool_target"], device)
        self.pool_source.load_state_dict(state["pool_source"], device)

    def export(self, task, out_dir):
        """generator_AtoB.pth and generator_BtoA.pth, named by the dataset's domains."""
        direction = self.config.data.direction
        reverse = "BtoA" if direction == "AtoB" else "AtoB"
        paths = []
        for gen, name in ((self.forward_gen, direction), (self.backward_gen, reverse)):
            path = Path(out_dir) / f"generator_{name}.pth"
            save_generator(gen, path, meta=self._meta(direction=name))
            paths.append(path)
        return paths


class GauGAN(Objective):
    """Label map -> photo with a SPADE generator and a multiscale discriminator."""

    name = "gaugan"
    d_first = False  # the reference order: generator update, then discriminator update

    def build(self, task: Task) -> None:
        m, loss = self.config.model, self.config.loss
        if loss.gan_mode != "hinge":
            raise UserError("GauGAN trains with the hinge loss (loss.gan_mode=hinge)")
        nc, edge, dontcare = semantic_channels(self.config.data)
        args = {"ngf": 64, "upsampling": "more", **m.generator_args, "in_channels": nc,
                "out_channels": 3, "spectral": True, "instance_edge": edge, "dontcare": dontcare}
        generator = SpadeGenerator(**SpadeGenerator.arch_args(args))
        self.generator = task.add_model("generator", xavier_init(generator, m.init_std))
        disc = build_discriminator(m.disc, in_channels=nc + 3, **m.disc_args)
        self.disc = task.add_model("disc", xavier_init(disc, m.init_std))
        self.add_optimizer(task, "generator", self.generator.parameters())
        self.add_optimizer(task, "disc", self.disc.parameters())  # train.lr_disc etc. (TTUR)
        self.vgg = None
        if loss.lambda_vgg > 0:
            from gancompress.models.vgg import load_vgg19
            self.vgg, self.vgg_record = load_vgg19(loss.vgg_weights or None)
            self.vgg.to(task.device)

    def discriminators(self) -> list[nn.Module]:
        return [self.disc]

    def _judge(self, source: torch.Tensor, fake: torch.Tensor, target: torch.Tensor):
        """D on fake and real in one batch; per scale lists of (fake, real) halves."""
        out = self.disc(torch.cat([torch.cat([source, fake], 1),
                                   torch.cat([source, target], 1)], 0))
        if isinstance(out, torch.Tensor):
            out = [[out]]
        n = source.shape[0]
        return [[x[:n] for x in scale] for scale in out], [[x[n:] for x in scale] for scale in out]

    def forward(self, task, batch):
        with task.autocast():
            return {"fake": self.generator(batch["source"])}

    def g_terms(self, task, batch, out):
        loss = self.config.loss
        with task.autocast():
            pred_fake, pred_real = self._judge(batch["source"], out["fake"], batch["target"])
            terms = {"G_gan": gen_loss("hinge", pred_fake)}
            if loss.lambda_feat > 0:
                terms["G_feat"] = feature_matching(pred_real, pred_fake) * loss.lambda_feat
            if self.vgg is not None:
                from gancompress.models.vgg import vgg_loss
                terms["G_vgg"] = vgg_loss(self.vgg, out["fake"], batch["target"]) * loss.lambda_vgg
        return terms

    def d_loss(self, task, batch, out):
        with task.autocast():
            pred_fake, pred_real = self._judge(batch["source"], out["fake"].detach(),
                                               batch["target"])
            return {"D": adversarial("hinge", pred_real, True)  # not halved (SPADE)
                    + adversarial("hinge", pred_fake, False)}

    def sample(self, task, batch):
        fake = self.generator(batch["source"])
        return [[colour_ids(lab[0]), f, t] for lab, f, t in
                zip(batch["label"], fake, batch["target"])]

    def export(self, task, out_dir):
        path = Path(out_dir) / "generator.pth"
        generator = self.generator.prepare_deploy()  # spectral norm folded
        meta = {"task": "gaugan", "config": self.config.to_dict()}
        if self.vgg is not None:
            meta["vgg_weights"] = self.vgg_record.as_dict()
        save_generator(generator, path, meta=meta)
        return [path]


class Munit(Objective):
    """MUNIT on unpaired data (batch["source"] = A, batch["target"] = B); its own distillation."""

    name = "munit"
    g_optimizer, d_optimizer = "generators", "discs"
    loop_schedule = False  # the published step schedule, from the step index (begin_step)
    distills = True
    distill_d_first = False  # distillation: G stepped, then D (the published order)

    def build(self, task: Task) -> None:
        config, d = self.config, self.config.data
        if config.model.generator != "munit":
            raise UserError(f"train.task=munit trains MUNIT generators, but model.generator = "
                            f"{config.model.generator!r}; set model.generator=munit")
        self.gen_a = task.add_model("gen_a", kaiming_init(build_generator(
            "munit", **munit_arch(config, d.in_channels, d.in_channels))))
        self.gen_b = task.add_model("gen_b", kaiming_init(build_generator(
            "munit", **munit_arch(config, d.out_channels, d.out_channels))))
        self.dis_a = task.add_model("dis_a", ms_discriminator(config, d.in_channels))
        self.dis_b = task.add_model("dis_b", ms_discriminator(config, d.out_channels))
        self.add_optimizer(task, "generators", [*self.gen_a.parameters(),
                                                *self.gen_b.parameters()])
        self.add_optimizer(task, "discs", [*self.dis_a.parameters(), *self.dis_b.parameters()])

    def discriminators(self) -> list[nn.Module]:
        return [self.dis_a, self.dis_b]

    def add_optimizer(self, task, name, params):
        optimizer = task.add_optimizer(name, params)
        add_weight_decay(optimizer, self.config.munit.weight_decay)
        return optimizer

    def begin_step(self, task, batch, step):
        if "target" not in batch:
            raise UserError("MUNIT needs images of two domains (B-domain styles and real "
                            "images): use an unaligned folder (trainA/, trainB/) or an aligned "
                            "one, not a single folder")
        step_lr(task, step)
        kept = informative_batch(task, batch["source"], batch["target"])
        if kept is None:  # constant images overflow the gradients
            return None
        return {**batch, "source": kept[0], "target": kept[1]}

    def _styles(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.gen_a.random_style(n), self.gen_b.random_style(n)

    def d_loss(self, task, batch, out):
        # on translations with fresh random styles (no gradient to the generators)
        x_a, x_b, u = batch["source"], batch["target"], self.config.munit
        s_a, s_b = self._styles(x_a.shape[0])
        with torch.no_grad(), task.autocast():
            x_ba = self.gen_a.decode(self.gen_b.encode(x_b), s_a)
            x_ab = self.gen_b.decode(self.gen_a.encode(x_a), s_b)
        with task.autocast():
            return {"D": u.lambda_gan * (
                lsgan_sum(self.dis_a(x_ba), False) + lsgan_sum(self.dis_a(x_a), True)
                + lsgan_sum(self.dis_b(x_ab), False) + lsgan_sum(self.dis_b(x_b), True))}

    def g_terms(self, task, batch, out):
        x_a, x_b, u = batch["source"], batch["target"], self.config.munit
        s_a, s_b = self._styles(x_a.shape[0])  # new random styles
        a, b = self.gen_a, self.gen_b
        with task.autocast():
            c_a, s_a_own = a.encode(x_a), a.style_of(x_a)
            c_b, s_b_own = b.encode(x_b), b.style_of(x_b)
            x_ba, x_ab = a.decode(c_b, s_a), b.decode(c_a, s_b)
            c_b_back, s_a_back = a.encode(x_ba), a.style_of(x_ba)
            c_a_back, s_b_back = b.encode(x_ab), b.style_of(x_ab)
            terms = {
                "G_gan": u.lambda_gan * (lsgan_sum(self.dis_a(x_ba), True)
                                         + lsgan_sum(self.dis_b(x_ab), True)),
                "recon_x": u.lambda_x * (F.l1_loss(a.decode(c_a, s_a_own), x_a)
                                         + F.l1_loss(b.decode(c_b, s_b_own), x_b)),
                "recon_c": u.lambda_c * (F.l1_loss(c_a_back, c_a) + F.l1_loss(c_b_back, c_b)),
                "recon_s": u.lambda_s * (F.l1_loss(s_a_back, s_a) + F.l1_loss(s_b_back, s_b)),
            }
            if u.lambda_cycle > 0:
                terms["cycle"] = u.lambda_cycle * (F.l1_loss(a.decode(c_a_back, s_a_own), x_a)
                                                   + F.l1_loss(b.decode(c_b_back, s_b_own), x_b))
        return terms

    def translators(self) -> dict[str, ElasticGenerator]:
        """The two one-directional translators, named by the data's direction."""
        forward = self.config.data.direction
        backward = "BtoA" if forward == "AtoB" else "AtoB"
        return {forward: assemble(self.gen_a, self.gen_b),
                backward: assemble(self.gen_b, self.gen_a)}

    def sample(self, task, batch):
        """Per row: A, two A->B translations with random styles, A->B in the style of the row's
        B image, that B image, and B->A with a random style."""
        x_a, x_b = batch["source"], batch["target"]
        c_a = self.gen_a.encode(x_a)
        gen = torch.Generator().manual_seed(0)  # fixed styles: grids comparable across steps
        styles = [self.gen_b.random_style(len(x_a), gen) for _ in range(2)]
        columns = [x_a, *(self.gen_b.decode(c_a, s) for s in styles),
                   self.gen_b.decode(c_a, self.gen_b.style_of(x_b)), x_b,
                   self.gen_a.decode(self.gen_b.encode(x_b),
                                     self.gen_a.random_style(len(x_b), gen))]
        return [list(row) for row in zip(*columns)]

    def export(self, task, out_dir):
        paths = []
        for direction, translator in self.translators().items():
            path = Path(out_dir) / f"generator_{direction}.pth"
            save_generator(translator, path, meta=self._meta(direction=direction))
            paths.append(path)
        return paths

    # -- distillation (compress/tasks.DistillTask) ------------------------------------------------
    def student_disc(self, task: Task, out_channels: int) -> nn.Module | None:
        """The fresh multi-scale D of the distillation (None when compress.lambda_gan is 0)."""
        if self.config.compress.lambda_gan <= 0:
            return None
        disc = task.add_model("disc", ms_discriminator(self.config, out_channels))
        self.add_optimizer(task, "disc", disc.parameters())
        return disc

    def distill_forward(self, task, batch, step, widths) -> dict[str, Any]:
        """Teacher and student(s) at each of `widths` on the step's style."""
        x_a, x_b = batch["source"], batch["target"]
        style_step = step % self.config.munit.style_every != 0
        teacher, student = task.teacher, task.student
        with torch.no_grad(), task.autocast():
            content_t = teacher.encode(x_a)
            style_t = teacher.style_of(x_b) if style_step else teacher.random_style(len(x_a))
            fake_t = teacher.decode(content_t, style_t)
        subnets = []
        with task.autocast():
            for w in widths:
                with using_widths(student, w):
                    content_s = student.encode(x_a)
                    style_s = student.style_of(x_b) if style_step else style_t
                    subnets.append((content_s, style_s, student.decode(content_s, style_s)))
        return {"style_step": style_step, "teacher": (content_t, style_t, fake_t),
                "subnets": subnets}

    def distill_g_loss(self, task, batch, out) -> tuple[torch.Tensor, dict[str, float]]:
        u, c, lambda_x = self.config.munit, self.config.compress, self.config.loss.lambda_recon
        content_t, style_t, fake_t = out["teacher"]
        subnets = out["subnets"]
        n = len(subnets)
        with task.autocast():
            terms = {"G_recon": sum(lambda_x * F.l1_loss(f, fake_t) for _, _, f in subnets),
                     "G_content": sum(c.lambda_distill * F.l1_loss(task.mappings([cs])[0],
                                                                   content_t)
                                      for cs, _, _ in subnets)}
            if out["style_step"]:
                terms["G_style"] = sum(u.lambda_style * F.l1_loss(ss, style_t)
                                       for _, ss, _ in subnets)
            if task.disc is not None:
                terms["G_gan"] = sum(c.lambda_gan * lsgan_sum(task.disc(f), True)
                                     for _, _, f in subnets)
        return sum(terms.values()), {k: v.item() / n for k, v in terms.items()}

    def distill_d_loss(self, task, batch, out) -> tuple[torch.Tensor, dict[str, float]]:
        c, fakes = self.config.compress, [f for _, _, f in out["subnets"]]
        with task.autocast():
            loss = c.lambda_gan * (sum(lsgan_sum(task.disc(f.detach()), False) for f in fakes)
                                   / len(fakes) + lsgan_sum(task.disc(batch["target"]), True))
        return loss, {"D": loss.item()}

    def distill_sample(self, task, batch, widths) -> list[list[torch.Tensor]]:
        """Per row: A, teacher and student(s) with two fixed random styles, and the B image."""
        x_a = batch["source"]
        gen = torch.Generator().manual_seed(0)
        styles = [task.teacher.random_style(len(x_a), gen) for _ in range(2)]
        columns = [x_a] + [task.teacher(x_a, s) for s in styles]
        for w in widths:
            with using_widths(task.student, w):
                columns += [task.student(x_a, s) for s in styles]
        if "target" in batch:
            columns.append(batch["target"])
        return [list(row) for row in zip(*columns)]


OBJECTIVES: dict[str, type[Objective]] = {
    "pix2pix": Pix2Pix,
    "cyclegan": CycleGAN,
    "gaugan": GauGAN,
    "munit": Munit,
}


class TeacherTask(Task):
    """Teacher training: the objective OBJECTIVES[train.task] (or `objective`) as a loop task."""

    @classmethod
    def data_modes_for(cls, config: Config) -> tuple[str, ...] | None:
        objective = OBJECTIVES.get(config.train.task)
        return objective.data_modes if objective is not None else None

    def __init__(self, config: Config, device: torch.device, objective: str | None = None):
        super().__init__(config, device)
        name = objective or config.train.task
        if name not in OBJECTIVES:
            raise UserError(f"no teacher objective {name!r}; available: {', '.join(OBJECTIVES)}")
        self.objective = OBJECTIVES[name](config)
        self.name = name
        self.data_modes = self.objective.data_modes
        self.objective.build(self)

    def __getattr__(self, name: str) -> Any:
        # the objective's models and helpers read as the task's (task.generator, task.gen_a)
        objective = self.__dict__.get("objective")
        if objective is None:
            raise AttributeError(name)
        return getattr(objective, name)

    def step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        o = self.objective
        batch = o.begin_step(self, batch, step)
        if batch is None:
            return {"skipped": 1.0}
        out = o.forward(self, batch)

        def d_phase():
            terms = o.d_loss(self, batch, out)
            return sum(terms.values()), {k: v.item() for k, v in terms.items()}

        def g_phase():
            terms = o.g_terms(self, batch, out)
            return sum(terms.values()), {k: v.item() for k, v in terms.items()}

        return self.update(g_phase, d_phase, o.discriminators(), o.d_first,
                           o.g_optimizer, o.d_optimizer)

    def set_lr(self, factor: float) -> None:
        if self.objective.loop_schedule:
            super().set_lr(factor)

    def sample(self, batch: dict[str, Any]) -> list[list[torch.Tensor]]:
        return self.objective.sample(self, batch)

    def export(self, out_dir: Path) -> list[Path]:
        return self.objective.export(self, out_dir)

    def extra_state(self) -> dict[str, Any]:
        return self.objective.extra_state()

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if state:
            self.objective.load_extra_state(state, self.device)


__all__ = ["Objective", "OBJECTIVES", "Pix2Pix", "CycleGAN", "GauGAN", "Munit", "TeacherTask"]
