"""`gancompress generate`: run a generator (checkpoint, ONNX or TorchScript file) on image files.

Pre/post-processing as published (docs/reference.md sec. 3, 5): bicubic resize to --size, else the
size recorded in an exported file, else the size the model was trained at (checkpoint metadata),
else the family's reference size / 256x256 (the size used and its origin are printed),
[-1, 1] normalisation, output to uint8 by (y + 1) / 2 * 255, clipped and truncated.

Multimodal generators (MUNIT: a style code as second input) translate with `--style random`
(codes from N(0, I), seeded; the same codes for every input, as NVlabs test.py does) or
`--style IMAGE` (the style of that target-domain image; PyTorch checkpoints only, the exported
graph takes the code). `--n-styles K` writes a row of K translations per input.

    gancompress generate runs/demo-compact/compact.pth --input demo_data/test --out generated
    gancompress generate compact.onnx --input photo.png --out out --size 256 256 --overwrite
    gancompress generate munit.pth --input edges/ --out styles --style random --n-styles 4
    gancompress generate my_weights.pth --arch mynets:MyNet --input photos/ --out out
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gancompress.commands._common import (
    THREADS,
    add_test_mode_arguments,
    add_user_arch_arguments,
    image_side,
    int_range,
    load_model_arg,
)
from gancompress.commands._options import HIDDEN, add_device_argument, old
from gancompress.errors import UserError

if TYPE_CHECKING:
    import torch


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate", help="run a generator (checkpoint, .onnx, TorchScript .pt) on images",
        description="Translate image files with any generator file gancompress can load or has "
                    "exported, using the published pre/post-processing. Writes OUT/<name>.png.")
    p.add_argument("model", metavar="MODEL",
                   help="generator checkpoint, exported .onnx or TorchScript .pt file (with "
                        "--arch: the weights of your class)")
    p.add_argument("--input", required=True,
                   help="an image file or a folder of images (label-map generators, SPADE: label "
                        "PNGs holding class ids, or Cityscapes colours)")
    p.add_argument("--instances", metavar="DIR",
                   help="SPADE models with an instance-edge channel: folder of instance-id PNGs "
                        "named like the label maps (default: instances/ next to labels/, or "
                        "Cityscapes *_gtFine_instanceIds.png beside each label map)")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--size", nargs=2, type=image_side, metavar=("H", "W"),
                   help="resize inputs to H W (default: the size recorded in the model file or "
                        "trained at, else 256 256)")
    p.add_argument("--batch-size", type=int_range(1, 65536), default=1, help="images per forward pass (1)")
    add_device_argument(p)
    p.add_argument("--threads", type=THREADS, help="CPU threads (torch, onnxruntime and OpenVINO)")
    add_test_mode_arguments(p)
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing output images" + old("--force"))
    p.add_argument("--force", dest="overwrite", action="store_true", help=HIDDEN)
    p.add_argument("--style", metavar="random|IMAGE",
                   help="multimodal generators (MUNIT): random style codes (default) or the "
                        "style of a target-domain IMAGE")
    p.add_argument("--n-styles", type=int_range(1, 1024), default=1, metavar="K",
                   help="with --style random: K translations per input, side by side (default 1)")
    p.add_argument("--style-seed", type=int_range(0, 2**32 - 1), default=10,
                   help="seed of the random style codes (default 10, as NVlabs test.py)")
    add_user_arch_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from gancompress.deploy.runtime import describe, open_model
    from gancompress.devices import parse_device
    from gancompress.files import check_writable, output_lock
    from gancompress.imaging import list_images, save_image
    from gancompress.models.checkpoint import evaluation_size

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto" and Path(args.model).suffix.lower() in (".onnx", ".xml"):
        args.device = "cpu"  # exported graphs run on the CPU here; auto must not pick CUDA
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
    runner = _user_model(args, device) if args.arch else \
        open_model(args.model, device=device, threads=args.threads, test_mode=args.test_mode,
                   seed=args.seed)
    if args.size:
        size, origin = tuple(args.size), "as given"
        if hasattr(getattr(runner, "model", None), "check_size"):  # the family's size rule
            size = runner.model.check_size(size)
    elif runner.input_size is not None:
        size, origin = tuple(runner.input_size[2:]), "recorded in the exported file"
    else:
        size, origin = evaluation_size(getattr(runner, "model", None))
    styles = _styles(args, runner, size)
    # every input decodes (and suits the model) before anything is written
    runner.check_inputs(files, size, args.instances)
    with output_lock(out, "generate"):
        # Checked under the lock: another process cannot add outputs between check and write.
        existing = [t for t in targets if t.exists()]
        if existing and not args.overwrite:
            raise UserError(f"{len(existing)} output image(s) exist already, e.g. {existing[0]}; "
                            f"choose another --out or pass --overwrite")
        start = time.perf_counter()
        for i in range(0, len(files), args.batch_size):
            chunk = files[i:i + args.batch_size]
            batch = torch.stack([runner.read_input(f, size, args.instances) for f in chunk])
            if styles is None:
                result = runner(batch)
            else:  # one translation per style code, side by side: (B, C, H, K * W)
                result = torch.cat([runner(batch, style.expand(len(batch), *style.shape[1:]))
                                    for style in styles], dim=3)
            for image, target in zip(result, targets[i:i + args.batch_size]):
                save_image(image, target, overwrite=args.overwrite)
        elapsed = time.perf_counter() - start
    what = "" if styles is None else f", {len(styles)} style(s) per image"
    print(f"wrote {len(files)} image(s) to {out} with {describe(runner)} at {size[0]}x{size[1]}"
          f"{what} ({origin}; {elapsed / len(files) * 1e3:.0f} ms per image incl. file I/O)")
    return 0


def _user_model(args: argparse.Namespace, device: str):
    """--arch module.path:ClassName: MODEL holds the weights of the user's class."""
    from gancompress.deploy.runtime import TorchRunner, file_kind

    kind = file_kind(args.model)
    if kind != "checkpoint":
        raise UserError(f"--arch names the class of a weights file (a state dict); {args.model} "
                        f"is an exported {kind} file, which runs without --arch")
    return TorchRunner(load_model_arg(args, device=device), device=device,
                       test_mode=args.test_mode, seed=args.seed)


