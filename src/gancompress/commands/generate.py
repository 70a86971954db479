"""`gancompress generate`: run a generator (checkpoint, ONNX or TorchScript file) on image files.

Pre/post-processing as published (REFERENCE.md sec. 3, 5): bicubic resize to --size, else the
size recorded in an exported file, else the size the model was trained at (checkpoint metadata),
else the family's reference size / 256x256 (the size used and its origin are printed),
[-1, 1] normalisation, output to uint8 by (y + 1) / 2 * 255, clipped and truncated.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from gancompress.commands._common import THREADS, add_test_mode_arguments, image_side, int_range
from gancompress.devices import parse_device
from gancompress.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate", help="run a generator (checkpoint, .onnx, TorchScript .pt) on images",
        description="Translate image files with any generator file gancompress can load or has "
                    "exported, using the published pre/post-processing. Writes OUT/<name>.png.")
    p.add_argument("model", help="generator checkpoint, exported .onnx or TorchScript .pt file")
    p.add_argument("--input", required=True, help="an image file or a folder of images")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--size", nargs=2, type=image_side, metavar=("H", "W"),
                   help="resize inputs to H W (default: the size recorded in the model file or "
                        "trained at, else 256 256)")
    p.add_argument("--batch-size", type=int_range(1, 65536), default=1, help="images per forward pass (1)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (PyTorch models)")
    p.add_argument("--threads", type=THREADS, help="CPU threads (torch, onnxruntime and OpenVINO)")
    add_test_mode_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing output images")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gancompress.deploy.runtime import describe, open_model
    from gancompress.files import check_writable, output_lock
    from gancompress.imaging import check_images, list_images, read_image, save_image
    from gancompress.models.checkpoint import evaluation_size

    if args.threads:
        torch.set_num_threads(args.threads)
    device = str(parse_device(args.device))  # a missing device fails before anything else
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
    check_writable(out, folder=True)
    runner = open_model(args.model, device=device, threads=args.threads,
                        test_mode=args.test_mode, seed=args.seed)
    if args.size:
        size, origin = tuple(args.size), "as given"
        if hasattr(runner, "model"):  # the generator family's own size rule
            size = runner.model.check_size(size)
    elif runner.input_size is not None:
        size, origin = tuple(runner.input_size[2:]), "recorded in the exported file"
    else:
        size, origin = evaluation_size(getattr(runner, "model", None))
    check_images(files, runner.in_channels)  # every input decodes before anything is written
    with output_lock(out, "generate"):
        # Checked under the lock: another process cannot add outputs between check and write.
        existing = [t for t in targets if t.exists()]
        if existing and not args.overwrite:
            raise UserError(f"{len(existing)} output image(s) exist already, e.g. {existing[0]}; "
                            f"choose another --out or pass --overwrite")
        start = time.perf_counter()
        for i in range(0, len(files), args.batch_size):
            chunk = files[i:i + args.batch_size]
            batch = torch.stack([read_image(f, runner.in_channels, size) for f in chunk])
            result = runner(batch)
            for image, target in zip(result, targets[i:i + args.batch_size]):
                save_image(image, target, overwrite=args.overwrite)
        elapsed = time.perf_counter() - start
    print(f"wrote {len(files)} image(s) to {out} with {describe(runner)} at {size[0]}x{size[1]} "
          f"({origin}; {elapsed / len(files) * 1e3:.0f} ms per image incl. file I/O)")
    return 0
