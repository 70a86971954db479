"""`gancompress demo-data`: write a small paired dataset from photos bundled with scikit-image.

    gancompress demo-data --out demo_data                 # 400 train + 40 test pairs, 64 px
    gancompress train --preset demo --data demo_data --out runs/demo
"""
from __future__ import annotations

import argparse

from gancompress.commands._common import image_side, int_range


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo-data", help="write a small real-photo paired dataset (no download)",
        description="Write an aligned dataset (train/ and test/, each image = A | B) made of "
                    "crops of the colour photos bundled with scikit-image: grayscale -> colour "
                    "(default) or edges -> photo. Test crops come from photos never used for "
                    "training.")
    parser.add_argument("--out", required=True,
                        help="folder to create (must not exist or be empty)")
    parser.add_argument("--kind", default="colorize", choices=("colorize", "edges"),
                        help="what A is: the grayscale photo or its Canny edges (default "
                             "colorize)")
    parser.add_argument("--size", type=image_side, default=64, help="pixels per side (default 64)")
    parser.add_argument("--train", type=int_range(1, 10**6), default=400, help="training pairs (default 400)")
    parser.add_argument("--test", type=int_range(1, 10**6), default=40, help="test pairs (default 40)")
    parser.add_argument("--seed", type=int_range(0, 2**32 - 1), default=0)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gancompress.data.demo import write_demo_data

    summary = write_demo_data(args.out, kind=args.kind, size=args.size, n_train=args.train,
                              n_test=args.test, seed=args.seed)
    print(f"wrote {summary['train']} train and {summary['test']} test pairs "
          f"({summary['kind']}, {summary['size']} px) to {args.out}")
    print(f"train photos: {', '.join(summary['train_photos'])}; test photos: "
          f"{', '.join(summary['test_photos'])}")
    return 0
