"""`gancompress compress`: teacher -> compact generator at a budget, in one resumable command.

    gancompress compress --teacher runs/demo/generator.pth --data demo_data --budget 1/10 \\
        --out runs/demo-compact --preset demo
    gancompress compress --out runs/demo-compact          # resume: finished stages are skipped
    gancompress compress --teacher runs/demo/generator.pth --data demo_data --preset demo \\
        --out runs/c2 --dry-run > c2.json                  # the settings, checked
    gancompress compress --config c2.json --out runs/c2 compress.generations=10

Stages (gancompress.compress.pipeline): [mobile, distill (original pipeline)] -> supernet -> search ->
finetune -> extract -> report. Each is also a command of its own (distill, supernet, search,
finetune, extract, report). This module also holds the argument handling they share.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from gancompress.commands._common import add_user_arch_arguments
from gancompress.commands._options import (
    add_device_argument,
    add_override_arguments,
    add_progress_argument,
    config_from_file,
    list_keys,
    option_overrides,
)
from gancompress.errors import UserError


def compress_presets() -> list[str]:
    """The compression recipes (config presets compress-NAME), without importing the pipeline."""
    from gancompress.config import PRESETS

    return [name[len("compress-"):] for name in PRESETS if name.startswith("compress-")]


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by compress and the stage commands that train (distill, supernet, ...)."""
    add_override_arguments(parser, "compress.space=channels-48 compress.sampling=sandwich")
    parser.add_argument("--teacher", metavar="FILE", help="teacher generator checkpoint (ours, or "
                        "a pytorch-CycleGAN-and-pix2pix / gan-compression ResNet state dict)")
    parser.add_argument("--data", metavar="DIR", help="the teacher's training data folder")
    parser.add_argument("--budget", metavar="B", help="MACs (3e9, 3G), fraction of the teacher "
                        "(1/20, 5%%) or latency (30ms)")
    parser.add_argument("--runtime", metavar="NAME",
                        help="deployment runtime a latency budget (--budget 8ms) is measured "
                             "on: torch, onnx (onnxruntime fp32), openvino (fp32), "
                             "openvino-bf16, openvino-int8 (sets compress.latency_backend)")
    parser.add_argument("--out", metavar="DIR",
                        help="output folder (created; rerun with it to resume)")
    parser.add_argument("--preset", metavar="NAME",
                        help=f"compression recipe: {', '.join(compress_presets())}")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the resolved settings and run the checks; train nothing")
    add_device_argument(parser, "train.device")
    add_progress_argument(parser)


def config_from_args(args: argparse.Namespace):
    if args.budget is not None and not str(args.budget).strip():
        raise UserError("--budget is empty; give MACs (3e9, 3G), a fraction of the teacher "
                        "(1/20, 5%) or a latency (30ms), or omit it to use the preset's")
    overrides = option_overrides(args)
    if getattr(args, "runtime", None) is not None:
        overrides = _runtime_override(args.runtime, overrides)
    if args.config:
        if args.preset:
            raise UserError("--config FILE holds the complete settings (the recipe's included); "
                            "give --config or --preset, not both")
        # The file is the whole config: the teacher's settings are not read again on top of it.
        from gancompress.compress.pipeline import compress_config

        base = config_from_file(args.config)
        if args.teacher:
            base.compress.teacher = str(args.teacher)
        args.teacher = base.compress.teacher or None
        return compress_config(data=args.data, budget=args.budget, overrides=overrides,
                               base=base)
    from gancompress.compress.pipeline import folder_config

    return folder_config(args.out, teacher=args.teacher, data=args.data, budget=args.budget,
                         preset_name=args.preset, overrides=overrides)


