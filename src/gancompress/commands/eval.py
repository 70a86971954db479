"""`gancompress eval`: the papers' numbers for a generator, each with the protocol that made it.

    gancompress eval --model latest_net_G.pth --data datasets/edges2shoes-r \\
        --metrics fid,macs,latency --ref-stats real_stat/edges2shoes-r_B.npz
    gancompress eval --model G.pth --data datasets/cityscapes --direction BtoA \\
        --metrics miou,fid --labels cityscapes/gtFine/val --json

Metrics (REFERENCE.md sec. 5):
  fid      generated test images vs --ref-stats, or vs the real target images of --data
           (all target images of --ref-phase, default the same phase; CycleGAN: train+test)
  kid      same images; the reference features come from a stats file saved with
           --save-features, else from the real target images
  miou     DRN-D-105 on generated images vs ground-truth train-id label maps (--labels DIR,
           matched by file name), predictions resized to --miou-size (default 2048x1024)
  psnr     generated vs target (paired data), on uint8 images, mean over images (dB)
  macs     published convention (torchprofile 0.0.1 rules) at batch 1 and the data's image size
  latency  median wall time at batch 1 (warm-up, device sync), with the conditions
The model may be in any format `gancompress.models.checkpoint.load_generator` reads.
"""
from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gancompress.commands.stats import (
    add_data_arguments,
    add_weights_arguments,
    check_device,
    check_same_size,
    image_batches,
    iterate_items,
    open_side,
    parse_phases,
    report_warnings,
)
from gancompress.errors import UserError
from gancompress.metrics.quality import psnr_uint8

METRICS = ("fid", "kid", "miou", "psnr", "macs", "latency")
DATA_METRICS = ("fid", "kid", "miou", "psnr")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="FID, KID, mIoU, PSNR, MACs, latency of a generator",
        description="Evaluate a generator with the published protocols and print each metric "
                    "with the protocol that produced it (and the SHA-256 of the evaluation "
                    "networks' weights).")
    p.add_argument("--model", required=True, metavar="CKPT",
                   help="generator checkpoint (ours or a published state dict)")
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
    p.add_argument("--miou-size", default="2048x1024", metavar="WxH",
                   help="resolution the segmentation is compared at (default 2048x1024)")
    p.add_argument("--fid-method", choices=["eigh", "sqrtm"], default="eigh",
                   help="Tr sqrtm(S1 S2) by eigh (default: symmetric eigenvalues, stable, fast) "
                        "or sqrtm (scipy, the published computation; same value to ~1e-12)")
    p.add_argument("--kid-subsets", type=int, default=100, help="KID subsets (default 100)")
    p.add_argument("--kid-subset-size", type=int, default=1000,
                   help="KID subset size (default 1000; smaller sets use all their images)")
    p.add_argument("--latency-runs", type=int, default=10, help="timed runs (default 10)")
    p.add_argument("--latency-warmup", type=int, default=3, help="warm-up runs (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--out", metavar="FILE.json", help="also write the JSON result to this file")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    add_data_arguments(p, phase="test")
    add_weights_arguments(p, drn=True)
    p.set_defaults(func=run)


