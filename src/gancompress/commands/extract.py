"""`gancompress extract`: a supernet's sub-network as a standalone compact generator.

    gancompress extract runs/c/finetune/supernet.pth --widths 16_16_32_16_32_32_16_16 --out g.pth
    gancompress extract runs/c --widths 16_16_32_16_32_32_16_16 --out g.pth --overwrite

The output is our self-describing checkpoint (architecture, widths, the config string, the
supernet it came from): `load_generator(g.pth)` opens it with no flags, and `gancompress export`
turns it into ONNX / TorchScript. Named extract because export is the deployment exporter.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from gancompress.commands._options import HIDDEN, add_overwrite_argument, old
from gancompress.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("extract", help="cut a sub-network out of a supernet as a compact model",
                       description="Build the compact generator of one sub-network of a trained "
                                   "supernet (weights cropped, same outputs as the supernet at "
                                   "those widths) and save it as a standalone checkpoint.")
    p.add_argument("supernet", metavar="SUPERNET",
                   help="supernet.pth, or a compression folder (its fine-tuned supernet)")
    p.add_argument("--widths", metavar="CONFIG",
                   help="sub-network config string of the family, e.g. 16_16_32_16_32_32_16_16 "
                        "(required)" + old("--config"))
    p.add_argument("--config", dest="widths", help=HIDDEN)  # the old spelling
    p.add_argument("--out", required=True, metavar="FILE", help="compact checkpoint to write")
    add_overwrite_argument(p)
    p.add_argument("--data", metavar="DIR", help="training data for BatchNorm re-calibration "
                                                 "(default: the supernet's, from its metadata)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gancompress.compress.supernet import extract_file
    from gancompress.metrics.cost import format_count

    if not args.widths:
        raise UserError("which sub-network? give its config string with --widths CONFIG, e.g. "
                        "--widths 16_16_32_16_32_32_16_16 (search/best.json holds the best one)")
    source = Path(args.supernet)
    if source.is_dir():
        for candidate in (source / "finetune" / "supernet.pth",
                          source / "supernet" / "supernet.pth", source / "supernet.pth"):
            if candidate.is_file():
                source = candidate
                break
        else:
            raise UserError(f"{args.supernet} holds no supernet.pth (nor finetune/ or supernet/ "
                            f"with one)")
    from gancompress.files import check_output_file, check_writable
    check_output_file(args.out, args.overwrite, example="compact.pth")
    check_writable(args.out)
    info = extract_file(source, args.widths, args.out, force=args.overwrite, data=args.data)
    h, w = info["macs_size"]
    print(f"wrote {args.out}: sub-network {info['config']} of {source} "
          f"({format_count(info['macs_ref'])} MACs at {h}x{w}"
          + (", BatchNorm re-calibrated" if info["bn_recalibrated"] else "") + ")")
    return 0