def _runtime_override(name: str, overrides: list[str]) -> list[str]:
    """--runtime NAME as the override compress.latency_backend=NAME, checked here (the package
    and the CPU's precision) so that a run fails before any training."""
    from gancompress.compress.latency import check_runtime

    if not str(name).strip():
        raise UserError("--runtime is empty; give torch, onnx, openvino, openvino-bf16 or "
                        "openvino-int8")
    runtime = check_runtime(name)
    given = [o for o in overrides if o.split("=", 1)[0].strip() == "compress.latency_backend"]
    if given and given[0].split("=", 1)[1].strip() not in (name, runtime):
        raise UserError(f"--runtime {name} and {given[0]} disagree; give one of them")
    return [o for o in overrides if o not in given] + [f"compress.latency_backend={runtime}"]


def run_pipeline(args: argparse.Namespace, stages: Sequence[str] | None = None) -> dict | None:
    if not args.out:
        raise UserError("give the output folder with --out DIR (a new one, or a compression "
                        "folder to resume)")
    from gancompress.compress.pipeline import Pipeline, inherited_from_teacher

    if getattr(args, "arch", None):  # a user's generator class: convert, save as the teacher
        args.teacher = _user_teacher(args)
    cfg = config_from_args(args)
    if args.teacher:
        inherited = inherited_from_teacher(args.teacher)
        print(f"# from the teacher's training run: {', '.join(inherited) or 'nothing recorded'}"
              f"; stage settings (epochs, steps, checkpoint cadence) come from the recipe")
    if args.dry_run:
        pipeline = Pipeline(cfg, args.out)
        held_out = pipeline.check()  # checks first: a failing one is the last line printed
        print(cfg.to_json(), end="")
        print(f"# checks passed; stages: {', '.join(stages or pipeline.stages())}; "
              f"{len(held_out)} training images held out for scoring")
        return None
    return Pipeline(cfg, args.out).run(stages)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compress", help="teacher -> compact generator at a budget (all stages, resumable)",
        description="Compress a generator: [mobile teacher, pre-distilled student (original "
                    "pipeline)] -> once-for-all supernet distilled from the teacher -> search "
                    "under the budget -> fine-tune -> extract the compact model -> report. "
                    "Stages whose outputs exist in --out are skipped, so rerunning the same "
                    "command resumes.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="outputs: OUT/compact.pth (open with load_generator), OUT/README.md (a model "
               "card: the folder can be uploaded to a model hub as it is), "
               "OUT/report/report.md, OUT/search/pareto.png, OUT/search/results.jsonl")
    add_pipeline_arguments(p)
    add_license_argument(p)
    add_user_arch_arguments(p, "--teacher", ", converted and saved next to OUT as "
                                            "OUT.teacher.pth")
    p.set_defaults(func=run)


def add_license_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--license", metavar="ID", default="other",
                        help="license identifier written into the model card OUT/README.md "
                             "(default: other; the weights carry the teacher's and the data's "
                             "terms)")


def _user_teacher(args: argparse.Namespace) -> str:
    from gancompress.models.checkpoint import save_generator
    from gancompress.models.traced import cli_traced

    if ":" not in args.arch:
        raise UserError(f"--arch names your generator class as module.path:ClassName, got "
                        f"{args.arch!r} (a registered family's checkpoint needs no --arch)")
    args.model = args.teacher  # its weights (none: the class's own initialisation)
    # next to OUT, not in it: the pipeline starts only in a new or empty folder
    out = Path(args.out)
    path = out.parent / f"{out.name}.teacher.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_generator(cli_traced(args), path, meta={"weights": args.teacher})
    return str(path)


def run(args: argparse.Namespace) -> int:
    if args.list_keys:
        return list_keys()
    result = run_pipeline(args)
    if result is None:
        return 0
    from gancompress.distributed import is_main

    if "report_md" in result and is_main():
        from gancompress.compress.model_card import write_model_card

        card = write_model_card(args.out, args.license)  # the model card, from the report
        print()
        print(result["report_md"])
        print(f"compact model: {Path(args.out) / 'compact.pth'}; report: "
              f"{Path(args.out) / 'report' / 'report.md'}; model card: {card}")
    return 0
