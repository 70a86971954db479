"""`gancompress finetune`: the finetune stage of the compression pipeline on its own.

    gancompress finetune --teacher T --data D --out DIR [--preset NAME] [key=value ...]
Same arguments and output folder as `gancompress compress` (which runs every stage).
"""
from __future__ import annotations

import argparse

from gancompress.commands.compress import add_pipeline_arguments, run_pipeline


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune", help="fine-tune the chosen sub-network inside the supernet",
        description=("Fine-tune the sub-network chosen by the search (or compress.config=...) "
                     "inside the trained supernet, into OUT/finetune/supernet.pth. Same "
                     "arguments as compress; a finished stage is skipped, an interrupted one "
                     "resumes."))
    add_pipeline_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    run_pipeline(args, ["finetune"])
    return 0
