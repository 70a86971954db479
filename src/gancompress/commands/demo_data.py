"""`gancompress demo-data`: write a small paired dataset from photos bundled with scikit-image.

    gancompress demo-data --out demo_data                 # 400 train + 40 test pairs, 64 px
    gancompress train --preset demo --data demo_data --out runs/demo
    gancompress demo-data --labels --out demo_labels      # 300 + 30 label maps -> photos, 32x64
    gancompress train --preset gaugan-demo --data demo_labels --out runs/gaugan-demo
"""
from __future__ import annotations

import argparse

from gancompress.commands._common import image_side, int_range
from gancompress.errors import UserError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo-data", help="write a small real-photo paired dataset (no download)",
        description="Write an aligned dataset (train/ and test/, each image = A | B) made of "
                    "crops of the colour photos bundled with scikit-image: grayscale -> colour "
                    "(default) or edges -> photo. Test crops come from photos never used for "
                    "training. With --labels: a label map -> photo dataset for GauGAN "
                    "(labels/, instances/, images/ per split; classes from superpixel colours).")
    parser.add_argument("--out", required=True,
                        help="folder to create (must not exist or be empty)")
    parser.add_argument("--kind", choices=("colorize", "edges"),
                        help="what A is: the grayscale photo or its Canny edges (default "
                             "colorize)")
    parser.add_argument("--labels", action="store_true",
                        help="write label maps -> photos instead (for --preset gaugan-demo): "
                             "colour classes, instance maps, SIZE x 2*SIZE images")
    parser.add_argument("--size", nargs="+", type=image_side, metavar=("H", "W"),
                        help="image height and width (default 64 64; square); with --labels "
                             "the width is twice the height (default 32 64); one number gives "
                             "the height")
    parser.add_argument("--train", type=int_range(1, 10**6),
                        help="training pairs (default 400; 300 with --labels)")
    parser.add_argument("--test", type=int_range(1, 10**6),
                        help="test pairs (default 40; 30 with --labels)")
    parser.add_argument("--seed", type=int_range(0, 2**32 - 1), default=0)
    parser.set_defaults(func=run)


def _height(args: argparse.Namespace) -> int | None:
    """--size H [W]: the height, once W is checked against the layout's aspect ratio."""
    if not args.size:
        return None
    if len(args.size) > 2:
        raise UserError("--size takes H W (or one number, the height)")
    height = args.size[0]
    width = args.size[1] if len(args.size) == 2 else None
    wanted = 2 * height if args.labels else height
    if width is not None and width != wanted:
        shape = "twice the height" if args.labels else "the height (square images)"
        raise UserError(f"--size {height} {width}: the width of this dataset is {shape}; "
                        f"give --size {height} {wanted}")
    return height


def run(args: argparse.Namespace) -> int:
    from gancompress.data.demo import write_demo_data, write_label_demo_data

    height = _height(args)

    if args.labels:
        if args.kind:
            raise UserError("--kind chooses the input of a paired dataset; --labels writes label "
                            "maps instead: give one of them")
        summary = write_label_demo_data(args.out, height=height or 32,
                                        n_train=args.train or 300, n_test=args.test or 30,
                                        seed=args.seed)
        h, w = summary["size"]
        print(f"wrote {summary['train']} train and {summary['test']} test label maps -> photos "
              f"({h}x{w}, {summary['label_nc']} classes, instance maps) to {args.out}")
        print(f"train with: gancompress train --preset gaugan-demo --data {args.out} --out RUN")
    else:
        summary = write_demo_data(args.out, kind=args.kind or "colorize", size=height or 64,
                                  n_train=args.train or 400, n_test=args.test or 40,
                                  seed=args.seed)
        print(f"wrote {summary['train']} train and {summary['test']} test pairs "
              f"({summary['kind']}, {summary['size']} px) to {args.out}")
    print(f"train photos: {', '.join(summary['train_photos'])}; test photos: "
          f"{', '.join(summary['test_photos'])}")
    return 0
