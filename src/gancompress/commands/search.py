"""`gancompress search`: find the best sub-network of a supernet under a budget.

    gancompress search --out runs/demo-compact               # the search stage of a compression
    gancompress search --supernet runs/demo-compact/supernet/supernet.pth --budget 1/20 --out s20
    gancompress search --supernet S.pth --budget 30ms --out runs/s30ms compress.generations=20

Budgets: MACs (3e9, 3G), a fraction of the teacher (1/20, 5%) or a latency (30ms, predicted by
the latency model). Sub-networks are scored on a held-out slice of the training data (the one
the compression kept aside, or --held-out FILE); scores are cached in OUT/results.jsonl, so a
killed search resumes where it stopped. Writes best.json and pareto.png.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from gancompress.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search", help="search the supernet for the best sub-network under a budget",
        description="Evolutionary (published defaults) or exhaustive search of a supernet's "
                    "sub-networks under a MACs / fraction / latency budget, scored on held-out "
                    "training images; resumable, results streamed to results.jsonl.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", metavar="section.field=value",
                   help="config overrides, e.g. compress.generations=50 compress.metric=psnr")
    p.add_argument("--supernet", metavar="FILE",
                   help="supernet.pth to search (omit to run the search stage of the compression "
                        "in --out)")
    p.add_argument("--out", required=True, metavar="DIR", help="search output folder")
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gancompress.compress.pipeline import Pipeline, search_supernet
    from gancompress.compress.run import device_for
    from gancompress.compress.supernet import load_supernet
    from gancompress.config import Config, apply_overrides, validate

    from gancompress.config import unique_overrides
    overrides = unique_overrides(list(args.overrides))
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
    from gancompress.training.distributed import print0

    print0(f"best sub-network {best['best']}: {best['metric']} {best['score']:.5g}, {cost} "
          f"(budget {best['budget']['text']}); {path.parent / 'pareto.png'}")
