"""`gancompress demo`: a local web page to draw on and see the generators side by side, live.

    gancompress demo runs/demo/compressed            # compact | teacher of a compression run
    gancompress demo a.pth b.pth --size 256 256      # any generator files
    gancompress demo my_weights.pth --arch mynets:MyNet --arch-args '{"ngf": 16}'
                                                     # weights of your own generator class

Needs the optional extra: pip install 'gancompress[demo]'. Binds 127.0.0.1 unless --host names
another address together with --public.
"""
from __future__ import annotations

import argparse

import shutil
import tempfile
from pathlib import Path

from gancompress.commands._common import (
    THREADS,
    add_user_arch_arguments,
    float_range,
    image_side,
    int_range,
    load_model_arg,
)
from gancompress.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="interactive web demo: draw, see compact and teacher outputs live",
        description="Serve a local web page for a compression run folder (its compact model, "
                    "teacher, report and searched Pareto front) or for generator files: draw or "
                    "upload an input and see every model's output with measured latency.")
    p.add_argument("paths", nargs="+", metavar="RUN_OR_MODELS",
                   help="a run folder written by `gancompress compress --out RUN` (optionally "
                        "followed by more model files), or generator files (.pth, .onnx)")
    p.add_argument("--port", type=int_range(0, 65535), default=0, help="port (default 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--public", action="store_true",
                   help="allow --host beyond this machine (prints a warning)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="another accepted Host header name (with --public)")
    p.add_argument("--teacher", help="the run's teacher file, when the recorded path moved")
    p.add_argument("--size", nargs=2, type=image_side, metavar=("H", "W"),
                   help="input size (default: the run's crop size, else 256 256)")
    p.add_argument("--backend", choices=["auto", "openvino", "onnx", "torch"], default="auto",
                   help="inference path (auto: OpenVINO if available, else onnxruntime, else "
                        "PyTorch)")
    p.add_argument("--threads", type=THREADS, help="intra-op threads per model session")
    p.add_argument("--cache", help="folder for ONNX exports and extracted sub-networks "
                                   "(default RUN/demo-cache, else ~/.cache/gancompress/demo)")
    p.add_argument("--max-body-mb", type=float_range(0.001, 65536.0), default=8.0, help="request body cap (8 MB)")
    p.add_argument("--max-megapixels", type=float_range(0.001, 100000.0), default=16.0,
                   help="uploaded image cap in megapixels (16)")
    add_user_arch_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gancompress.serve.server import check_host, require_demo_packages, serve

    require_demo_packages()
    check_host(args.host, args.public)  # before loading anything
    if args.threads is not None and args.threads < 1:
        raise UserError("--threads must be at least 1")
    if args.max_body_mb <= 0 or args.max_megapixels <= 0:
        raise UserError("--max-body-mb and --max-megapixels must be positive")
    from gancompress.serve.runners import Demo

    converted = tempfile.mkdtemp(prefix="gancompress-demo-arch-") if args.arch else None
    try:
        paths = _user_checkpoints(args, Path(converted)) if converted else args.paths
        demo = Demo.open(paths, size=tuple(args.size) if args.size else None,
                         backend=args.backend, threads=args.threads, cache=args.cache,
                         teacher=args.teacher)
        for pane in demo.models.values():  # the page sends images only
            model = getattr(pane.incremental, "model", None)
            if hasattr(model, "check_image_only"):  # a user's generator: its condition hook
                model.check_image_only()
        serve(demo, args.host, args.port, public=args.public, allow_hosts=args.allow_host,
              max_body=int(args.max_body_mb * 1024 * 1024),
              max_pixels=int(args.max_megapixels * 1e6))
    except KeyboardInterrupt:
        pass
    finally:
        if converted:
            shutil.rmtree(converted, ignore_errors=True)
    return 0


def _user_checkpoints(args: argparse.Namespace, folder: Path) -> list[Path]:
    """--arch module.path:ClassName: each path holds weights of that class; each is converted
    and saved as a checkpoint (named like the weights file) in `folder` for the demo to open."""
    from gancompress.deploy.runtime import file_kind
    from gancompress.models.checkpoint import save_generator

    paths = []
    for i, path in enumerate(Path(p) for p in args.paths):
        if path.is_dir():
            raise UserError(f"{path} is a folder: a compression run records its architecture "
                            f"and opens without --arch; with --arch give weights files")
        kind = file_kind(path)
        if kind != "checkpoint":
            raise UserError(f"--arch names the class of a weights file (a state dict); {path} "
                            f"is an exported {kind} file, which opens without --arch")
        args.model = str(path)
        target = folder / str(i) / f"{path.stem}.pth"  # the demo labels a model by its file
        target.parent.mkdir(parents=True)
        model = load_model_arg(args)
        model.check_image_only()  # further inputs: the page sends images only
        save_generator(model, target, meta={"weights": str(path)})
        paths.append(target)
    return paths
