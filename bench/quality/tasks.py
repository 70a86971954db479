"""The families bench_quality compares: a teacher recipe per family and the tasks on top of it.

Teachers (run folder work/teacher-NAME, trained with `train` on the built-in data):
    paired    `demo` preset (pix2pix ResNet ngf 24, 6 blocks), grey -> colour crops
    unpaired  the same with train.task=cyclegan on unpaired halves of that data
    unet      `demo-unet` preset (pix2pix U-Net, 6 levels, ngf 32), grey -> colour
    gaugan    `gaugan-demo` preset (ngf 8: 82M MACs at 32x64, 1.49M params; 30+30 epochs =
              4500 steps at batch 4, 303 s on 1 thread with two other jobs on the 2 cores),
              `demo-data --labels` label maps; --gaugan-ngf changes its width; --quick: 6+6
              epochs
    munit     `munit-demo` preset (ngf 8, 82M MACs at 64 px) on the unpaired data
Tasks (what is compressed, how, and scored against what):
    paired, unpaired    ResNet teacher -> ResNet student (separable), space --space
    paired-auto         the paired teacher's weights in a user-written plain PyTorch ResNet
                        (quality/user_resnet.py), converted automatically (models/traced.py),
                        compressed with the same per-layer channel choices as the family's
                        space (issue 24 item 4; dense convs: the conversion keeps the user's)
    unet                U-Net teacher -> U-Net student (its `channels` config numbers)
    unet-resnet         U-Net teacher -> ResNet student (compress.student_family=resnet)
    gaugan              SPADE teacher -> SPADE student (separable), compress-gaugan-demo
    munit               MUNIT teacher -> MUNIT student, compress-munit-demo
All but gaugan are scored on the 40 grey -> colour test pairs of the paired data; gaugan on the
30 test label maps of the label data against their photos.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gancompress.config import apply_overrides, preset
from gancompress.models.checkpoint import load_generator, save_generator

from quality.common import elapsed, label_pairs, log, test_pairs

USER_RESNET = "quality.user_resnet:PlainResnet"


@dataclass(frozen=True)
class Teacher:
    preset: str
    data: str                               # make_data key
    over: dict[str, Any] = field(default_factory=dict)
    generator: str = "generator.pth"        # the translator the run exports
    quick_epochs: tuple[int, int] = (3, 3)  # --quick: shorter than the preset


TEACHERS = {
    "paired": Teacher("demo", "paired"),
    "unpaired": Teacher("demo", "unpaired", {
        "train.task": "cyclegan", "data.mode": "unaligned", "loss.lambda_cycle": 10.0,
        "loss.lambda_identity": 0.5, "loss.pool_size": 50}, "generator_AtoB.pth"),
    "unet": Teacher("demo-unet", "paired"),
    "gaugan": Teacher("gaugan-demo", "labels", quick_epochs=(6, 6)),
    "munit": Teacher("munit-demo", "unpaired", {"data.mode": "unaligned"},
                     "generator_AtoB.pth", quick_epochs=(3, 0)),
}


@dataclass(frozen=True)
class Task:
    teacher: str                   # TEACHERS key
    compress_preset: str           # compress-NAME
    space: str = ""                # compress.space ('' = --space; 'auto' = derived, traced)
    over: tuple[str, ...] = ()     # extra compress settings
    variants: bool = True          # the VARIANTS apply (pix2pix / CycleGAN losses)
    uniform: bool = False          # the uniformly narrowed ResNet row
    scratch: bool = True
    batch_size: int = 4            # the compress preset's (scratch rows train at it too)
    convert: bool = False          # compress the teacher converted automatically


TASKS = {
    "paired": Task("paired", "demo", uniform=True),
    "unpaired": Task("unpaired", "demo", uniform=True),
    "paired-auto": Task("paired", "demo", space="auto", convert=True, scratch=False),
    "unet": Task("unet", "demo", space="24,16,12,10,8,6,4"),
    "unet-resnet": Task("unet", "demo", over=("compress.student_family=resnet",)),
    "gaugan": Task("gaugan", "gaugan-demo", space=preset("compress-gaugan-demo").compress.space,
                   variants=False),
    "munit": Task("munit", "munit-demo", space="8,6,4,3,2", variants=False, batch_size=1),
}


def teacher_config(name: str, data: dict[str, Path], args: argparse.Namespace):
    t = TEACHERS[name]
    over: dict[str, Any] = {**t.over, "data.root": str(data[t.data]), "train.progress": False,
                            "train.threads": args.threads}
    if name == "gaugan" and args.gaugan_ngf:
        over["model.generator_args.ngf"] = args.gaugan_ngf
    if args.quick:  # the teacher is shared by every row
        over.update({"train.epochs": t.quick_epochs[0], "train.epochs_decay": t.quick_epochs[1]})
    return apply_overrides(apply_overrides(preset(t.preset), over), list(args.teacher_override))


def train_teacher(name: str, data: dict[str, Path], work: Path, args: argparse.Namespace
                  ) -> Path:
    from gancompress.compress.tasks import train
    run = work / f"teacher-{name}"
    if not (run / TEACHERS[name].generator).is_file():
        log(f"teacher ({name}) in {run}")
        train(teacher_config(name, data, args), run, resume=(run / "config.json").is_file())
    return run / TEACHERS[name].generator


def task_teacher(task: str, data: dict[str, Path], work: Path, args: argparse.Namespace
                 ) -> tuple[Path, float]:
    """The teacher file a task compresses and its training seconds."""
    spec = TASKS[task]
    path = train_teacher(spec.teacher, data, work, args)
    seconds = elapsed(path.parent)
    if spec.convert:
        path = convert_teacher(path, work / f"teacher-{task}")
    return path, seconds


def convert_teacher(family_file: Path, folder: Path) -> Path:
    """The family teacher's weights loaded into the user's plain module, converted (traced)."""
    from gancompress.models.traced import load_traced
    out = folder / "generator.pth"
    if not out.is_file():
        hand = load_generator(family_file)
        arch = hand.arch
        args = {"ngf": arch["ngf"], "n_blocks": arch["n_blocks"],
                "in_channels": arch["in_channels"], "out_channels": arch["out_channels"]}
        auto = load_traced(USER_RESNET, args, hand.state_dict(),
                           inputs=[[1, arch["in_channels"], 64, 64]])
        folder.mkdir(parents=True, exist_ok=True)
        # the teacher run's settings (data layout, channels, losses), as compress reads them
        # from a trained teacher; a user passes them as options instead
        save_generator(auto, out, meta=getattr(hand, "meta", None))
        log(f"converted {family_file} -> {out}: groups {auto.max_widths}")
    return out


def pairs_for(task: str, teacher: Path, data: dict[str, Path]):
    if TASKS[task].teacher == "gaugan":
        return label_pairs(teacher.parent)
    arch = load_generator(teacher).arch
    return test_pairs(data["paired"], arch["in_channels"], arch["out_channels"])


def space_for(task: str, teacher: Path, args: argparse.Namespace) -> str:
    """compress.space of a task. 'auto' (the traced teacher): per group, the family space's
    numbers times the group's width over the stem's (the ResNet family's config numbers are
    channels / {1, 2, 4} per stage), so both students choose among the same channel counts."""
    spec = TASKS[task]
    if spec.space != "auto":
        return spec.space or args.space
    full = load_generator(teacher).max_widths
    unit = next(iter(full.values()))
    numbers = [int(v) for v in args.space.split(",")]
    return json.dumps([[n * w // unit for n in numbers] for w in full.values()])


def scratch_args(compact: Path) -> tuple[str, dict[str, Any]]:
    """The family and constructor arguments of a compressed student (trained from scratch)."""
    model = load_generator(compact)
    arch = {k: v for k, v in model.arch.items() if k not in ("in_channels", "out_channels")}
    return model.arch_name, json.loads(json.dumps(arch))
