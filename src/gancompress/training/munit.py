"""The MUNIT teacher task (Huang et al. 2018; recipe REFERENCE-FAMILIES.md sec. 6 and NVlabs
MUNIT_Trainer) for the loop in training/loop.py.

Two auto-encoders, one per domain (each a `MunitGenerator` whose content encoder, style encoder,
decoder and MLP all belong to that domain), and one multi-scale image discriminator per domain.
Per step, with x_a, x_b unpaired images and s_a, s_b ~ N(0, I) fresh style codes:
    D:  lambda_gan * sum over domains and scales of [mean(D(fake)^2) + mean((D(real) - 1)^2)]
        with fakes x_ba = dec_a(c_b, s_a), x_ab = dec_b(c_a, s_b) (no gradient to G)
    G:  lambda_gan   * sum over scales mean((D(x_ba) - 1)^2) + same for x_ab   (LSGAN)
      + lambda_x     * [L1(dec_a(c_a, s'_a), x_a) + L1(dec_b(c_b, s'_b), x_b)]  image recon
      + lambda_c     * [L1(enc_c_b(x_ab), c_a) + L1(enc_c_a(x_ba), c_b)]   content recon
      + lambda_s     * [L1(enc_s_a(x_ba), s_a) + L1(enc_s_b(x_ab), s_b)]    style recon
      + lambda_cycle * [L1(dec_a(c(x_ab), s'_a), x_a) + ...]                 explicit cycle
    with c_a = enc_c_a(x_a), s'_a = enc_s_a(x_a) (and likewise for b). D is updated first,
    then G, as the reference trainer does.
Optimiser: Adam(lr, (beta1, beta2), weight_decay) for both, lr x lr_gamma every lr_step steps
(the published step schedule, applied by the task itself from the step index, so a resumed
run follows it exactly); init Kaiming-normal (fan_in) for the generators and N(0, 0.02) for the
discriminators, biases zero. All randomness is drawn from the global torch RNG (saved by the
loop), so kill / resume is exact.
Exports generator_AtoB.pth (content encoder of A, style encoder / decoder / MLP of B: the
gan-compression assembled translator) and generator_BtoA.pth.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancompress.config import Config
from gancompress.errors import UserError
from gancompress.models import build_generator
from gancompress.models.checkpoint import save_generator
from gancompress.models.discriminators import build_discriminator
from gancompress.models.elastic import ElasticGenerator
from gancompress.training import distributed
from gancompress.training.loop import Task
from gancompress.training.losses import adversarial
from gancompress.training.tasks import init_weights, set_requires_grad


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


def informative_batch(task: Task, x_a: torch.Tensor, x_b: torch.Tensor
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


def step_lr(task: Task, step: int) -> None:
    """Published step schedule: lr = initial * lr_gamma ** (step // lr_step), on every optimiser."""
    u = task.config.munit
    factor = u.lr_gamma ** (step // u.lr_step)
    for optimizer in task.optimizers.values():
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor


def add_weight_decay(optimizer: torch.optim.Optimizer, weight_decay: float) -> None:
    for group in optimizer.param_groups:
        group["weight_decay"] = weight_decay


class MunitTask(Task):
    """MUNIT teacher training on unpaired data (batch["source"] = A, batch["target"] = B)."""

    name = "munit"

    def __init__(self, config: Config, device: torch.device):
        super().__init__(config, device)
        d = config.data
        if config.model.generator != "munit":
            raise UserError(f"train.task=munit trains MUNIT generators, but model.generator = "
                            f"{config.model.generator!r}; set model.generator=munit")
        self.gen_a = self.add_model("gen_a", kaiming_init(build_generator(
            "munit", **munit_arch(config, d.in_channels, d.in_channels))))
        self.gen_b = self.add_model("gen_b", kaiming_init(build_generator(
            "munit", **munit_arch(config, d.out_channels, d.out_channels))))
        self.dis_a = self.add_model("dis_a", ms_discriminator(config, d.in_channels))
        self.dis_b = self.add_model("dis_b", ms_discriminator(config, d.out_channels))
        wd = config.munit.weight_decay
        add_weight_decay(self.add_optimizer("generators", [*self.gen_a.parameters(),
                                                           *self.gen_b.parameters()]), wd)
        add_weight_decay(self.add_optimizer("discs", [*self.dis_a.parameters(),
                                                      *self.dis_b.parameters()]), wd)

    def set_lr(self, factor: float) -> None:
        pass  # the step schedule is applied in step(), from the step index

    def _styles(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.gen_a.random_style(batch), self.gen_b.random_style(batch))

    def step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        if "target" not in batch:
            raise UserError("MUNIT needs images of two domains: use an unaligned folder "
                            "(trainA/, trainB/) or an aligned one, not a single folder")
        step_lr(self, step)
        u = self.config.munit
        x_a, x_b = batch["source"], batch["target"]
        kept = informative_batch(self, x_a, x_b)
        if kept is None:
            return {"skipped": 1.0}
        x_a, x_b = kept
        discs = [self.dis_a, self.dis_b]

        # D first, on translations with fresh random styles (no gradient to the generators)
        s_a, s_b = self._styles(x_a.shape[0])
        with torch.no_grad(), self.autocast():
            x_ba = self.gen_a.decode(self.gen_b.encode(x_b), s_a)
            x_ab = self.gen_b.decode(self.gen_a.encode(x_a), s_b)
        set_requires_grad(discs, True)
        with self.autocast():
            loss_d = u.lambda_gan * (
                lsgan_sum(self.dis_a(x_ba), False) + lsgan_sum(self.dis_a(x_a), True)
                + lsgan_sum(self.dis_b(x_ab), False) + lsgan_sum(self.dis_b(x_b), True))
        self.optimize("discs", loss_d)

        # G, with new random styles
        set_requires_grad(discs, False)
        s_a, s_b = self._styles(x_a.shape[0])
        with self.autocast():
            c_a, s_a_own = self.gen_a.encode(x_a), self.gen_a.style_of(x_a)
            c_b, s_b_own = self.gen_b.encode(x_b), self.gen_b.style_of(x_b)
            x_ba = self.gen_a.decode(c_b, s_a)
            x_ab = self.gen_b.decode(c_a, s_b)
            c_b_back, s_a_back = self.gen_a.encode(x_ba), self.gen_a.style_of(x_ba)
            c_a_back, s_b_back = self.gen_b.encode(x_ab), self.gen_b.style_of(x_ab)
            losses = {
                "G_gan": u.lambda_gan * (lsgan_sum(self.dis_a(x_ba), True)
                                         + lsgan_sum(self.dis_b(x_ab), True)),
                "recon_x": u.lambda_x * (F.l1_loss(self.gen_a.decode(c_a, s_a_own), x_a)
                                         + F.l1_loss(self.gen_b.decode(c_b, s_b_own), x_b)),
                "recon_c": u.lambda_c * (F.l1_loss(c_a_back, c_a) + F.l1_loss(c_b_back, c_b)),
                "recon_s": u.lambda_s * (F.l1_loss(s_a_back, s_a) + F.l1_loss(s_b_back, s_b)),
            }
            if u.lambda_cycle > 0:
                losses["cycle"] = u.lambda_cycle * (
                    F.l1_loss(self.gen_a.decode(c_a_back, s_a_own), x_a)
                    + F.l1_loss(self.gen_b.decode(c_b_back, s_b_own), x_b))
        self.optimize("generators", sum(losses.values()))
        set_requires_grad(discs, True)
        return {"D": loss_d.item(), **{k: v.item() for k, v in losses.items()}}

    def translators(self) -> dict[str, ElasticGenerator]:
        """The two one-directional translators, named by the data's direction."""
        forward = self.config.data.direction
        backward = "BtoA" if forward == "AtoB" else "AtoB"
        return {forward: assemble(self.gen_a, self.gen_b),
                backward: assemble(self.gen_b, self.gen_a)}

    def sample(self, batch: dict[str, Any]) -> list[list[torch.Tensor]]:
        """Per row: A, two A->B translations with random styles, A->B in the style of the row's
        B image, that B image, and B->A with a random style."""
        x_a, x_b = batch["source"], batch["target"]
        c_a = self.gen_a.encode(x_a)
        gen = torch.Generator().manual_seed(0)  # fixed styles: grids comparable across steps
        styles = [self.gen_b.random_style(len(x_a), gen) for _ in range(2)]
        columns = [x_a, *(self.gen_b.decode(c_a, s) for s in styles),
                   self.gen_b.decode(c_a, self.gen_b.style_of(x_b)), x_b,
                   self.gen_a.decode(self.gen_b.encode(x_b), self.gen_a.random_style(len(x_b), gen))]
        return [list(row) for row in zip(*columns)]

    def export(self, out_dir: Path) -> list[Path]:
        paths = []
        for direction, translator in self.translators().items():
            path = Path(out_dir) / f"generator_{direction}.pth"
            save_generator(translator, path, meta={"task": "munit", "direction": direction,
                                                   "config": self.config.to_dict()})
            paths.append(path)
        return paths
