"""`gancompress eval`: the papers' numbers for a generator, each with the protocol that made it.

    gancompress eval latest_net_G.pth --data datasets/edges2shoes-r \\
        --metrics fid,macs,latency --ref-stats real_stat/edges2shoes-r_B.npz
    gancompress eval G.pth --data datasets/cityscapes --direction BtoA \\
        --metrics miou,fid --labels cityscapes/gtFine/val --json
    gancompress eval runs/demo-compact/compact.pth --metrics macs,latency --latency-runs 20

Metrics (docs/reference.md sec. 5):
  fid      generated test images vs --ref-stats, or vs the real target images of --data
           (all target images of --ref-phase, default the same phase; CycleGAN: train+test)
  kid      same images; the reference features come from a stats file saved with
           --save-features, else from the real target images
  miou     DRN-D-105 on generated images vs ground-truth train-id label maps (--labels DIR,
           matched by file name), predictions resized to --miou-size H W (default 1024 2048)
  psnr     generated vs target (paired data), on uint8 images, mean over images (dB)
  macs     published convention (torchprofile 0.0.1 rules) at batch 1 and the data's image size
  latency  median wall time at batch 1 (warm-up, device sync), with the conditions
The model may be in any format `gancompress.models.checkpoint.load_generator` reads.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from gancompress.commands._common import (
    add_test_mode_arguments,
    add_user_arch_arguments,
    int_range,
    load_model_arg,
)
from gancompress.commands._options import (
    HIDDEN,
    old,
    add_latency_arguments,
    add_overwrite_argument,
    take_alias,
)
from gancompress.commands.stats import (
    add_data_arguments,
    add_weights_arguments,
    apply_weights_arguments,
    check_device,
    report_warnings,
    resolve_load_size,
)
from gancompress.errors import UserError

METRICS = ("fid", "kid", "miou", "psnr", "swd", "colour", "macs", "latency")  # = evaluate.METRICS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="FID, KID, mIoU, PSNR, MACs, latency of a generator",
        description="Evaluate a generator with the published protocols and print each metric "
                    "with the protocol that produced it (and the SHA-256 of the evaluation "
                    "networks' weights).")
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="generator checkpoint (ours or a published state dict)"
                        + old("--model MODEL"))
    p.add_argument("--model", dest="model_option", help=HIDDEN)  # the old spelling
    p.add_argument("--data", metavar="DIR", help="dataset folder (aligned, unaligned or single)")
    p.add_argument("--metrics", default="fid,macs",
                   help=f"comma-separated, from {','.join(METRICS)} (default fid,macs)")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB",
                   help="which side is the input (default AtoB)")
    p.add_argument("--ref-stats", metavar="FILE.npz",
                   help="FID reference statistics (gancompress stats, or the published files)")
    p.add_argument("--ref-phase", metavar="PHASE",
                   help="phase(s) of the real target images used as FID/KID reference when "
                        "--ref-stats is not given (default: --phase; CycleGAN: train+test)")
    p.add_argument("--labels", metavar="DIR",
                   help="ground-truth label PNGs (19 train ids, 255 ignored) for miou, matched "
                        "to the input images by name")
    p.add_argument("--miou-size", nargs="+", default=["1024", "2048"], metavar="H W",
                   help="resolution the segmentation is compared at (default 1024 2048, "
                        "Cityscapes; the older one-word WxH, e.g. 2048x1024, works too)")
    p.add_argument("--fid-method", choices=["eigh", "sqrtm"], default="eigh",
                   help="Tr sqrtm(S1 S2) by eigh (default: symmetric eigenvalues, stable, fast) "
                        "or sqrtm (scipy, the published computation; same value to ~1e-12)")
    p.add_argument("--kid-subsets", type=int_range(1, 10**6), default=100, help="KID subsets (default 100)")
    p.add_argument("--kid-subset-size", type=int_range(2, 10**7), default=1000,
                   help="KID subset size (default 1000; smaller sets use all their images)")
    add_latency_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--out", metavar="FILE.json", help="also write the JSON result to this file")
    add_overwrite_argument(p)
    add_test_mode_arguments(p)
    add_user_arch_arguments(p)
    add_data_arguments(p, phase="test", load_size=None)

    add_weights_arguments(p, drn=True)
    p.set_defaults(func=run)


def miou_size(words: list[str]) -> str:
    """--miou-size H W, or the older one-word WxH -> the 'WxH' text EvalSettings holds."""
    if len(words) == 1 and "x" in words[0].lower():
        return words[0]
    try:
        height, width = (int(w) for w in words)
    except ValueError:
        raise UserError(f"--miou-size {' '.join(words)}: give H W, e.g. --miou-size 1024 2048 "
                        f"(or the older WxH, 2048x1024)") from None
    if height < 1 or width < 1:
        raise UserError(f"--miou-size {height} {width}: height and width must be positive")
    return f"{width}x{height}"


def run(args: argparse.Namespace) -> int:
    from gancompress.metrics.evaluate import DATA_METRICS, EvalSettings, evaluate, parse_metrics
    from gancompress.models.checkpoint import evaluation_size

    if not take_alias(args, "model", "model_option", "MODEL", "--model"):
        raise UserError("which generator? give its file: gancompress eval MODEL ...")
    args.miou_size = miou_size(args.miou_size)
    metrics = parse_metrics(args.metrics)
    device = check_device(args.device)
    if args.out:
        from gancompress.files import check_output_file, check_writable
        check_output_file(args.out, args.overwrite, example="eval.json")
        check_writable(args.out)  # before the evaluation, not after it
    needs_data = [m for m in metrics if m in DATA_METRICS]
    if needs_data and not args.data:
        raise UserError(f"{', '.join(needs_data)} need(s) images: pass --data DIR")
    from gancompress.deploy.runtime import apply_test_mode

    model = load_model_arg(args, device=device)  # a checkpoint, or --arch CLASS + weights
    args.size_origin = "as given (--size)" if args.size else "as given (--load-size)"
    resolve_load_size(args, rectangular=model.label_map_args() is not None)
    (height, width), origin = evaluation_size(model)
    if args.load_size is None:
        args.load_size = height
        args.size_origin = origin
        shown = f"{height}x{width}" if model.label_map_args() is not None else f"{height}x{height}"
        print(f"gancompress eval: images resized to {shown}, {origin}; pass "
              f"--size 256 256 for the published protocol", file=sys.stderr)
    # label maps keep the model's aspect ratio (Cityscapes 2:1); --load-size sets the height
    args.label_size = None
    if model.label_map_args() is not None:
        args.label_size = model.check_size(tuple(args.size) if args.size else
                                           (args.load_size, round(args.load_size * width / height)))
    apply_weights_arguments(args)
    test_mode = apply_test_mode(model, args.test_mode, args.seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings = EvalSettings(**{f: getattr(args, f) for f in EvalSettings.fields()})
        result = evaluate(model, settings, metrics, device)
    result["test_mode"] = test_mode
    result["warnings"] = report_warnings(caught, "eval")
    text = json.dumps(result, indent=2, default=_json_default)
    if args.out:
        from gancompress.files import atomic_write_text
        atomic_write_text(args.out, text + "\n", overwrite=args.overwrite)
    if args.json:
        print(text)
    else:
        print_table(result)
    return 0


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return str(obj)


def _format_value(name: str, entry: dict[str, Any]) -> str:
    value = entry["value"]
    if name == "macs":
        from gancompress.metrics.cost import format_count
        return format_count(value)
    if name == "latency":
        return f"{value:.2f} ms"
    if name == "kid":
        return f"{value:.5f} +- {entry['std']:.5f}"
    if name == "psnr":
        return f"{value:.2f} dB"
    return f"{value:.2f}"


def print_table(result: dict[str, Any]) -> None:
    head = f"model {result['model']}"
    if result.get("format"):
        head += f" ({result['format']})"
    print(head)
    if result.get("test_mode"):
        print(f"mode  {result['test_mode']}")
    if "data" in result:
        print(f"data  {result['inputs']}, {result['num_images']} images, {result['direction']}")
    rows = [(name, _format_value(name, entry), entry.get("summary") or entry.get("protocol", ""))
            for name, entry in result["metrics"].items()]
    width = max(len(v) for _, v, _ in rows) if rows else 0
    print(f"{'metric':<8} {'value':<{width}}  protocol")
    for name, value, protocol in rows:
        print(f"{name:<8} {value:<{width}}  {protocol}")
