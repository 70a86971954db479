"""Building blocks of the GAN objectives (training/objectives.py): the published weight inits,
the configured generator and discriminators, CycleGAN's image pool, and MUNIT's pieces (its
multi-scale discriminator, LSGAN over scales, translator assembly, the informative-sample mask,
the step schedule and weight decay).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from gancompress import distributed
from gancompress.config import Config
from gancompress.errors import UserError
from gancompress.models import GENERATORS, build_generator
from gancompress.models.discriminators import build_discriminator
from gancompress.models.elastic import ElasticGenerator
from gancompress.training.losses import adversarial


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


# -- MUNIT ---------------------------------------------------------------------------------------

def munit_arch(config: Config, in_channels: int, out_channels: int) -> dict[str, Any]:
    """Constructor arguments of a MUNIT generator from config.model.generator_args."""
    return {**config.model.generator_args, "in_channels": in_channels,
            "out_channels": out_channels}


def kaiming_init(module: nn.Module) -> nn.Module:
    """MUNIT's 'kaiming' init: conv / linear weights ~ Kaiming normal (a=0, fan_in), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def ms_discriminator(config: Config, channels: int) -> nn.Module:
    m = config.model
    if m.disc != "ms_image":
        raise UserError(f"MUNIT is trained with the multi-scale image discriminator, but "
                        f"model.disc = {m.disc!r}; set model.disc=ms_image (the munit presets do)")
    unknown = set(m.disc_args) - {"ndf", "n_layers", "norm", "num_scales", "pad_type"}
    if unknown:
        raise UserError(f"model.disc_args has {sorted(unknown)}, which the multi-scale image "
                        f"discriminator does not take (ndf, n_layers, norm, num_scales, pad_type)")
    disc = build_discriminator("ms_image", in_channels=channels, **m.disc_args)
    return init_weights(disc, m.init_std)


def lsgan_sum(logits: list[torch.Tensor], real: bool) -> torch.Tensor:
    """LSGAN summed over the discriminator's scales (the reference sums, not averages)."""
    return sum(adversarial("lsgan", out, real) for out in logits)


def assemble(content_from: ElasticGenerator, rest_from: ElasticGenerator) -> ElasticGenerator:
    """Translator with `content_from`'s content encoder and `rest_from`'s style encoder, decoder
    and MLP (gan-compression assemble.py)."""
    arch = {**rest_from.arch, "in_channels": content_from.arch["in_channels"]}
    model = build_generator("munit", **arch)
    state = {k: v for k, v in rest_from.state_dict().items() if not k.startswith("enc_content.")}
    state.update({k: v for k, v in content_from.state_dict().items()
                  if k.startswith("enc_content.")})
    model.load_state_dict(state)
    return model.to(next(rest_from.parameters()).device)


def informative(*images: torch.Tensor) -> torch.Tensor:
    """Mask of the batch samples in which no image is spatially constant (e.g. a blank edge map).

    MUNIT cannot learn from a constant image: instance norm maps it to zeros and, through the
    ~12 instance / adaptive instance norms between input and output, multiplies the gradient by
    about 1/sqrt(eps) = 316 at each, which overflows float32 and turns every weight into NaN
    after one update. Such samples are left out of the step (the log's "skipped" counts steps
    left with none)."""
    keep = torch.ones(images[0].shape[0], dtype=torch.bool, device=images[0].device)
    for image in images:
        flat = image.flatten(2)
        keep &= (flat.amax(2) - flat.amin(2)).amax(1) > 1e-3
    return keep


def informative_batch(task: Any, x_a: torch.Tensor, x_b: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The pair without its uninformative samples (`informative`), or None to skip the step.

    Several processes decide together: the step is skipped only when no rank has a sample left,
    each rank's share of the gradient is its share of the samples kept over all ranks, and a
    rank left with none still runs its whole batch (every rank must join the gradient
    all-reduce) with share 0, so its gradients are replaced by zeros there."""
    keep = informative(x_a, x_b)
    kept = int(keep.sum())
    if distributed.active():
        total = distributed.sum_number(float(kept))
        if total == 0:
            return None
        task.batch_share = kept / total
        if kept == 0:
            return x_a, x_b
    elif kept == 0:
        return None
    return (x_a, x_b) if kept == len(keep) else (x_a[keep], x_b[keep])


def step_lr(task: Any, step: int) -> None:
    """Published step schedule: lr = initial * lr_gamma ** (step // lr_step), on every optimiser."""
    u = task.config.munit
    factor = u.lr_gamma ** (step // u.lr_step)
    for optimizer in task.optimizers.values():
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor


def add_weight_decay(optimizer: torch.optim.Optimizer, weight_decay: float) -> None:
    for group in optimizer.param_groups:
        group["weight_decay"] = weight_decay


__all__ = ["init_weights", "xavier_init", "kaiming_init", "generator_from_config",
           "discriminator_from_config", "ImagePool", "munit_arch", "ms_discriminator", "lsgan_sum",
           "assemble", "informative", "informative_batch", "step_lr", "add_weight_decay"]
