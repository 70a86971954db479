"""`gancompress convert`: any supported generator checkpoint -> our self-describing format.

    gancompress convert latest_net_G.pth --out teacher.pth
    gancompress convert 200_net_G.pth --out gaugan.pth --hint num_upsampling_layers=more
"""
from __future__ import annotations

import argparse
from pathlib import Path

from gancompress.commands._options import add_overwrite_argument
from gancompress.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert a published checkpoint to the gancompress format",
                       description="Open a generator checkpoint (pytorch-CycleGAN-and-pix2pix, "
                                   "gan-compression full/mobile/supernet/compressed, or ours) and "
                                   "write it in the gancompress format, which carries its "
                                   "architecture so no flags are needed later.")
    p.add_argument("input", metavar="MODEL", help="checkpoint to read")
    p.add_argument("--out", required=True, help="file to write")
    add_overwrite_argument(p)
    p.add_argument("--hint", action="append", default=[], metavar="NAME=VALUE",
                   help="what a published file does not store, named as in the reference "
                        "options, e.g. num_upsampling_layers=more for a GauGAN generator "
                        "(repeatable)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gancompress.files import check_output_file, check_writable
    from gancompress.metrics.cost import count_params
    from gancompress.models.checkpoint import load_generator, save_generator

    out = Path(args.out)
    check_output_file(out, args.overwrite, example="generator.pth")
    check_writable(out)
    model = load_generator(args.input, **parse_hints(args.hint))
    save_generator(model, out, meta={"converted_from": str(args.input),
                                     "source_format": model.source_format},
                   overwrite=args.overwrite)
    args_text = ", ".join(f"{k}={v}" for k, v in model.arch.items() if k != "widths")
    print(f"read {args.input} as {model.source_format}: {model.arch_name} ({args_text}), "
          f"widths {model.arch['widths']}, {count_params(model):,} params")
    print(f"wrote {out}")
    return 0


def parse_hints(items: list[str]) -> dict[str, str]:
    """['num_upsampling_layers=more'] -> {'num_upsampling_layers': 'more'}."""
    hints = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--hint {item!r}: use NAME=VALUE, e.g. num_upsampling_layers=more")
        hints[name.strip()] = value.strip()
    return hints
