"""GauGAN (SPADE) teacher training (Park et al. 2019; recipe REFERENCE.md sec. 3,
REFERENCE-FAMILIES.md sec. 5), a task of the one training loop.

    fake = G(one-hot + edges)                      G: SpadeGenerator with spectral norm
    D sees cat(label map, image); fake and real go through it in one batch, then split
    D:  hinge(D(real), real) + hinge(D(fake), fake)   (not halved; averaged over scales)
    G:  -mean(D(fake)) + lambda_feat * FM + lambda_vgg * VGG
        FM  = sum over scales i and stages j < last of L1(D_ij(fake), D_ij(real)) / num_D
        VGG = sum_k w_k L1(VGG_k(fake), VGG_k(real)), VGG19 relu1_1..relu5_1, images in [-1, 1]
TTUR (the preset): G lr 1e-4, D lr 4e-4 (train.lr_disc), Adam betas (0, 0.9). Init: xavier-normal with gain init_std (the SPADE default `xavier`, variance 0.02).
The exported generator has spectral norm folded (gan-compression's remove_spectral_norm.py), so
students and exports see plain weights; the run checkpoint keeps it for exact resume.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from gancompress.config import Config
from gancompress.errors import UserError
from gancompress.imaging import colour_ids
from gancompress.models.checkpoint import save_generator
from gancompress.models.discriminators import build_discriminator
from gancompress.data.segmaps import semantic_channels
from gancompress.models.spade import SpadeGenerator
from gancompress.training.losses import adversarial, feature_matching, gen_loss
from gancompress.training.loop import Task
from gancompress.training.tasks import set_requires_grad


def xavier_init(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """xavier-normal(gain) conv / linear weights (the spectral-norm `weight_orig` where wrapped),
    zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = getattr(m, "weight_orig", None)
            if weight is None:
                weight = m.weight
            if not isinstance(weight, nn.Parameter):
                continue
            nn.init.xavier_normal_(weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


class GauGANTask(Task):
    """Label map -> photo with a SPADE generator and a multiscale discriminator."""

    name = "gaugan"

    def __init__(self, config: Config, device: torch.device):
        super().__init__(config, device)
        m, loss = config.model, config.loss
        if loss.gan_mode != "hinge":
            raise UserError("GauGAN trains with the hinge loss (loss.gan_mode=hinge)")
        nc, edge, dontcare = semantic_channels(config.data)
        args = {"ngf": 64, "upsampling": "more", **m.generator_args, "in_channels": nc,
                "out_channels": 3, "spectral": True, "instance_edge": edge, "dontcare": dontcare}
        generator = SpadeGenerator(**SpadeGenerator.arch_args(args))
        self.generator = self.add_model("generator", xavier_init(generator, m.init_std))
        disc = build_discriminator(m.disc, in_channels=nc + 3, **m.disc_args)
        self.disc = self.add_model("disc", xavier_init(disc, m.init_std))
        self.add_optimizer("generator", self.generator.parameters())
        self.add_optimizer("disc", self.disc.parameters())  # train.lr_disc etc. (TTUR)
        self.vgg = None
        if loss.lambda_vgg > 0:
            from gancompress.models.vgg import load_vgg19
            self.vgg, self.vgg_record = load_vgg19(loss.vgg_weights or None)
            self.vgg.to(self.device)

    def _judge(self, source: torch.Tensor, fake: torch.Tensor, target: torch.Tensor):
        """D on fake and real in one batch; per scale lists of (fake, real) halves."""
        out = self.disc(torch.cat([torch.cat([source, fake], 1), torch.cat([source, target], 1)], 0))
        if isinstance(out, torch.Tensor):
            out = [[out]]
        n = source.shape[0]
        return [[x[:n] for x in scale] for scale in out], [[x[n:] for x in scale] for scale in out]

    def step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        loss_cfg = self.config.loss
        source, target = batch["source"], batch["target"]
        # G first (the reference order: generator update, then discriminator update)
        set_requires_grad(self.disc, False)
        with self.autocast():
            fake = self.generator(source)
            pred_fake, pred_real = self._judge(source, fake, target)
            losses = {"G_gan": gen_loss("hinge", pred_fake)}
            if loss_cfg.lambda_feat > 0:
                losses["G_feat"] = feature_matching(pred_real, pred_fake) * loss_cfg.lambda_feat
            if self.vgg is not None:
                from gancompress.models.vgg import vgg_loss
                losses["G_vgg"] = vgg_loss(self.vgg, fake, target) * loss_cfg.lambda_vgg
        self.optimize("generator", sum(losses.values()))
        set_requires_grad(self.disc, True)
        with self.autocast():
            pred_fake, pred_real = self._judge(source, fake.detach(), target)
            losses["D"] = (adversarial("hinge", pred_real, True)  # not halved (SPADE)
                           + adversarial("hinge", pred_fake, False))
        self.optimize("disc", losses["D"])
        return {k: v.item() for k, v in losses.items()}

    def sample(self, batch: dict[str, Any]) -> list[list[torch.Tensor]]:
        fake = self.generator(batch["source"])
        return [[colour_ids(lab[0]), f, t] for lab, f, t in
                zip(batch["label"], fake, batch["target"])]

    def export(self, out_dir: Path) -> list[Path]:
        path = Path(out_dir) / "generator.pth"
        generator = self.generator.prepare_deploy()  # spectral norm folded
        meta = {"task": "gaugan", "config": self.config.to_dict()}
        if self.vgg is not None:
            meta["vgg_weights"] = self.vgg_record.as_dict()
        save_generator(generator, path, meta=meta)
        return [path]
