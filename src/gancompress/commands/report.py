"""`gancompress report`: teacher vs compact generator side by side.

    gancompress report --out runs/demo-compact           # the report stage of a compression
    gancompress report --teacher T.pth --model compact.pth --data D --out DIR [--held-out FILE]

Params, MACs (published convention, at the data's size and at 256x256), measured latency
(batch 1, conditions recorded), quality on held-out training images (L1 / PSNR to the ground
truth, or to the teacher on unpaired data) and an image grid input | teacher | compact | target.
Writes report.md, report.json and grid.png, and prints the Markdown.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gancompress.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="teacher vs compact: params, MACs, latency, quality, images",
                       description="Compare a teacher and its compact generator and write "
                                   "report.md / report.json / grid.png.")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="a compression folder (report its result), or a new report folder")
    p.add_argument("--teacher", metavar="FILE", help="teacher generator (standalone report)")
    p.add_argument("--model", metavar="FILE", help="compact generator (standalone report)")
    p.add_argument("--data", metavar="DIR", help="training data (default: the compact model's)")
    p.add_argument("--held-out", metavar="FILE",
                   help="held-out training images (default: the compression's held-out slice)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if not args.model:
        if not (out / "compress.json").is_file():
            raise UserError(f"{out} is not a compression folder; for a standalone report give "
                            f"--teacher, --model and --data")
        from gancompress.compress.pipeline import Pipeline, folder_config
        cfg = folder_config(args.out, data=args.data)
        Pipeline(cfg, out).run(["report"])
        print((out / "report" / "report.md").read_text())
        return 0

    from gancompress.compress.run import device_for
    from gancompress.compress.stages import report_files
    from gancompress.compress.tasks import load_teacher
    from gancompress.config import Config
    from gancompress.data.folders import read_file_list
    from gancompress.files import folder_is_empty, output_lock
    from gancompress.models.checkpoint import evaluation_size, load_generator

    if not args.teacher:
        raise UserError("a standalone report needs --teacher FILE as well as --model")
    if out.exists() and (not out.is_dir() or not folder_is_empty(out)):
        raise UserError(f"{out} exists and is not empty; choose a new --out (nothing was changed)")
    compact = load_generator(args.model)  # any generator format; a bad file is one line
    meta = compact.meta
    cfg = Config.from_saved(meta.get("train_config"), source=f"{args.model} metadata")
    (size, _), origin = evaluation_size(compact)
    if not meta.get("train_config"):
        cfg.data.crop_size = cfg.data.load_size = size
    print(f"gancompress report: measuring at {size}x{size}, {origin}", file=sys.stderr)
    if args.data:
        cfg.data.root = str(args.data)
    held = args.held_out or cfg.data.exclude_list
    if not held:
        raise UserError("which training images are held out? pass --held-out FILE (one path per "
                        "line, relative to the data folder)")
    device = device_for(cfg)
    teacher = load_teacher(args.teacher, device)
    with output_lock(out, "report"):
        if not folder_is_empty(out):
            raise UserError(f"{out} is not empty; choose a new --out (nothing was changed)")
        report_files(cfg, teacher, args.model, read_file_list(held), out, device,
                     meta={"config": meta.get("config"), "teacher_path": args.teacher,
                           "compact_path": args.model, "size_origin": origin})
    print((out / "report.md").read_text())
    return 0
