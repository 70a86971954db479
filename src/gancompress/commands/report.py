"""`gancompress report`: teacher vs compact generator side by side.

    gancompress report runs/demo-compact                 # the report stage of a compression
    gancompress report compact.pth --teacher T.pth --data D --out DIR --held-out held.txt

Params, MACs (published convention, at the data's size and at 256x256), measured latency
(batch 1, conditions recorded), quality on held-out training images (L1 / PSNR to the ground
truth, or to the teacher on unpaired data) and an image grid input | teacher | compact | target.
Writes report.md, report.json and grid.png, and prints the Markdown; a compression folder also
gets its model card RUN/README.md (front matter for a model hub: license, library_name, tags,
teacher SHA-256, budget, metrics, MACs, params, latency with its conditions).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gancompress.commands._options import HIDDEN, old, run_or_file
from gancompress.commands.compress import add_license_argument
from gancompress.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="teacher vs compact: params, MACs, latency, quality, images",
                       description="Compare a teacher and its compact generator and write "
                                   "report.md / report.json / grid.png.")
    p.add_argument("run", nargs="?", metavar="RUN_OR_MODEL",
                   help="a compression folder (writes RUN/report), or a compact generator file "
                        "for a standalone report (with --teacher and --out)"
                        + old("--out RUN", "--model FILE"))
    p.add_argument("--out", metavar="DIR",
                   help="the new folder of a standalone report (the old spelling of RUN "
                        "otherwise)")
    p.add_argument("--teacher", metavar="FILE", help="teacher generator (standalone report)")
    p.add_argument("--model", metavar="FILE", help=HIDDEN)  # = a MODEL file
    p.add_argument("--data", metavar="DIR", help="training data (default: the compact model's)")
    p.add_argument("--held-out", metavar="FILE",
                   help="held-out training images (default: the compression's held-out slice)")
    add_license_argument(p)
    p.set_defaults(func=run)


def _target(args: argparse.Namespace) -> None:
    """Sort out RUN_OR_MODEL, --model and --out (the old forms: report --out RUN, report
    --model M --teacher T --out DIR)."""
    target = args.run
    run_or_file(args, target, "model", "model",
                f"report {target} writes {Path(target or '.') / 'report'} of that compression "
                f"folder; --out is for a standalone report of a model file",
                "give the compression folder (gancompress report RUN), or a model file with "
                "--teacher and --out DIR for a standalone report")


def run(args: argparse.Namespace) -> int:
    _target(args)
    out = Path(args.out)
    if not args.model:
        if not (out / "compress.json").is_file():
            raise UserError(f"{out} is not a compression folder; for a standalone report give "
                            f"the model file, --teacher, --data and --out")
        from gancompress.compress.pipeline import Pipeline, folder_config
        cfg = folder_config(args.out, data=args.data)
        Pipeline(cfg, out).run(["report"])
        from gancompress.compress.model_card import write_model_card

        card = write_model_card(out, args.license)
        print((out / "report" / "report.md").read_text())
        print(f"model card: {card}")
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
