"""`gancompress supernet`: the supernet stage of the compression pipeline on its own.

    gancompress supernet --teacher T --data D --out DIR [--preset NAME] [key=value ...]
Same arguments and output folder as `gancompress compress` (which runs every stage).
"""
from __future__ import annotations

import argparse

from gancompress.commands.compress import add_pipeline_arguments, run_pipeline


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "supernet", help="train the once-for-all supernet by distillation",
        description=("Train the once-for-all supernet (each step samples sub-network widths, "
                     "uniformly or by the sandwich rule) distilled from the teacher, into "
                     "OUT/supernet/supernet.pth. Same arguments as compress; a finished stage is "
                     "skipped, an interrupted one resumes."))
    add_pipeline_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    run_pipeline(args, ["supernet"])
    return 0
