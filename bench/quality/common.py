"""Data, scoring and bookkeeping shared by bench_quality's tasks (moved out of the entry script
to keep it under 600 lines)."""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from gancompress.data import open_dataset
from gancompress.data.demo import write_demo_data, write_label_demo_data
from gancompress.metrics.colour import colour_distance
from gancompress.metrics.cost import count_macs
from gancompress.metrics.quality import l1_per_image, psnr_per_image
from gancompress.metrics.swd import swd
from gancompress.models.checkpoint import load_generator


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def make_data(work: Path) -> dict[str, Path]:
    """paired (grey -> colour crops), unpaired (the same, split into unpaired halves) and labels
    (`demo-data --labels`: label maps + instance edges -> photo, 32x64)."""
    paired = work / "data-paired"
    if not paired.exists():
        write_demo_data(paired)
    labels = work / "data-labels"
    if not labels.exists():
        write_label_demo_data(labels)
    unpaired = work / "data-unpaired"
    if not unpaired.exists():
        tmp = work / "data-unpaired.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for phase in ("train", "test"):
            files = sorted((paired / phase).glob("*.png"))
            for side in "AB":
                (tmp / f"{phase}{side}").mkdir(parents=True)
            for i, f in enumerate(files):
                with Image.open(f) as img:
                    w, h = img.size
                    a, b = img.crop((0, 0, w // 2, h)), img.crop((w // 2, 0, w, h))
                if phase == "test":  # test pairs kept (same names): scored against GT
                    a.save(tmp / "testA" / f.name)
                    b.save(tmp / "testB" / f.name)
                elif i % 2 == 0:  # training: grayscale of the even crops, colour of the odd
                    a.save(tmp / "trainA" / f.name)
                else:
                    b.save(tmp / "trainB" / f.name)
        tmp.rename(unpaired)
    return {"paired": paired, "unpaired": unpaired, "labels": labels}


def test_pairs(paired_root: Path, in_channels: int, out_channels: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """All test (source, ground truth) pairs at 64 px, evaluation preprocessing."""
    ds = open_dataset(paired_root, mode="aligned", phase="test", direction="AtoB",
                      preprocess="resize_and_crop", load_size=64, crop_size=64, flip=False,
                      in_channels=in_channels, out_channels=out_channels, augment=False)
    items = [ds[i] for i in range(len(ds))]
    return (torch.stack([it["source"] for it in items]),
            torch.stack([it["target"] for it in items]))


def label_pairs(run: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The test (semantic input, photo) pairs of a GauGAN teacher's run, as it evaluates them."""
    from gancompress.config import Config
    from gancompress.data import dataset_from_config
    cfg = Config.from_dict(json.loads((run / "config.json").read_text()))
    ds = dataset_from_config(cfg.data, phase="test", train=False)
    items = [ds[i] for i in range(len(ds))]
    return (torch.stack([it["source"] for it in items]),
            torch.stack([it["target"] for it in items]))


def image_scores(fake: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """L1, PSNR (per image, mean), SWD and colour (the sets) of outputs against the truth."""
    if fake.shape[1] != target.shape[1]:  # a 1-channel grey input shown as a colour image
        fake = fake.expand(-1, target.shape[1], -1, -1)
    return {"l1": l1_per_image(fake, target).mean().item(),
            "psnr": psnr_per_image(fake, target).mean().item(),
            "swd": swd(fake, target),
            "colour": colour_distance(fake, target) if target.shape[1] == 3 else float("nan")}


def translate(model: torch.nn.Module, source: torch.Tensor) -> torch.Tensor:
    """Outputs in batches of 16; a multimodal generator (MUNIT) gets one style per image drawn
    in order from a generator seeded 233 (the protocol of `gancompress eval`)."""
    styles = torch.Generator().manual_seed(233) if getattr(model, "multimodal", False) else None
    out = []
    for i in range(0, len(source), 16):
        x = source[i:i + 16]
        if styles is None:
            out.append(model(x))
        else:
            out.append(model(x, torch.cat([model.random_style(1, styles) for _ in x])))
    return torch.cat(out)


def latency_ms(model: torch.nn.Module, x: torch.Tensor, runs: int = 5) -> float:
    """Median batch-1 CPU latency (ms) of `model` on `x` (1 thread on a shared machine: noisy)."""
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        translate(model, x)
        if i:  # the first call warms up
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


@torch.no_grad()
def score(path: Path, pairs: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
    model = load_generator(path).eval()
    source, target = pairs
    fake = translate(model, source)
    macs = count_macs(model, (1, *source.shape[1:]))  # MUNIT: the translator with its style
    return {**image_scores(fake, target), "macs": float(macs),
            "latency_ms": latency_ms(model, source[:1])}


def folder_sha256(root: Path) -> str:
    """SHA-256 over the relative paths and bytes of every file under `root`, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def manifest(args: argparse.Namespace, data: dict[str, Path], argv: list[str]) -> dict[str, Any]:
    """What reruns the table: command, versions, seeds, settings, data hashes."""
    import numpy

    import gancompress
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()}
    return {"command": [sys.executable, *argv], "python": platform.python_version(),
            "torch": torch.__version__, "gancompress": gancompress.__version__,
            "numpy": numpy.__version__, "platform": platform.platform(),
            "seeds": args.seeds, "data_seed": 0, "settings": settings,
            "metric_seeds": {"swd": 0, "colour": 0, "munit_styles": 233},
            "data_sha256": {task: folder_sha256(root) for task, root in data.items()},
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def elapsed(run: Path) -> float:
    done = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if '"done"' in x]
    return float(done[-1]["elapsed_s"]) if done else float("nan")


def fraction(text: str) -> float:
    num, _, den = text.partition("/")
    return float(num) / float(den) if den else float(text)


def summarise(values: list[float], digits: int = 4) -> str:
    values = [v for v in values if v == v]  # NaN: not measured
    if not values:
        return "-"
    mean = statistics.fmean(values)
    return (f"{mean:.{digits}f} ({min(values):.{digits}f}..{max(values):.{digits}f})"
            if len(values) > 1 else f"{mean:.{digits}f}")