def _styles(args: argparse.Namespace, runner, size: tuple[int, int]) -> list[torch.Tensor] | None:
    """The style codes to translate with (each (1, *shape)), or None for a one-input model."""
    import torch

    from gancompress.imaging import read_image

    extra = runner.extra_inputs
    model = getattr(runner, "model", None)
    if extra and hasattr(model, "check_image_only"):  # a user's generator: its condition hook
        model.check_image_only()
    if not extra:
        if args.style is not None or args.n_styles != 1:
            raise UserError("--style / --n-styles apply to multimodal generators (MUNIT); this "
                            "model takes an image only")
        return None
    if len(extra) != 1:
        raise UserError(f"this model takes further inputs {', '.join(extra)}; generate supports "
                        f"one style code")
    if args.n_styles < 1:
        raise UserError("--n-styles must be at least 1")
    shape = next(iter(extra.values()))
    mode = args.style or "random"
    if mode == "random":
        if any(v < 1 for v in shape):
            raise UserError(f"the style input has an unknown shape {shape}; export it again")
        gen = torch.Generator().manual_seed(args.style_seed)
        return [torch.randn(1, *shape, generator=gen) for _ in range(args.n_styles)]
    if args.n_styles != 1:
        raise UserError("--n-styles K draws K random styles; with --style IMAGE there is one "
                        "style (the image's)")
    model = getattr(runner, "model", None)
    if model is None or not hasattr(model, "style_of"):
        raise UserError(f"--style IMAGE needs the style encoder, which the {runner.kind} file "
                        f"does not hold (its graph takes the style code); use the PyTorch "
                        f"checkpoint, or --style random")
    path = Path(mode)
    if not path.is_file():
        raise UserError(f"--style {mode}: not 'random' and not an image file")
    image = read_image(path, int(model.arch.get("out_channels", 3)), size)
    with torch.inference_mode():
        return [model.style_of(image.unsqueeze(0).to(runner.device)).float().cpu()]
