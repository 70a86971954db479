"""`gancompress stats`: reference FID statistics (mu, sigma) of real images, as an .npz.

    gancompress stats --data datasets/edges2shoes-r --side B --out real_stat/edges2shoes_B.npz
    gancompress stats --data datasets/horse2zebra --side B --phase train+test --out zebra.npz
    gancompress stats --data some/folder/of/images --out folder.npz --size 256 256 --overwrite

DIR is a dataset folder (aligned A|B, unaligned trainA/trainB/..., see gancompress.data) with
the side to use, or a plain folder of images. Images are resized to --load-size (default 256,
the evaluation size) like the evaluation pipeline, then go through the published FID
preprocessing (metrics/fid.py). The .npz holds `mu` and `sigma` (compatible with the published
statistics files), `meta` (a JSON string: image count, size, resize, phases, weights file and
SHA-256, ...) and, with --save-features, the (N, 2048) `features` that KID needs.

Also holds the command-line options shared with `gancompress eval` (weights, data) and the
warning report; reading a dataset side in batches is gancompress.data.splits.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from gancompress.commands._common import image_side, int_range
from gancompress.commands._options import (
    add_device_argument,
    add_overwrite_argument,
    add_progress_argument,
)
from gancompress.errors import UserError

if TYPE_CHECKING:
    import torch


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
    group.add_argument("--allow-unverified-weights", action="store_true",
                       help="use a weights file whose SHA-256 differs from the published file's "
                            "(results are marked unverified)")


def apply_weights_arguments(args: argparse.Namespace) -> None:
    """--allow-unverified-weights -> the switch gancompress.weights reads."""
    if getattr(args, "allow_unverified_weights", False):
        import os

        from gancompress.weights import ALLOW_ENV
        os.environ[ALLOW_ENV] = "1"


def add_data_arguments(parser: argparse.ArgumentParser, phase: str,
                       load_size: int | None = 256) -> None:
    parser.add_argument("--phase", default=phase,
                        help=f"dataset phase(s) to read: train, test, val, or several joined by "
                             f"'+' (e.g. train+test, the CycleGAN protocol); default {phase}")
    default = ("the size the model was trained at, else 256" if load_size is None
               else f"{load_size} {load_size}")
    parser.add_argument("--size", nargs=2, type=image_side, metavar=("H", "W"),
                        help=f"resize images to H x W (bicubic) first, as the evaluation pipeline "
                             f"does (default {default}; 256 256 is the published protocol); "
                             f"square unless the model reads label maps")
    parser.add_argument("--load-size", type=int_range(0, 16384), metavar="N",
                        help="the same as --size N N; 0 keeps each image's size (rounded to a "
                             "multiple of 4), then all images must have the same size")
    parser.set_defaults(default_load_size=load_size)
    parser.add_argument("--batch-size", type=int_range(1, 65536), default=16, help="images per batch (default 16)")
    parser.add_argument("--workers", type=int_range(0, 256), default=0, help="data loader worker processes")
    add_device_argument(parser)
    parser.add_argument("--limit", type=int_range(1, 10**9), metavar="N",
                        help="use only the first N images (quick checks; not the protocol)")
    add_progress_argument(parser)


def resolve_load_size(args: argparse.Namespace, rectangular: bool = False) -> None:
    """--size H W and --load-size N (= --size N N) -> args.load_size (the square side, or the
    height of a rectangular --size); unset: the command's default (None: decided later)."""
    if args.size:
        height, width = args.size
        if args.load_size is not None and args.load_size != height:
            raise UserError(f"--size {height} {width} and --load-size {args.load_size} disagree; "
                            f"give one of them (--load-size N means --size N N)")
        if height != width and not rectangular:
            raise UserError(f"--size {height} {width}: images are resized to a square here; "
                            f"give --size N N")
        args.load_size = height
    elif args.load_size is None:
        args.load_size = args.default_load_size


def check_device(device: str) -> torch.device:
    from gancompress.devices import parse_device

    return parse_device(device, "--device")


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
    add_overwrite_argument(p)
    p.add_argument("--save-features", action="store_true",
                   help="also store the (N, 2048) features (float32), so KID can use this file")
    p.add_argument("--channels", type=int_range(1, 3), default=3, choices=[1, 3],
                   help="read images as 3 (RGB) or 1 (grayscale, tiled to RGB) channels")
    add_data_arguments(p, phase="test")
    add_weights_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from gancompress.data.splits import image_batches, open_side, parse_phases
    from gancompress.metrics.fid import InceptionExtractor, save_statistics, statistics
    from gancompress.weights import weights_tag

    resolve_load_size(args)
    out = Path(args.out)
    if out.suffix != ".npz":
        raise UserError(f"--out {out}: statistics are written as .npz; name the file *.npz")
    from gancompress.files import check_output_file, check_writable
    check_output_file(out, args.overwrite, example="stats.npz")
    check_writable(out)  # before computing the features
    apply_weights_arguments(args)
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
                    overwrite=args.overwrite)
    print(f"wrote {out}: mu {mu.shape}, sigma {sigma.shape} from {len(features)} images of "
          f"{spec.description}; Inception weights {weights_tag(extractor.weights)}")
    return 0