def parse_metrics(text: str) -> list[str]:
    names = [m.strip().lower() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise UserError(f"unknown metric(s) {unknown or text!r}; choose from {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


def parse_size(text: str) -> tuple[int, int]:
    """'2048x1024' (W x H) -> (H, W)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--miou-size {text!r}: expected WxH, e.g. 2048x1024") from None
    if w < 1 or h < 1:
        raise UserError(f"--miou-size {text!r}: width and height must be positive")
    return h, w


def run(args: argparse.Namespace) -> int:
    from gancompress.models.checkpoint import load_generator

    metrics = parse_metrics(args.metrics)
    device = check_device(args.device)
    if args.out and Path(args.out).exists() and not args.force:
        raise UserError(f"{args.out} already exists; choose another --out or pass --force")
    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    needs_data = [m for m in metrics if m in DATA_METRICS]
    if needs_data and not args.data:
        raise UserError(f"{', '.join(needs_data)} need(s) images: pass --data DIR")
    model = load_generator(args.model, device=device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate(model, args, metrics, device)
    result["warnings"] = report_warnings(caught, "eval")
    text = json.dumps(result, indent=2, default=_json_default)
    if args.out:
        from gancompress.files import atomic_write_text
        atomic_write_text(args.out, text + "\n")
    if args.json:
        print(text)
    else:
        print_table(result)
    return 0


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return str(obj)


def evaluate(model: torch.nn.Module, args: argparse.Namespace, metrics: list[str],
             device: torch.device) -> dict[str, Any]:
    """Run the requested metrics; returns the JSON-ready result."""
    import gancompress

    arch = getattr(model, "arch", {})
    in_channels, out_channels = arch.get("in_channels", 3), arch.get("out_channels", 3)
    result: dict[str, Any] = {"model": str(args.model),
                              "format": getattr(model, "source_format", None),
                              "arch": getattr(model, "arch_name", type(model).__name__),
                              "widths": arch.get("widths"), "device": str(device),
                              "gancompress": gancompress.__version__, "torch": torch.__version__,
                              "metrics": {}}
    size = (args.load_size or 256, args.load_size or 256)
    first_source = None
    if any(m in DATA_METRICS for m in metrics):
        first_source = _data_metrics(model, args, metrics, device, in_channels, out_channels,
                                     result)
        size = tuple(first_source.shape[-2:])
    if "macs" in metrics:
        from gancompress.metrics.cost import count_macs_both, count_params, format_count
        input_size = (1, in_channels, *size)
        published, true = count_macs_both(model, input_size)
        result["metrics"]["macs"] = {
            "value": published, "true_macs": true, "params": count_params(model),
            "protocol": f"published convention (torchprofile 0.0.1 rules, REFERENCE.md sec. 5), "
                        f"input {'x'.join(map(str, input_size))}; true count "
                        f"{format_count(true)}; params {format_count(count_params(model))}"}
    if "latency" in metrics:
        from gancompress.metrics.cost import measure_latency
        example = (first_source[:1].to(device) if first_source is not None
                   else torch.rand(1, in_channels, *size, device=device) * 2 - 1)
        lat = measure_latency(model, example, warmup=args.latency_warmup,
                              runs=args.latency_runs, device=device)
        result["metrics"]["latency"] = {
            "value": lat["median_ms"], "unit": "ms", **lat,
            "protocol": f"median of {lat['runs']} runs after {lat['warmup']} warm-up, batch 1, "
                        f"input {'x'.join(map(str, example.shape))}, {lat['device']} "
                        f"({lat.get('device_name', '')}), {lat['threads']} threads, torch "
                        f"{lat['torch']}"}
    return result


def _data_metrics(model: torch.nn.Module, args: argparse.Namespace, metrics: list[str],
                  device: torch.device, in_channels: int, out_channels: int,
                  result: dict[str, Any]) -> torch.Tensor:
    """Generate every input image once and feed the generated batch to each metric."""
    from gancompress.metrics.fid import (
        FIDScorer,
        InceptionExtractor,
        ReferenceStats,
        load_statistics,
    )
    from gancompress.metrics.kid import KIDScorer

    phases = parse_phases(args.phase)
    source_side = "A" if args.direction == "AtoB" else "B"
    target_side = "B" if source_side == "A" else "A"
    spec = open_side(args.data, source_side, phases, args.load_size, in_channels, args.limit,
                     other_channels=out_channels)
    paired = spec.mode == "aligned"
    result.update({"data": str(args.data), "data_mode": spec.mode, "phase": "+".join(phases),
                   "direction": args.direction, "inputs": spec.description,
                   "num_images": len(spec)})
    if args.limit:
        result["limit"] = args.limit
    if "psnr" in metrics and not paired:
        raise UserError(f"psnr needs paired data (aligned A|B images); {args.data} is "
                        f"{spec.mode}")

    wants_inception = "fid" in metrics or "kid" in metrics
    extractor = (InceptionExtractor(args.inception_weights, args.weights_dir, device,
                                    args.batch_size) if wants_inception else None)
    reference: ReferenceStats | None = load_statistics(args.ref_stats) if args.ref_stats else None
    # real target images are needed unless the statistics file covers every Inception metric
    needs_real = wants_inception and (
        reference is None or ("kid" in metrics and reference.features is None))
    if needs_real and spec.mode == "single":
        if reference is None:
            raise UserError(f"FID/KID need reference images, and {args.data} is a single folder "
                            f"without targets: pass --ref-stats FILE.npz (gancompress stats)")
        raise UserError(f"KID needs reference features: {args.ref_stats} holds only mu/sigma; "
                        f"recompute it with `gancompress stats --save-features`")

    miou = None
    labels: dict[str, Path] = {}
    if "miou" in metrics:
        from gancompress.metrics.segmentation import MIoUScorer, find_label_files
        if not args.labels:
            raise UserError("miou needs ground-truth label maps: pass --labels DIR (PNG train-id "
                            "maps, e.g. Cityscapes gtFine/val *_gtFine_trainIds.png)")
        labels = find_label_files(args.labels)
        miou = MIoUScorer(args.drn_weights, args.weights_dir, device, parse_size(args.miou_size))

    fake_features: list[np.ndarray] = []
    psnrs: list[float] = []
    first_source = None
    first: tuple[tuple[int, ...], str] | None = None
    bar = _progress(args, len(spec), "eval")
    for key, items in iterate_items(spec, args.batch_size, args.workers):
        sources = [item[key] for item in items]
        paths = [str(item.get(f"{key}_path", "?")) for item in items]
        first = first or (tuple(sources[0].shape), paths[0])
        check_same_size(first, sources, paths)
        source = torch.stack(sources).to(device)
        if first_source is None:
            first_source = source[:1].cpu()
        with torch.inference_mode():
            fake = model(source)
        if extractor is not None:
            fake_features.append(extractor.features_of_batch(fake))
        if miou is not None:
            miou.update(fake, _labels_for(paths, labels, args.labels))
        if "psnr" in metrics:
            other = "target" if key == "source" else "source"
            psnrs += psnr_uint8(fake, torch.stack([item[other] for item in items]))
        if bar is not None:
            bar.update(len(items))
    if bar is not None:
        bar.close()
    num = len(spec)

    if wants_inception:
        from gancompress.metrics.fid import statistics
        features = np.concatenate(fake_features)
        real_features, real_desc = None, ""
        if needs_real:
            ref_phases = parse_phases(args.ref_phase or args.phase)
            ref_spec = open_side(args.data, target_side, ref_phases, args.load_size,
                                 out_channels)
            real_features = extractor(image_batches(ref_spec, args.batch_size, args.workers),
                                      progress=not args.no_progress, total=len(ref_spec),
                                      desc="real images")
            real_desc = f"{len(ref_spec)} real images of {ref_spec.description}"
        if "fid" in metrics:
            if reference is not None:
                fid_ref, ref_desc = reference, f"statistics file {reference.path}"
            else:
                fid_ref, ref_desc = ReferenceStats(*statistics(real_features)), real_desc
            scorer = FIDScorer(fid_ref, method=args.fid_method, extractor=extractor)
            value = scorer.score_features(features)
            protocol = scorer.protocol()
            protocol["reference"] = ref_desc
            if reference is not None and reference.meta:
                protocol["reference_meta"] = reference.meta
            result["metrics"]["fid"] = {
                "value": value, "num_images": num, "protocol": protocol,
                "summary": f"{num} generated vs {ref_desc}; Inception pool3 (weights sha256 "
                           f"{extractor.weights.sha256[:12]}), {args.fid_method}"}
        if "kid" in metrics:
            kid_ref = reference.features if reference is not None and \
                reference.features is not None else real_features
            ref_desc = (f"features in {reference.path}" if real_features is None
                        else real_desc)
            scorer = KIDScorer(kid_ref, num_subsets=args.kid_subsets,
                               subset_size=args.kid_subset_size, extractor=extractor)
            value = scorer.score_features(features)
            subset = min(args.kid_subset_size, len(features), len(kid_ref))
            result["metrics"]["kid"] = {
                "value": value, "std": scorer.last["kid_std"], "num_images": num,
                "protocol": {**scorer.protocol(), "reference": ref_desc},
                "summary": f"{num} generated vs {ref_desc}; unbiased MMD^2, cubic polynomial "
                           f"kernel, {args.kid_subsets} subsets of {subset}"}
    if miou is not None:
        value = miou.value()
        result["metrics"]["miou"] = {
            "value": value, "num_images": miou.count, "protocol": miou.protocol(),
            "summary": f"{miou.count} generated vs labels in {args.labels}; DRN-D-105 (weights "
                       f"sha256 {miou.weights.sha256[:12]}), bilinear to {args.miou_size}, "
                       f"19 classes"}
    if "psnr" in metrics:
        finite = [p for p in psnrs if math.isfinite(p)]
        value = float(np.mean(psnrs)) if len(finite) == len(psnrs) else math.inf
        result["metrics"]["psnr"] = {
            "value": value, "unit": "dB", "num_images": len(psnrs),
            "summary": f"uint8 generated vs target, 10 log10(255^2 / MSE) per image, mean over "
                       f"{len(psnrs)} images"}
    return first_source


def _labels_for(paths: list[str], labels: dict[str, Path], folder: str) -> torch.Tensor:
    from gancompress.metrics.segmentation import match_key, read_label

    maps = []
    for path in paths:
        key = match_key(path)
        if key not in labels:
            examples = ", ".join(sorted(labels)[:3])
            raise UserError(f"no label map for {path} in {folder} (looked for a PNG named "
                            f"{key}.png or {key}_gtFine_trainIds.png; found e.g. {examples})")
        maps.append(torch.from_numpy(read_label(labels[key])))
    shapes = {tuple(m.shape) for m in maps}
    if len(shapes) > 1:
        raise UserError(f"label maps of different sizes {sorted(shapes)} in {folder}")
    return torch.stack(maps)


def _progress(args: argparse.Namespace, total: int, desc: str):
    if args.no_progress:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="img", leave=False)


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
    if "data" in result:
        print(f"data  {result['inputs']}, {result['num_images']} images, {result['direction']}")
    rows = [(name, _format_value(name, entry), entry.get("summary") or entry.get("protocol", ""))
            for name, entry in result["metrics"].items()]
    width = max(len(v) for _, v, _ in rows) if rows else 0
    print(f"{'metric':<8} {'value':<{width}}  protocol")
    for name, value, protocol in rows:
        print(f"{name:<8} {value:<{width}}  {protocol}")
