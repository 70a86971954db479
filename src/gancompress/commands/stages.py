"""`gancompress distill | supernet | finetune`: one training stage of the pipeline on its own.

    gancompress distill --teacher runs/demo/generator.pth --data demo_data --out runs/c \\
        --preset demo compress.pipeline=original
    gancompress supernet --teacher runs/demo/generator.pth --data demo_data --out runs/c \\
        --preset demo --no-progress
    gancompress finetune --out runs/c compress.config=16_16_32_16_32_32_16_16

Same arguments and output folder as `gancompress compress` (which runs every stage); a finished
stage is skipped, an interrupted one resumes.
"""
from __future__ import annotations

import argparse

from gancompress.commands._options import list_keys
from gancompress.commands.compress import add_pipeline_arguments, run_pipeline

# stage name -> (one-line help, description)
STAGES = {
    "distill": ("pre-distill a fixed student from the teacher (original pipeline stage)",
                "Distil a student of the widest sub-network of the space from the teacher "
                "(original pipeline: initialised by L1-norm channel pruning of the mobile "
                "teacher) into OUT/distill/student.pth."),
    "supernet": ("train the once-for-all supernet by distillation",
                 "Train the once-for-all supernet (each step samples sub-network widths, "
                 "uniformly or by the sandwich rule) distilled from the teacher, into "
                 "OUT/supernet/supernet.pth."),
    "finetune": ("fine-tune the chosen sub-network inside the supernet",
                 "Fine-tune the sub-network chosen by the search (or compress.config=...) inside "
                 "the trained supernet, into OUT/finetune/supernet.pth."),
}


def register(sub: argparse._SubParsersAction) -> None:
    for stage, (help_text, description) in STAGES.items():
        p = sub.add_parser(stage, help=help_text, description=description + " Same arguments as "
                           "compress; a finished stage is skipped, an interrupted one resumes.")
        add_pipeline_arguments(p)
        p.set_defaults(func=run, stage=stage)


def run(args: argparse.Namespace) -> int:
    if args.list_keys:
        return list_keys()
    run_pipeline(args, [args.stage])
    return 0
