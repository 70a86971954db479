"""`gancompress stats`: reference FID statistics (mu, sigma) of real images, as an .npz.

    gancompress stats --data datasets/edges2shoes-r --side B --out real_stat/edges2shoes_B.npz
    gancompress stats --data datasets/horse2zebra --side B --phase train+test --out zebra.npz
    gancompress stats --data some/folder/of/images --out folder.npz

DIR is a dataset folder (aligned A|B, unaligned trainA/trainB/..., see gancompress.data) with
the side to use, or a plain folder of images. Images are resized to --load-size (default 256,
the evaluation size) like the evaluation pipeline, then go through the published FID
preprocessing (metrics/fid.py). The .npz holds `mu` and `sigma` (compatible with the published
statistics files), `meta` (a JSON string: image count, size, resize, phases, weights file and
SHA-256, ...) and, with --save-features, the (N, 2048) `features` that KID needs.

Also holds helpers shared with `gancompress eval` (reading one side of a dataset in batches,
weights options, reporting warnings).
"""
from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gancompress.errors import UserError


# ----------------------------------------------------------------------------- shared helpers
def add_weights_arguments(parser: argparse.ArgumentParser, drn: bool = False) -> None:
    group = parser.add_argument_group("pretrained evaluation networks (never downloaded)")
    group.add_argument("--weights-dir", metavar="DIR",
                       help="folder holding the published weight files under their published "
                            "names (else $GANCOMPRESS_WEIGHTS_DIR, else ~/.cache/gancompress)")
    group.add_argument("--inception-weights", metavar="FILE",
                       help="the FID Inception file pt_inception-2015-12-05-6726825d.pth itself")
    if drn:
        group.add_argument("--drn-weights", metavar="FILE",
                           help="the DRN-D-105 file drn-d-105_ms_cityscapes.pth itself")


def add_data_arguments(parser: argparse.ArgumentParser, phase: str) -> None:
    parser.add_argument("--phase", default=phase,
                        help=f"dataset phase(s) to read: train, test, val, or several joined by "
                             f"'+' (e.g. train+test, the CycleGAN protocol); default {phase}")
    parser.add_argument("--load-size", type=int, default=256, metavar="N",
                        help="resize images to NxN (bicubic) first, as the evaluation pipeline "
                             "does (default 256); 0 keeps each image's size (rounded to a "
                             "multiple of 4), then all images must have the same size")
    parser.add_argument("--batch-size", type=int, default=16, help="images per batch (default 16)")
    parser.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument("--limit", type=int, metavar="N",
                        help="use only the first N images (quick checks; not the protocol)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def check_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device {device!r}; use cpu or cuda[:N]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    return dev


def parse_phases(text: str) -> list[str]:
    phases = [p.strip() for p in text.replace(",", "+").split("+") if p.strip()]
    if not phases:
        raise UserError("--phase is empty; use train, test, val or e.g. train+test")
    return phases


@dataclass
class SideSpec:
    """One side of a dataset, as a list of (dataset, item key, number of items) parts."""

    parts: list[tuple[Any, str, int]]
    mode: str
    description: str

    def __len__(self) -> int:
        return sum(n for _, _, n in self.parts)


def open_side(root: str | Path, side: str | None, phases: list[str], load_size: int,
              channels: int = 3, limit: int | None = None, other_channels: int | None = None
              ) -> SideSpec:
    """The real images of `side` (A or B) of a dataset folder, or of a plain image folder.

    Aligned A|B files: the left (A) or right (B) half; the items also carry the other half.
    Unaligned: <phase>A/ or <phase>B/, each image once. Single folder: every image (the side is
    ignored). `channels` is the side's channel count, `other_channels` the other side's.
    """
    from gancompress.data import open_dataset
    from gancompress.data.folders import resolve_layout

    if side is not None and side not in ("A", "B"):
        raise UserError(f"--side must be A or B, got {side!r}")
    if load_size < 0 or (load_size and load_size % 4):
        raise UserError(f"--load-size {load_size}: use a positive multiple of 4, or 0")
    pre: dict[str, Any] = (dict(preprocess="resize_and_crop", load_size=load_size,
                                crop_size=load_size) if load_size else dict(preprocess="none"))
    other = channels if other_channels is None else other_channels
    common = dict(flip=False, augment=False, **pre)
    as_source = dict(in_channels=channels, out_channels=other)  # the side is the source
    as_target = dict(in_channels=other, out_channels=channels)
    parts: list[tuple[Any, str, int]] = []
    seen: set[tuple[str, ...]] = set()
    mode = ""
    for phase in phases:
        layout = resolve_layout(root, "auto", phase)
        mode = layout.mode
        files = tuple(str(p) for paths in layout.files.values() for p in paths)
        if files in seen:  # a plain folder is the same for every phase
            continue
        seen.add(files)
        if layout.mode == "single":
            ds = open_dataset(root, mode="single", phase=phase, **common, **as_source)
            parts.append((ds, "source", len(ds)))
            continue
        if side is None:
            raise UserError(f"{root} is an {layout.mode} dataset with two sides: choose --side A "
                            f"or --side B (the side a generator produces, e.g. B for AtoB)")
        if layout.mode == "aligned":
            ds = open_dataset(root, mode="aligned", phase=phase, direction="AtoB", **common,
                              **(as_source if side == "A" else as_target))
            parts.append((ds, "source" if side == "A" else "target", len(ds)))
        else:  # unaligned: with the side as source, items 0..n-1 are its n images, once each
            ds = open_dataset(root, mode="unaligned", phase=phase,
                              direction="AtoB" if side == "A" else "BtoA", **common, **as_source)
            parts.append((ds, "source", len(layout.files[side])))
    if limit is not None:
        kept, left = [], limit
        for ds, key, n in parts:
            if left > 0:
                kept.append((ds, key, min(n, left)))
                left -= min(n, left)
        parts = kept
    size = f"{load_size}x{load_size}" if load_size else "original size (multiple of 4)"
    what = "all images" if mode == "single" else f"side {side}"
    return SideSpec(parts, mode, f"{root} ({mode}, {what}, phase {'+'.join(phases)}, {size})")


def _as_list(items: list) -> list:
    return items


def check_same_size(reference: tuple[tuple[int, ...], str], images: list[torch.Tensor],
                    paths: list[str]) -> None:
    """All (C, H, W) images must have the reference shape; mixed sizes are a clear user error."""
    shape, first_path = reference
    for image, path in zip(images, paths):
        if tuple(image.shape) != shape:
            raise UserError(f"images of different sizes: {first_path} is {shape[2]}x{shape[1]}, "
                            f"{path} is {image.shape[2]}x{image.shape[1]}; pass --load-size N "
                            f"to resize them all to NxN")


def iterate_items(spec: SideSpec, batch_size: int, workers: int = 0
                  ) -> Iterator[tuple[str, list[dict]]]:
    """(item key, list of dataset items), `batch_size` items at a time, over every part."""
    for ds, key, n in spec.parts:
        subset = torch.utils.data.Subset(ds, range(n))
        loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=False,
                                             num_workers=workers, collate_fn=_as_list)
        for items in loader:
            yield key, items


