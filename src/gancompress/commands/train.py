"""`gancompress train`: train a pix2pix / CycleGAN teacher (or any registered task) in a run folder.

    gancompress train --preset demo --data demo_data --out runs/demo
    gancompress train --preset pix2pix-edges2shoes-r --data edges2shoes --out runs/e2s \\
        model.conv=separable
    gancompress train --out runs/e2s --resume            # continue after a crash or pre-emption
    gancompress train --preset demo --data demo_data --dry-run   # print the config, check the data
    gancompress train --preset demo --data demo_data --dry-run > demo.json
    gancompress train --config demo.json --out runs/demo2 train.lr=1e-4   # the same, one change
    gancompress train --preset demo --data demo_data --out runs/demo train.tensorboard=true
"""
from __future__ import annotations

import argparse
from pathlib import Path

from gancompress.commands._options import (
    add_device_argument,
    add_override_arguments,
    add_progress_argument,
    config_from_file,
    list_keys,
    option_overrides,
)
from gancompress.config import PRESETS, apply_overrides, preset, validate
from gancompress.errors import UserError


def _is_training(name: str) -> bool:
    """compress-* presets are compression recipes (gancompress compress --preset), not teachers."""
    return not name.startswith("compress-")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a teacher (pix2pix, CycleGAN) with resumable checkpoints",
        description="Train a generator/discriminator pair in a run folder (config.json, log.jsonl, "
                    "checkpoint.pt, samples/, generator*.pth). Settings come from --preset and "
                    "section.field=value overrides.",
        epilog="presets:\n" + "\n".join(f"  {p.name}: {p.description}"
                                         for p in PRESETS.values() if _is_training(p.name)),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_override_arguments(parser, "train.batch_size=4 model.ngf=32")
    parser.add_argument("--preset", help="recipe to start from (listed below)")
    parser.add_argument("--data", help="dataset folder (aligned train/ test/, unaligned trainA/ "
                                       "trainB/ ..., or a folder of images)")
    parser.add_argument("--out", help="run folder to create (or to continue with --resume)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the resolved config and check the data; write nothing")
    add_device_argument(parser, "train.device")
    add_progress_argument(parser)
    parser.set_defaults(func=run)



def run(args: argparse.Namespace) -> int:
    if args.list_keys:
        return list_keys()
    from gancompress.compress.tasks import train
    from gancompress.training.loop import load_run_config, steps_for

    if args.resume and not args.out:
        raise UserError("--resume needs --out RUN_FOLDER (the run to continue)")
    if args.config and args.preset:
        raise UserError("--config FILE holds the complete settings (a preset's included); give "
                        "--config or --preset, not both")
    if args.config:
        cfg = config_from_file(args.config)
    elif args.preset:
        cfg = preset(args.preset)
    elif args.resume and (Path(args.out) / "config.json").is_file():
        cfg = load_run_config(args.out)
    else:
        names = ", ".join(n for n in PRESETS if _is_training(n))
        raise UserError(f"choose a recipe with --preset NAME (available: {names}) or a "
                        f"settings file with --config FILE.json"
                        + (f"; {args.out} has no run to resume" if args.resume else ""))
    if args.data:
        cfg.data.root = str(args.data)
    elif args.resume and cfg.data.root and not Path(cfg.data.root).exists():
        raise UserError(f"dataset folder {cfg.data.root}, recorded in "
                        f"{Path(args.out) / 'config.json'}, does not exist (moved or deleted?); "
                        f"pass --data DIR to give its new place")
    cfg = validate(apply_overrides(cfg, option_overrides(args)))

    if args.dry_run:
        print(cfg.to_json(), end="")
        if cfg.data.root:
            spe, total = steps_for(cfg)
            print(f"# data: {cfg.data.root}: {spe} steps per epoch at batch "
                  f"{cfg.train.batch_size} per process, {total} steps in total")
        else:
            print("# data: not given (--data DIR)")
        return 0
    if not args.out:
        raise UserError("give the run folder with --out DIR")
    from gancompress.distributed import print0

    result = train(cfg, args.out, resume=args.resume)
    print0(f"trained {result['steps']} steps in {result['elapsed_s']:.0f} s; run folder "
          f"{result['out_dir']}")
    for path in result["exported"]:
        print0(f"generator: {path}")
    return 0
