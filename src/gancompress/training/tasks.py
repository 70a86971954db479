"""Teacher-training tasks for the loop in train.py: pix2pix (paired) and CycleGAN (unpaired).

pix2pix (Isola et al. 2017; recipe REFERENCE.md sec. 3)
    fake = G(source)
    D:  0.5 * [gan(D(source, target), real) + gan(D(source, fake), fake)]
    G:  gan(D(source, fake), real) + lambda_recon * L1(fake, target)
CycleGAN (Zhu et al. 2017)
    forward G_f: source -> target domain, backward G_b: target -> source domain
    G:  gan(D_t(G_f(s))) + gan(D_s(G_b(t)))
        + lambda_cycle * [L1(G_b(G_f(s)), s) + L1(G_f(G_b(t)), t)]
        + lambda_cycle * lambda_identity * [L1(G_f(t), t) + L1(G_b(s), s)]
    D:  0.5 * [gan(D(real), real) + gan(D(pool(fake)), fake)] for each domain; the pool returns
        a past fake with probability 1/2 once it holds pool_size images.
Both: generators from gancompress.models (the first registered family by default, `model.generator_args.conv=separable`
for the mobile teacher), PatchGAN discriminators, N(0, init_std) init, Adam.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from gancompress.config import Config
from gancompress.errors import UserError
from gancompress.models import GENERATORS, build_generator
from gancompress.models.checkpoint import save_generator
from gancompress.models.discriminators import build_discriminator
from gancompress.training.loop import Task
from gancompress.training.losses import disc_loss, gen_loss, reconstruction


def init_weights(module: nn.Module, std: float = 0.02) -> nn.Module:
    """Published init: conv / linear weights ~ N(0, std), biases 0; affine BatchNorm ~ N(1, std)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module


def generator_from_config(config: Config, in_channels: int | None = None,
                          out_channels: int | None = None) -> nn.Module:
    """The generator described by config.model (initialised), e.g. the teacher to train."""
    m, d = config.model, config.data
    family = m.generator or next(iter(GENERATORS))
    args = {"in_channels": in_channels or d.in_channels,
            "out_channels": out_channels or d.out_channels, **m.generator_args}
    model = build_generator(family, **args)
    if d.preprocess != "none":  # fail now, not at the first batch, if the crop does not fit
        model.check_size((d.crop_size, d.crop_size))
    return init_weights(model, m.init_std)


def discriminator_from_config(config: Config, in_channels: int) -> nn.Module:
    m = config.model
    disc = build_discriminator(m.disc, in_channels=in_channels, **m.disc_args)
    return init_weights(disc, m.init_std)


def set_requires_grad(models: nn.Module | list[nn.Module], flag: bool) -> None:
    """Freeze D while G is updated (its gradients would be wasted work)."""
    for model in models if isinstance(models, list) else [models]:
        for p in model.parameters():
            p.requires_grad_(flag)


