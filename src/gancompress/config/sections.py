"""The sections of the configuration: one dataclass per concern (`data`, `model`, `loss`,
`train`, `compress`, `munit`), each field declared with `option()` (help text, choices, range,
whether it may change on --resume, whether it is a path, the typed entries of a mapping).

Extending: a new section is a `@dataclass class DistillConfig` with defaults, one entry in
`SECTIONS` and one line in `Config` (schema.py): `distill: DistillConfig = section(DistillConfig)`.
Overrides, JSON round trip, validation of choices and --dry-run pick it up with no other change.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gancompress.config.values import check_number, convert
from gancompress.errors import UserError


def option(default: Any, help: str = "", choices: tuple | None = None, runtime: bool = False,
           minimum: float | None = None, maximum: float | None = None, path: bool = False,
           entries: tuple[str, ...] | None = None,
           entry: Callable[[str, Any, bool], Any] | None = None,
           recorded: str | None = None) -> Any:
    """A config field with documentation.

    choices   allowed values (checked by `validate`)
    runtime   True if changing it cannot change the trained weights (paths, logging, device...),
              so it may differ when a run is resumed
    minimum   lowest allowed value for numbers
    maximum   highest allowed value for numbers (numbers without one are still bounded by
              MAX_INT / must be finite: NaN and inf are never valid settings)
    path      a file or folder path: stored absolute (`absolute_paths`), so a run folder
              resumes from any working directory
    entries   a mapping field with these names only (others are errors naming them)
    entry     entry(key, value, from_text) -> the checked value of one entry of a mapping field
              (for entries with a shape, such as compress.epochs' [epochs, decay] pairs); a
              mapping given whole is merged into the current one entry by entry
    recorded  the program sets this key and records it (a run's config.json keeps it), it never
              takes it: an override of it is refused, and this text says what to set instead
    """
    meta = {"help": help, "choices": choices, "runtime": runtime, "minimum": minimum,
            "maximum": maximum, "path": path, "entries": entries, "entry": entry,
            "recorded": recorded}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def section(cls: type) -> Any:
    """A sub-section field of `Config` (a dataclass instance built with its defaults)."""
    return field(default_factory=cls)


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------

@dataclass
class DataConfig:
    """Where the images are and how they are turned into tensors (gancompress.data)."""
    root: str = option("", "dataset folder (set by --data)", runtime=True, path=True)
    mode: str = option("auto", "folder layout (labels = label maps -> photos, for GauGAN)",
                       ("auto", "aligned", "unaligned", "single", "labels"))
    direction: str = option("AtoB", "which side is the input", ("AtoB", "BtoA"))
    preprocess: str = option("resize_and_crop", "training-time resize/crop",
                             ("resize_and_crop", "scale_width", "none"))
    load_size: int = option(286, "resize to this size before cropping", minimum=4,
                            maximum=16384)
    crop_size: int = option(256, "training crop (and evaluation resize) size", minimum=4,
                            maximum=16384)
    flip: bool = option(True, "random horizontal flip while training (same for input and target)")
    in_channels: int = option(3, "channels of the input images", (1, 3))
    out_channels: int = option(3, "channels of the target images", (1, 3))
    file_list: str | None = option(None, "text file naming the training images to use",
                                   path=True)
    exclude_list: str | None = option(None, "text file naming training images to leave out "
                                      "(e.g. a held-out slice for search)", path=True)
    cache: bool = option(False, "keep decoded, resized images in memory")
    eval_phase: str = option("test", "split used for sample grids (falls back to val, then train)",
                             ("test", "val", "train"), runtime=True)
    num_workers: int = option(2, "DataLoader worker processes", runtime=True, minimum=0,
                              maximum=256)
    label_layout: str = option("auto", "labels mode: dataset layout (data/segmaps.py)",
                               ("auto", "cityscapes", "coco", "ade20k", "folders"))
    label_nc: int = option(0, "labels mode: number of label ids (0 = the layout's: Cityscapes "
                           "35, COCO-Stuff 182, ADE20K 150; then dontcare / instance too)",
                           minimum=0)
    contain_dontcare: bool = option(False, "labels mode: id 255 gets its own one-hot channel")
    no_instance: bool = option(False, "labels mode: no instance-edge channel")
    aspect_ratio: float = option(2.0, "labels mode: width / height (crop_size is the width)",
                                 minimum=0.1)


@dataclass
class ModelConfig:
    """Generator and discriminator: a registered family and its own constructor arguments
    (docs/reference.md sec. 2-3). `model.generator_args.ngf=32` sets one argument; the family's
    constructor checks them (unknown names are errors that list the valid ones)."""
    generator: str = option("", "generator family (gancompress.models.GENERATORS; empty = the "
                            "first registered family, the ResNet generator)")
    generator_args: dict = option({}, "constructor arguments of the generator family, e.g. "
                                  "ngf, n_blocks, conv (dense / separable), norm, dropout for "
                                  "ResNet (input / output channels come from the data section)")
    disc: str = option("patch", "discriminator architecture (models.discriminators.DISCRIMINATORS)")
    disc_args: dict = option({}, "constructor arguments of the discriminator, e.g. ndf, "
                             "n_layers (3 = 70x70 PatchGAN), norm")
    init_std: float = option(0.02, "weights initialised from N(0, init_std)", minimum=0.0,
                            maximum=10.0)


@dataclass
class LossConfig:
    """Loss weights (docs/reference.md sec. 3)."""
    gan_mode: str = option("hinge", "adversarial loss", ("hinge", "lsgan", "vanilla"))
    lambda_recon: float = option(100.0, "pix2pix: weight of L1 to the target", minimum=0.0)
    lambda_cycle: float = option(10.0, "CycleGAN: weight of the cycle L1 losses", minimum=0.0)
    lambda_identity: float = option(0.5, "CycleGAN: identity loss weight, relative to "
                                    "lambda_cycle", minimum=0.0)
    pool_size: int = option(50, "CycleGAN: image pool of past fakes for D (0 = off)", minimum=0,
                            maximum=100000)
    lambda_feat: float = option(10.0, "GauGAN: discriminator feature-matching weight", minimum=0.0)
    lambda_vgg: float = option(0.0, "GauGAN: VGG19 perceptual loss weight (0 = off; needs "
                               "vgg19-dcbb9e9d.pth)", minimum=0.0)
    vgg_weights: str = option("", "GauGAN: the vgg19-dcbb9e9d.pth file (default: looked up in "
                              "--weights-dir, $GANCOMPRESS_WEIGHTS_DIR, the cache)", runtime=True)


@dataclass
class TrainConfig:
    """The training loop (gancompress.training.loop)."""
    task: str = option("pix2pix", "what to train (gancompress.compress.tasks.TASKS)")
    seed: int = option(233, "random seed (python, numpy, torch, data order and augmentation)",
                       minimum=0, maximum=2**63 - 1)
    batch_size: int = option(1, "images per step and process (torchrun: the global batch is "
                             "batch_size x processes)", minimum=1, maximum=65536)
    global_batch_size: int = option(0, "recorded by the loop: batch_size x processes of the run "
                                    "(steps, epochs and the lr schedule count global batches)",
                                    runtime=True, minimum=0,
                                    recorded="set train.batch_size, the images per process (the "
                                             "global batch is train.batch_size x the process "
                                             "count)")
    epochs: int = option(100, "epochs at the initial learning rate", minimum=0, maximum=10**6)
    epochs_decay: int = option(100, "epochs of linear decay to ~0 afterwards", minimum=0,
                               maximum=10**6)
    lr_update: str = option("epoch", "apply the decay once per epoch (published) or every step",
                            ("epoch", "step"))
    lr: float = option(2e-4, "Adam learning rate", minimum=0.0, maximum=10.0)
    beta1: float = option(0.5, "Adam beta1", minimum=0.0, maximum=0.9999999)
    beta2: float = option(0.999, "Adam beta2", minimum=0.0, maximum=0.9999999)
    lr_disc: float = option(0.0, "discriminator learning rate (0 = train.lr; GauGAN's TTUR uses "
                            "2x the generator's)", minimum=0.0, maximum=10.0)
    beta1_disc: float = option(-1.0, "discriminator Adam beta1 (-1 = train.beta1)", minimum=-1.0,
                              maximum=0.9999999)
    beta2_disc: float = option(-1.0, "discriminator Adam beta2 (-1 = train.beta2)", minimum=-1.0,
                              maximum=0.9999999)
    max_steps: int = option(0, "stop after this many steps (0 = run the whole schedule); the lr "
                            "schedule ignores it, so it may be raised on --resume to train in "
                            "chunks", runtime=True, minimum=0)
    amp: bool = option(False, "mixed precision (CUDA only; ignored on CPU)")
    device: str = option("auto", "auto, cpu, cuda or cuda:N", runtime=True)
    threads: int = option(0, "CPU threads for torch (0 = torch default)", runtime=True, minimum=0,
                          maximum=4096)
    checkpoint_every: int = option(1000, "steps between checkpoints", runtime=True, minimum=1)
    eval_every: int = option(1000, "steps between sample grids", runtime=True, minimum=1)
    log_every: int = option(100, "steps between log lines", runtime=True, minimum=1)
    n_samples: int = option(4, "rows in each sample grid", runtime=True, minimum=1,
                            maximum=1024)
    tensorboard: bool = option(False, "also log to TensorBoard (if installed)", runtime=True)
    progress: bool = option(True, "show a progress bar", runtime=True)


# Training stages of a compression and their default [epochs, decay epochs].
STAGE_EPOCHS = {"mobile": (5, 15), "distill": (5, 15), "supernet": (10, 30), "finetune": (5, 15)}
MAX_EPOCHS = 10**6


def epoch_pair(key: str, value: Any, from_text: bool) -> list[int]:
    """One entry of compress.epochs: [epochs, decay epochs] from a list or from text such as
    "10,30", "10+30" or "[10, 30]"."""
    given = value
    if from_text and isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                value = text
        else:
            value = [v.strip() for v in text.replace("+", ",").split(",")]
    if isinstance(value, (list, tuple)) and len(value) == 2:
        pair = []
        for v in value:
            if isinstance(v, str) and from_text:
                try:
                    number = float(v)
                except ValueError:
                    break
                v = int(number) if number.is_integer() else v
            if not isinstance(v, int) or isinstance(v, bool):
                break
            pair.append(v)
        if len(pair) == 2:
            return pair
    raise UserError(f"config key {key}: expected two integers (epochs at the initial lr, epochs "
                    f"of lr decay), e.g. 10,30; got {given!r}")


# Evolution search settings: name -> (default, minimum, maximum); the published defaults
# (Fast GAN Compression; docs/reference.md sec. 3) except generations.
EVOLUTION: dict[str, tuple[Any, float, float | None]] = {
    "population": (100, 1, None), "parents": (25, 1, None), "mutants": (50, 0, None),
    "crossovers": (50, 0, None), "mutate_prob": (0.2, 0.0, 1.0), "generations": (500, 1, None)}


def evolution_entry(key: str, value: Any, from_text: bool) -> int | float:
    """One entry of compress.evolution, of its default's type and within its range."""
    default, minimum, maximum = EVOLUTION[key.rsplit(".", 1)[1]]
    number = convert(value, type(default), key, from_text)
    check_number(f"config key {key}", number, minimum, maximum)
    return number


@dataclass
class CompressConfig:
    """Compression (gancompress.compress.pipeline, compress/tasks.py; docs/reference.md sec. 1-3):
    distillation, once-for-all supernet, search, fine-tune. The pipeline sets the paths per
    stage. The per-stage epochs and the evolution settings are one mapping each."""
    teacher: str = option("", "teacher generator checkpoint (set by --teacher)", path=True)
    pipeline: str = option("fast", "fast: supernet distilled from the teacher (Fast GAN "
                           "Compression); original: mobile teacher -> pruned, pre-distilled "
                           "student -> supernet (GAN Compression)", ("fast", "original"))
    space: str = option("", "search space: a preset of the student's family (ResNet: "
                        "channels-48, channels-32, channels-64-cycleGAN, channels-64-pix2pix, "
                        "fast-16 (every width a multiple of 16); "
                        "SPADE: channels-48, channels-64; see `gancompress search --help`), "
                        "widths for every position, e.g. 16,12,8; empty = the family's default "
                        "(ResNet channels-64-pix2pix, SPADE channels-48)")
    student_conv: str = option("separable", "student convs: separable (the published mobile "
                               "student), dense, or per residual third (ResNet) e.g. "
                               "res1=dense,res2=separable,res3=dense")
    student_norm: str = option("", "student norm ('' = the teacher's): instance, batch "
                               "(running statistics, re-calibrated per sub-network), scale "
                               "(learned per-channel affine, no statistics) or none; batch and "
                               "scale fold into the convs at export (ResNet)")
    student_pad: str = option("", "student padding ('' = the teacher's): reflect (published) or "
                              "zero (the convs' own padding: no pad op in the graph) (ResNet)")
    student_family: str = option("", "generator family of the student ('' = the teacher's); "
                                 "another family (e.g. resnet for a U-Net teacher) is distilled "
                                 "from outputs and from features at matching resolutions "
                                 "(fast pipeline)")
    student_args: dict = option({}, "constructor arguments of a student of another family "
                                "(e.g. compress.student_args.n_blocks=6)")
    student_widths: str = option("", "distill task: student config string (default: the widest "
                                 "of the space)")
    student_init: str = option("fresh", "fresh (N(0, init_std)), prune (L1-norm channel pruning "
                               "of the teacher) or a generator checkpoint to start from",
                               path=True)
    init_from_run: str = option("", "run folder of the previous stage: its feature mappings and "
                                "discriminator are reused", path=True)
    disc_init: str = option("fresh", "fresh discriminator, or the teacher's (from the run "
                            "checkpoint.pt beside the teacher file)", ("fresh", "teacher"))
    sampling: str = option("uniform", "supernet: widths per step drawn uniformly per position "
                           "(published) or by the sandwich rule (widest + narrowest + random)",
                           ("uniform", "sandwich"))
    config: str = option("", "finetune: the sub-network to fine-tune, e.g. 16_16_32_16_32_32_16_16")
    lambda_distill: float = option(1.0, "feature distillation weight", minimum=0.0)
    lambda_gan: float = option(1.0, "adversarial loss weight (0 = no discriminator)", minimum=0.0)
    distill_loss: str = option("mse", "feature distillation: mse (1x1 mappings + MSE, published) "
                               "or ka (CAT kernel alignment, no mappings)", ("mse", "ka"))
    lambda_target: float = option(1.0, "paired data: weight of the L1 to the ground truth, "
                                  "relative to lambda_recon (0 = none, as in published GauGAN "
                                  "compression: on label maps an L1 to the photo pulls the "
                                  "student toward grey)", minimum=0.0)
    # default 1: it won bench/bench_quality.py (see the compress-demo preset); the published
    # pix2pix recipes below set 0 (the paper's losses)
    lambda_output: float = option(1.0, "paired data: weight of an L1 to the teacher's output, "
                                  "relative to lambda_recon, added to the L1 to the ground truth "
                                  "(unpaired data already reconstructs the teacher's output; 0 = "
                                  "the published losses)",
                                  minimum=0.0)
    # default 1: it won bench/bench_quality.py on unpaired data (3 seeds, 1/20 and 1/40); the
    # published CycleGAN recipe below sets 0
    lambda_identity: float = option(1.0, "unpaired data, generators with as many input as "
                                    "output channels: weight of CycleGAN's identity L1 "
                                    "student(b) ~ b on real target-domain images, relative to "
                                    "lambda_recon (0 = the published losses)", minimum=0.0)
    budget: str = option("", "search budget: MACs (3e9, 3G), fraction of the teacher (1/20, 5%) "
                         "or latency (30ms)")
    latency_backend: str = option("torch", "runtime and precision a latency budget (30ms) "
                                  "refers to (compress --runtime): the latency model is measured "
                                  "on it (onnxruntime: the old spelling of onnx)",
                                  ("torch", "onnx", "openvino", "openvino-bf16", "openvino-int8",
                                   "onnxruntime"))
    latency_size: str = option("", "input size HxW a latency budget refers to, e.g. 256x256 "
                               "(the deployment size; '' = the data's evaluation size, where "
                               "MACs are counted)")
    search: str = option("evolution", "search method", ("evolution", "exhaustive"))
    # One mapping instead of 6 flat fields (compress.population=... etc. still load and
    # override: config/legacy.py).
    evolution: dict = option(
        {name: default for name, (default, _, _) in EVOLUTION.items()},
        "evolution search: population, parents (kept per generation), mutants and crossovers "
        "(per generation), mutate_prob (to redraw each position), generations; e.g. "
        "compress.evolution.generations=20", entries=tuple(EVOLUTION), entry=evolution_entry)
    search_workers: int = option(1, "local processes scoring each generation's candidates in "
                                 "parallel (under torchrun every rank scores instead)",
                                 runtime=True, minimum=1, maximum=1024)
    metric: str = option("auto", "search score: auto (fid with compress.stats, else l1), l1, "
                         "psnr, fid, kid, miou (Cityscapes label maps: DRN-D-105 segmentation "
                         "of the outputs), swd, colour (distribution distances to the held-out "
                         "references, no weights needed)",
                         ("auto", "l1", "psnr", "fid", "kid", "miou", "swd", "colour"))
    drn_weights: str = option("", "miou: drn-d-105_ms_cityscapes.pth (default: looked up in "
                              "$GANCOMPRESS_WEIGHTS_DIR and the cache)", runtime=True, path=True)
    stats: str = option("", "reference statistics .npz for fid / kid (gancompress stats)",
                        path=True)
    held_out: int = option(100, "training images held out from compression training, used to "
                           "score sub-networks and for the report", minimum=1)
    # One mapping instead of 8 flat fields (the flat names of earlier versions,
    # compress.supernet_epochs=10 etc., still load and override: config/legacy.py).
    epochs: dict = option(
        {stage: list(pair) for stage, pair in STAGE_EPOCHS.items()},
        "per compression stage, [epochs at the initial lr, epochs of lr decay]: mobile and "
        "distill (original pipeline: the mobile teacher, the pre-distilled student), supernet "
        "(edges2shoes: 10,30), finetune (0,0 = no fine-tuning); e.g. "
        "compress.epochs.supernet=10,30", minimum=0, maximum=MAX_EPOCHS,
        entries=tuple(STAGE_EPOCHS), entry=epoch_pair)


@dataclass
class MunitConfig:
    """MUNIT training (gancompress.training.munit, gancompress.compress.munit_tasks;
    docs/families.md sec. 6): loss weights, optimiser schedule, and the compression
    recipe's style terms; defaults are the published values. The architecture is in
    model.generator_args (ngf, style_dim, mlp_dim, n_res, conv) and model.disc_args (ms_image:
    ndf, n_layers, norm, num_scales)."""
    lambda_x: float = option(10.0, "weight of the image reconstruction L1", minimum=0.0)
    lambda_c: float = option(1.0, "weight of the content-code reconstruction L1", minimum=0.0)
    lambda_s: float = option(1.0, "weight of the style-code reconstruction L1", minimum=0.0)
    lambda_cycle: float = option(0.0, "weight of the explicit cycle L1 x -> other domain -> x "
                                 "(MUNIT's recon_x_cyc_w; 0 in the edges2shoes recipe)",
                                 minimum=0.0)
    lambda_gan: float = option(1.0, "weight of the LSGAN terms", minimum=0.0)
    weight_decay: float = option(1e-4, "Adam weight decay (generators and discriminators)",
                                 minimum=0.0)
    lr_step: int = option(100000, "steps between learning-rate halvings (step schedule)",
                          minimum=1)
    lr_gamma: float = option(0.5, "learning-rate factor applied every lr_step steps",
                             minimum=0.0)
    lambda_style: float = option(1.0, "compression: weight of the style-code distillation L1 "
                                 "(lambda_rec_s)", minimum=0.0)
    style_every: int = option(2, "compression: steps with an odd index (step % style_every "
                              "!= 0) distil the style encoder on a real B image; the others "
                              "feed one random style to teacher and student", minimum=1)


# The sections of a run's settings, in order: Config (schema.py) has one field per entry.
SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "loss": LossConfig,
                             "train": TrainConfig, "compress": CompressConfig,
                             "munit": MunitConfig}
