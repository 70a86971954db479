"""`gancompress generate`: run a generator (checkpoint, ONNX or TorchScript file) on image files.

Pre/post-processing as published (REFERENCE.md sec. 3, 5): bicubic resize to the model's
recorded input size (or --size; checkpoints record none, so 256x256, the evaluation size),
[-1, 1] normalisation, output to uint8 by (y + 1) / 2 * 255, clipped and truncated.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from gancompress.commands._common import add_test_mode_arguments
from gancompress.devices import parse_device
from gancompress.errors import UserError

DEFAULT_SIZE = (256, 256)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate", help="run a generator (checkpoint, .onnx, TorchScript .pt) on images",
        description="Translate image files with any generator file gancompress can load or has "
                    "exported, using the published pre/post-processing. Writes OUT/<name>.png.")
    p.add_argument("model", help="generator checkpoint, exported .onnx or TorchScript .pt file")
    p.add_argument("--input", required=True, help="an image file or a folder of images")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--size", nargs=2, type=int, metavar=("H", "W"),
                   help="resize inputs to H W (default: the size recorded in the model file, "
                        "else 256 256)")
    p.add_argument("--batch-size", type=int, default=1, help="images per forward pass (1)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (PyTorch models)")
    p.add_argument("--threads", type=int, help="CPU threads (torch and onnxruntime)")
    add_test_mode_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing output images")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gancompress.deploy.runtime import describe, open_model
    from gancompress.imaging import list_images, read_image, save_image

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    source = Path(args.input)
    if source.is_dir():
        files = list_images(source)
        if not files:
            raise UserError(f"no images in {source} (png, jpg, bmp, tif, webp)")
    elif source.is_file():
        files = [source]
    else:
        raise UserError(f"--input {source} does not exist")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    targets = [out / f"{f.stem}.png" for f in files]
    if len({t.name for t in targets}) != len(targets):
        raise UserError(f"input images in {source} share names that differ only by extension; "
                        f"their outputs would overwrite each other")
    existing = [t for t in targets if t.exists()]
    if existing and not args.overwrite:
        raise UserError(f"{len(existing)} output image(s) exist already, e.g. {existing[0]}; "
                        f"choose another --out or pass --overwrite")

    runner = open_model(args.model, device=str(parse_device(args.device)), threads=args.threads,
                        test_mode=args.test_mode, seed=args.seed)
    if args.size:
        size = tuple(args.size)
        if hasattr(runner, "model"):  # the generator family's own size rule
            size = runner.model.check_size(size)
        elif any(v < 4 or v % 4 for v in size):
            raise UserError(f"--size {size[0]} {size[1]}: height and width must be positive "
                            f"multiples of 4")
    elif runner.input_size is not None:
        size = tuple(runner.input_size[2:])
    else:
        size = DEFAULT_SIZE
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for i in range(0, len(files), args.batch_size):
        chunk = files[i:i + args.batch_size]
        batch = torch.stack([read_image(f, runner.in_channels, size) for f in chunk])
        result = runner(batch)
        for image, target in zip(result, targets[i:i + args.batch_size]):
            save_image(image, target)
    elapsed = time.perf_counter() - start
    print(f"wrote {len(files)} image(s) to {out} with {describe(runner)} at {size[0]}x{size[1]} "
          f"({elapsed / len(files) * 1e3:.0f} ms per image incl. file I/O)")
    return 0