class ImagePool:
    """Buffer of past fakes shown to D (Shrivastava et al. 2017), as CycleGAN uses.

    Randomness comes from the pool's own generator, saved with the images for exact resume.
    """

    def __init__(self, size: int, seed: int = 0):
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) fakes -> (B, C, H, W): each one, or with prob. 1/2 a stored older fake."""
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator).item() > 0.5:
                index = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict[str, Any]:
        images = torch.cat(self.images).cpu() if self.images else torch.empty(0)
        return {"images": images, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        images = state["images"]
        self.images = [x.unsqueeze(0).to(device) for x in images] if images.numel() else []
        self.generator.set_state(state["generator"])


class Pix2PixTask(Task):
    """Paired image-to-image translation: conditional GAN + L1 to the ground truth."""

    name = "pix2pix"
    data_modes = ("aligned",)  # L1 to the target needs real pairs

    def __init__(self, config: Config, device: torch.device):
        super().__init__(config, device)
        d = config.data
        self.generator = self.add_model("generator", generator_from_config(config))
        # pix2pix's D sees the condition and the image together: concat along channels.
        self.disc = self.add_model("disc", discriminator_from_config(
            config, d.in_channels + d.out_channels))
        self.add_optimizer("generator", self.generator.parameters())
        self.add_optimizer("disc", self.disc.parameters())

    def step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        mode, loss_cfg = self.config.loss.gan_mode, self.config.loss
        source, target = batch["source"], batch["target"]
        with self.autocast():
            fake = self.generator(source)

        set_requires_grad(self.disc, True)
        with self.autocast():
            real_logits = self.disc(torch.cat([source, target], 1))
            fake_logits = self.disc(torch.cat([source, fake.detach()], 1))
            loss_disc = disc_loss(mode, real_logits, fake_logits)
        self.optimize("disc", loss_disc)

        set_requires_grad(self.disc, False)
        with self.autocast():
            loss_gan = gen_loss(mode, self.disc(torch.cat([source, fake], 1)))
            loss_recon = reconstruction(fake, target) * loss_cfg.lambda_recon
        self.optimize("generator", loss_gan + loss_recon)
        set_requires_grad(self.disc, True)
        return {"D": loss_disc.item(), "G_gan": loss_gan.item(), "G_recon": loss_recon.item()}

    def sample(self, batch: dict[str, Any]) -> list[list[torch.Tensor]]:
        fake = self.generator(batch["source"])
        return [[s, f, t] for s, f, t in zip(batch["source"], fake, batch["target"])]

    def export(self, out_dir: Path) -> list[Path]:
        path = Path(out_dir) / "generator.pth"
        save_generator(self.generator, path, meta={
            "task": "pix2pix", "direction": self.config.data.direction,
            "config": self.config.to_dict()})
        return [path]


class CycleGANTask(Task):
    """Unpaired translation with two generators, two discriminators, cycle and identity losses."""

    name = "cyclegan"

    def __init__(self, config: Config, device: torch.device):
        super().__init__(config, device)
        d, loss = config.data, config.loss
        if loss.lambda_identity > 0 and d.in_channels != d.out_channels:
            raise UserError(f"the CycleGAN identity loss needs equal channel counts (data."
                            f"in_channels = {d.in_channels}, data.out_channels = "
                            f"{d.out_channels}); set loss.lambda_identity=0")
        self.forward_gen = self.add_model("generator_forward", generator_from_config(config))
        self.backward_gen = self.add_model("generator_backward", generator_from_config(
            config, in_channels=d.out_channels, out_channels=d.in_channels))
        self.disc_target = self.add_model("disc_target", discriminator_from_config(
            config, d.out_channels))
        self.disc_source = self.add_model("disc_source", discriminator_from_config(
            config, d.in_channels))
        self.add_optimizer("generators", [*self.forward_gen.parameters(),
                                          *self.backward_gen.parameters()])
        self.add_optimizer("discs", [*self.disc_target.parameters(),
                                     *self.disc_source.parameters()])
        seed = config.train.seed
        self.pool_target = ImagePool(loss.pool_size, seed=seed * 2 + 1)
        self.pool_source = ImagePool(loss.pool_size, seed=seed * 2 + 2)

    def step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        mode, loss_cfg = self.config.loss.gan_mode, self.config.loss
        source, target = batch["source"], batch["target"]
        discs = [self.disc_target, self.disc_source]
        with self.autocast():
            fake_target = self.forward_gen(source)
            cycled_source = self.backward_gen(fake_target)
            fake_source = self.backward_gen(target)
            cycled_target = self.forward_gen(fake_source)

        set_requires_grad(discs, False)
        with self.autocast():
            losses = {
                "G_gan_forward": gen_loss(mode, self.disc_target(fake_target)),
                "G_gan_backward": gen_loss(mode, self.disc_source(fake_source)),
                "cycle_source": reconstruction(cycled_source, source) * loss_cfg.lambda_cycle,
                "cycle_target": reconstruction(cycled_target, target) * loss_cfg.lambda_cycle,
            }
            if loss_cfg.lambda_identity > 0:
                weight = loss_cfg.lambda_cycle * loss_cfg.lambda_identity
                losses["identity_target"] = weight * reconstruction(self.forward_gen(target),
                                                                     target)
                losses["identity_source"] = weight * reconstruction(self.backward_gen(source),
                                                                     source)
        self.optimize("generators", sum(losses.values()))

        set_requires_grad(discs, True)
        with self.autocast():
            losses["D_target"] = disc_loss(mode, self.disc_target(target),
                                           self.disc_target(self.pool_target.query(fake_target)))
            losses["D_source"] = disc_loss(mode, self.disc_source(source),
                                           self.disc_source(self.pool_source.query(fake_source)))
        self.optimize("discs", losses["D_target"] + losses["D_source"])
        return {k: v.item() for k, v in losses.items()}

    def sample(self, batch: dict[str, Any]) -> list[list[torch.Tensor]]:
        fake_target = self.forward_gen(batch["source"])
        cycled = self.backward_gen(fake_target)
        fake_source = self.backward_gen(batch["target"])
        return [[s, f, c, t, b] for s, f, c, t, b in
                zip(batch["source"], fake_target, cycled, batch["target"], fake_source)]

    def extra_state(self) -> dict[str, Any]:
        return {"pool_target": self.pool_target.state_dict(),
                "pool_source": self.pool_source.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.pool_target.load_state_dict(state["pool_target"], self.device)
        self.pool_source.load_state_dict(state["pool_source"], self.device)

    def export(self, out_dir: Path) -> list[Path]:
        """generator_AtoB.pth and generator_BtoA.pth, named by the dataset's domains."""
        direction = self.config.data.direction
        reverse = "BtoA" if direction == "AtoB" else "AtoB"
        paths = []
        for gen, name in ((self.forward_gen, direction), (self.backward_gen, reverse)):
            path = Path(out_dir) / f"generator_{name}.pth"
            save_generator(gen, path, meta={"task": "cyclegan", "direction": name,
                                            "config": self.config.to_dict()})
            paths.append(path)
        return paths
