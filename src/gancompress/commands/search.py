"""`gancompress search`: find the best sub-network of a supernet under a budget.

    gancompress search runs/demo-compact                     # the search stage of a compression
    gancompress search runs/demo-compact/supernet/supernet.pth --budget 1/20 --out s20
    gancompress search S.pth --budget 30ms --out runs/s30ms compress.generations=20

Budgets: MACs (3e9, 3G), a fraction of the teacher (1/20, 5%) or a latency (30ms, predicted by
the latency model). Sub-networks are scored on a held-out slice of the training data (the one
the compression kept aside, or --held-out FILE); scores are cached in OUT/results.jsonl, so a
killed search resumes where it stopped. Writes best.json and pareto.png.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from gancompress.commands._options import (
    HIDDEN,
    add_device_argument,
    add_override_arguments,
    add_progress_argument,
    list_keys,
    old,
    option_overrides,
    run_or_file,
)
from gancompress.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search", help="search the supernet for the best sub-network under a budget",
        description="Evolutionary (published defaults) or exhaustive search of a supernet's "
                    "sub-networks under a MACs / fraction / latency budget, scored on held-out "
                    "training images; resumable, results streamed to results.jsonl.")
    p.add_argument("run", nargs="?", metavar="RUN_OR_SUPERNET",
                   help="a compression folder (runs its search stage, into RUN/search) or a "
                        "supernet.pth to search on its own (with --out)"
                        + old("--out RUN", "--supernet FILE"))
    add_override_arguments(p, "compress.generations=50 compress.metric=psnr", config_file=False)
    p.add_argument("--supernet", metavar="FILE", help=HIDDEN)  # = a SUPERNET file
    p.add_argument("--out", metavar="DIR",
                   help="output folder of a standalone search (a supernet file); the old "
                        "spelling of RUN otherwise")
    p.add_argument("--budget", metavar="B", help="3e9, 3G, 1/20, 5%%, 30ms")
    p.add_argument("--method", choices=["evolution", "exhaustive"],
                   help="search method (default: compress.search, evolution)")
    p.add_argument("--data", metavar="DIR", help="training data (default: the supernet's)")
    p.add_argument("--teacher", metavar="FILE",
                   help="teacher (default: the supernet's); needed for fractional budgets and "
                        "unpaired data")
    p.add_argument("--held-out", metavar="FILE",
                   help="file list of the held-out training images to score on (default: the "
                        "slice the compression kept aside)")
    add_device_argument(p, "train.device")
    add_progress_argument(p)
    p.set_defaults(func=run)


def _target(args: argparse.Namespace) -> list[str]:
    """Sort out RUN_OR_SUPERNET, --supernet and --out (old and new forms); the overrides."""
    extra = []
    target = args.run
    if target and "=" in target and not Path(target).exists():
        extra, target = [target], None  # `search --out RUN k=v`: argparse gave k=v to RUN
    run_or_file(args, target, "supernet", "supernet",
                f"search {target} runs the search stage of that compression folder (into "
                f"{Path(target or '.') / 'search'}); --out is for a standalone search of a "
                f"supernet file",
                "give the compression folder (gancompress search RUN) or a supernet file and "
                "an output folder (gancompress search S.pth --out DIR)")
    return extra


def run(args: argparse.Namespace) -> int:
    if args.list_keys:
        return list_keys()
    args.overrides = _target(args) + list(args.overrides)
    from gancompress.compress.pipeline import Pipeline
    from gancompress.compress.run import device_for
    from gancompress.compress.stages import search_supernet
    from gancompress.compress.supernet import load_supernet
    from gancompress.config import Config, apply_overrides, validate

    overrides = option_overrides(args)
    if args.method:
        overrides.append(f"compress.search={args.method}")
    if args.supernet is None:  # a stage of the compression in --out
        from gancompress.compress.pipeline import folder_config
        cfg = folder_config(args.out, data=args.data, budget=args.budget, overrides=overrides)
        Pipeline(cfg, args.out).run(["search"])
        _print_best(Path(args.out) / "search" / "best.json")
        return 0

    _, _, meta = load_supernet(args.supernet)
    cfg = Config.from_saved(meta.get("config"), source=f"{args.supernet} metadata")
    if args.data:
        cfg.data.root = str(args.data)
    if args.teacher:
        cfg.compress.teacher = str(args.teacher)
    if args.budget:
        cfg.compress.budget = str(args.budget)
    cfg = validate(apply_overrides(cfg, overrides))
    held = args.held_out or cfg.data.exclude_list
    if not held:
        raise UserError("which training images are held out for scoring? pass --held-out FILE "
                        "(one image path per line, relative to the data folder)")
    from gancompress.data.folders import read_file_list
    names = read_file_list(held)
    device = device_for(cfg)
    teacher = None
    if cfg.compress.teacher:
        from gancompress.compress.tasks import load_teacher
        teacher = load_teacher(cfg.compress.teacher, device)
    search_supernet(cfg, args.supernet, args.out, teacher, names, device)
    _print_best(Path(args.out) / "best.json")
    return 0


def _print_best(path: Path) -> None:
    best = json.loads(path.read_text())
    unit = best["cost_unit"]
    cost = f"{best['cost']:.3g} ms" if unit == "ms" else f"{best['cost']:,.0f} MACs"
    from gancompress.distributed import print0

    print0(f"best sub-network {best['best']}: {best['metric']} {best['score']:.5g}, {cost} "
          f"(budget {best['budget']['text']}); {path.parent / 'pareto.png'}")
