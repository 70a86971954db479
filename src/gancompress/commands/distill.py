"""`gancompress distill`: the distill stage of the compression pipeline on its own.

    gancompress distill --teacher T --data D --out DIR [--preset NAME] [key=value ...]
Same arguments and output folder as `gancompress compress` (which runs every stage).
"""
from __future__ import annotations

import argparse

from gancompress.commands.compress import add_pipeline_arguments, run_pipeline


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "distill", help="pre-distill a fixed student from the teacher (original pipeline stage)",
        description=("Distil a student of the widest sub-network of the space from the teacher "
                     "(original pipeline: initialised by L1-norm channel pruning of the mobile "
                     "teacher) into OUT/distill/student.pth. Same arguments as compress; a "
                     "finished stage is skipped, an interrupted one resumes."))
    add_pipeline_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    run_pipeline(args, ["distill"])
    return 0