def image_batches(spec: SideSpec, batch_size: int, workers: int = 0) -> Iterator[torch.Tensor]:
    """(B, C, H, W) batches of the side's images in [-1, 1]; all images must share one size."""
    first: tuple[tuple[int, ...], str] | None = None
    for key, items in iterate_items(spec, batch_size, workers):
        images = [item[key] for item in items]
        paths = [str(item.get(f"{key}_path", "?")) for item in items]
        if first is None:
            first = (tuple(images[0].shape), paths[0])
        check_same_size(first, images, paths)
        yield torch.stack(images)


def report_warnings(caught: list[warnings.WarningMessage], command: str) -> list[str]:
    """Print caught warnings as one line each on stderr; return their messages."""
    messages = []
    for w in caught:
        text = str(w.message)
        if text not in messages:
            messages.append(text)
            print(f"gancompress {command}: warning: {text}", file=sys.stderr)
    return messages


# ----------------------------------------------------------------------------- the command
def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stats", help="reference FID statistics (mu, sigma) of real images",
        description="Compute the FID reference statistics (mean and covariance of the 2048-d "
                    "Inception pool3 features) of real images and write them as an .npz with "
                    "keys mu, sigma (compatible with the published files) and meta (how they "
                    "were made). DIR is a dataset folder (with --side) or a plain image folder.")
    p.add_argument("--data", required=True, metavar="DIR", help="dataset or image folder")
    p.add_argument("--side", choices=["A", "B"],
                   help="which side of a paired / unpaired dataset (B = the output of AtoB)")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="statistics file to write")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--save-features", action="store_true",
                   help="also store the (N, 2048) features (float32), so KID can use this file")
    p.add_argument("--channels", type=int, default=3, choices=[1, 3],
                   help="read images as 3 (RGB) or 1 (grayscale, tiled to RGB) channels")
    add_data_arguments(p, phase="test")
    add_weights_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gancompress.metrics.fid import InceptionExtractor, save_statistics, statistics

    out = Path(args.out)
    if out.suffix != ".npz":
        raise UserError(f"--out {out}: statistics are written as .npz; name the file *.npz")
    if out.exists() and not args.force:
        raise UserError(f"{out} already exists; choose another --out or pass --force")
    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    device = check_device(args.device)
    phases = parse_phases(args.phase)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec = open_side(args.data, args.side, phases, args.load_size, args.channels, args.limit)
        extractor = InceptionExtractor(args.inception_weights, args.weights_dir, device,
                                       args.batch_size)
        features = extractor(image_batches(spec, args.batch_size, args.workers),
                             progress=not args.no_progress, total=len(spec), desc="stats")
        mu, sigma = statistics(features)
    messages = report_warnings(caught, "stats")
    import gancompress
    meta = {"kind": "FID reference statistics", "data": str(args.data), "mode": spec.mode,
            "side": args.side if spec.mode != "single" else None, "phases": phases,
            "num_images": int(len(features)),
            "image_size": None if not args.load_size else [args.load_size, args.load_size],
            "resize": (f"bicubic to {args.load_size}x{args.load_size}" if args.load_size
                       else "none (sizes rounded to a multiple of 4)"),
            "limit": args.limit, "channels": args.channels, **extractor.protocol(),
            "covariance": "unbiased (N-1), float64", "warnings": messages,
            "gancompress": gancompress.__version__, "torch": torch.__version__}
    save_statistics(out, mu, sigma, meta, features if args.save_features else None,
                    overwrite=args.force)
    print(f"wrote {out}: mu {mu.shape}, sigma {sigma.shape} from {len(features)} images of "
          f"{spec.description}; Inception weights sha256 {extractor.weights.sha256[:12]}...")
    return 0
