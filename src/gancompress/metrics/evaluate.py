"""evaluate(): the papers' numbers for a generator (FID, KID, mIoU, PSNR, MACs, latency), each
with the protocol that made it (docs/reference.md sec. 5), and two distribution distances that need
no downloaded weights: SWD (metrics/swd.py) and the colour metric (metrics/colour.py), both
against the real images of the target side, like FID. `gancompress eval` parses its options
into an `EvalSettings` and calls this; nothing here knows about the command line.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gancompress.data.splits import (
    check_same_size,
    image_batches,
    iterate_items,
    open_side,
    parse_phases,
)
from gancompress.errors import UserError
from gancompress.weights import weights_tag
from gancompress.metrics.quality import psnr_uint8

METRICS = ("fid", "kid", "miou", "psnr", "swd", "colour", "macs", "latency")
DATA_METRICS = ("fid", "kid", "miou", "psnr", "swd", "colour")
SET_METRICS = ("swd", "colour")  # no network: generated vs real target images


@dataclass
class EvalSettings:
    """What to evaluate on and how (defaults = the published protocols)."""
    model: str = ""                       # recorded in the result
    data: str | None = None
    phase: str = "test"
    direction: str = "AtoB"
    load_size: int = 256
    limit: int | None = None
    batch_size: int = 16
    workers: int = 0
    ref_stats: str | None = None
    ref_phase: str | None = None
    labels: str | None = None
    miou_size: str = "2048x1024"
    fid_method: str = "eigh"
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    latency_runs: int = 10
    latency_warmup: int = 3
    inception_weights: str | None = None
    drn_weights: str | None = None
    weights_dir: str | None = None
    no_progress: bool = False
    size_origin: str = "as given"         # where load_size came from (said in the result)
    # (H, W) label-map datasets are read at (label-map generators, e.g. SPADE's 2:1); None: square
    label_size: tuple[int, int] | None = None

    @classmethod
    def fields(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


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


def evaluate(model: torch.nn.Module, settings: EvalSettings, metrics: list[str],
             device: torch.device) -> dict[str, Any]:
    """Run the requested metrics; returns the JSON-ready result."""
    import gancompress

    arch = getattr(model, "arch", {})
    in_channels, out_channels = arch.get("in_channels", 3), arch.get("out_channels", 3)
    result: dict[str, Any] = {"model": str(settings.model),
                              "format": getattr(model, "source_format", None),
                              "arch": getattr(model, "arch_name", type(model).__name__),
                              "widths": arch.get("widths"), "device": str(device),
                              "gancompress": gancompress.__version__, "torch": torch.__version__,
                              "metrics": {}}
    result["image_size"] = {"load_size": settings.load_size, "origin": settings.size_origin}
    size = settings.label_size or (settings.load_size or 256, settings.load_size or 256)
    first_source = None
    if any(m in DATA_METRICS for m in metrics):
        first_source = _data_metrics(model, settings, metrics, device, in_channels, out_channels,
                                     result)
        size = tuple(first_source.shape[-2:])
    if "macs" in metrics:
        from gancompress.metrics.cost import format_count, profile
        input_size = (1, in_channels, *size)
        counts = profile(model, input_size)
        result["metrics"]["macs"] = {
            "value": counts["macs"], "true_macs": counts["macs_true"], "params": counts["params"],
            "protocol": f"published convention (torchprofile 0.0.1 rules, docs/reference.md sec. 5), "
                        f"input {'x'.join(map(str, input_size))}; true count "
                        f"{format_count(counts['macs_true'])}; params "
                        f"{format_count(counts['params'])}"}
    if "latency" in metrics:
        from gancompress.metrics.cost import measure_latency
        example = (first_source[:1].to(device) if first_source is not None
                   else torch.rand(1, in_channels, *size, device=device) * 2 - 1)
        lat = measure_latency(model, example, warmup=settings.latency_warmup,
                              runs=settings.latency_runs, device=device)
        result["metrics"]["latency"] = {
            "value": lat["median_ms"], "unit": "ms", **lat,
            "protocol": f"median of {lat['runs']} runs after {lat['warmup']} warm-up, batch 1, "
                        f"input {'x'.join(map(str, example.shape))}, {lat['device']} "
                        f"({lat.get('device_name', '')}), {lat['threads']} threads, torch "
                        f"{lat['torch']}"}
    return result


def _data_metrics(model: torch.nn.Module, settings: EvalSettings, metrics: list[str],
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

    phases = parse_phases(settings.phase)
    source_side = "A" if settings.direction == "AtoB" else "B"
    target_side = "B" if source_side == "A" else "A"
    # label-map generators (SPADE) read label-map datasets the way the model needs them
    label_args = model.label_map_args() if hasattr(model, "label_map_args") else None
    if label_args is not None:
        label_args["size"] = settings.label_size or (settings.load_size or 256,) * 2
    spec = open_side(settings.data, source_side, phases, settings.load_size, in_channels, settings.limit,
                     other_channels=out_channels, labels=label_args)
    paired = spec.mode in ("aligned", "labels")
    result.update({"data": str(settings.data), "data_mode": spec.mode, "phase": "+".join(phases),
                   "direction": settings.direction, "inputs": spec.description,
                   "num_images": len(spec)})
    if settings.limit:
        result["limit"] = settings.limit
    if "psnr" in metrics and not paired:
        raise UserError(f"psnr needs paired data (aligned A|B images); {settings.data} is "
                        f"{spec.mode}")

    wanted_sets = [m for m in SET_METRICS if m in metrics]
    if wanted_sets and spec.mode == "single":
        raise UserError(f"{', '.join(wanted_sets)} compare(s) with the real target images, and "
                        f"{settings.data} is a single folder without targets")
    if "colour" in metrics and out_channels != 3:
        raise UserError(f"colour compares RGB colours; this generator makes {out_channels}-channel "
                        f"images")
    fake_sets, real_sets = _set_accumulators(wanted_sets), _set_accumulators(wanted_sets)

    wants_inception = "fid" in metrics or "kid" in metrics
    extractor = (InceptionExtractor(settings.inception_weights, settings.weights_dir, device,
                                    settings.batch_size) if wants_inception else None)
    reference: ReferenceStats | None = load_statistics(settings.ref_stats) if settings.ref_stats else None
    # real target images are needed unless the statistics file covers every Inception metric
    needs_real = wants_inception and (
        reference is None or ("kid" in metrics and reference.features is None))
    if needs_real and spec.mode == "single":
        if reference is None:
            raise UserError(f"FID/KID need reference images, and {settings.data} is a single folder "
                            f"without targets: pass --ref-stats FILE.npz (gancompress stats)")
        raise UserError(f"KID needs reference features: {settings.ref_stats} holds only mu/sigma; "
                        f"recompute it with `gancompress stats --save-features`")

    miou = None
    labels: dict[str, Path] = {}
    if "miou" in metrics:
        from gancompress.metrics.segmentation import MIoUScorer, find_label_files
        if not settings.labels:
            raise UserError("miou needs ground-truth label maps: pass --labels DIR (PNG train-id "
                            "maps, e.g. Cityscapes gtFine/val *_gtFine_trainIds.png)")
        labels = find_label_files(settings.labels)
        miou = MIoUScorer(settings.drn_weights, settings.weights_dir, device, parse_size(settings.miou_size))

    fake_features: list[np.ndarray] = []
    psnrs: list[float] = []
    # Multimodal generators (MUNIT) translate each image with a random style, drawn one per
    # image in order from a generator seeded 233 (the published test protocol's seed).
    styles = torch.Generator().manual_seed(233) if getattr(model, "multimodal", False) else None
    if styles is not None:
        result["style_protocol"] = ("one style code ~ N(0, I) per image, drawn in order from a "
                                    "CPU generator seeded 233")
    first_source = None
    first: tuple[tuple[int, ...], str] | None = None
    bar = _progress(settings, len(spec), "eval")
    for key, items in iterate_items(spec, settings.batch_size, settings.workers):
        sources = [item[key] for item in items]
        paths = [str(item.get(f"{key}_path", "?")) for item in items]
        first = first or (tuple(sources[0].shape), paths[0])
        check_same_size(first, sources, paths)
        source = torch.stack(sources).to(device)
        if first_source is None:
            first_source = source[:1].cpu()
        with torch.inference_mode():
            if styles is None:
                fake = model(source)
            else:
                fake = model(source, torch.cat([model.random_style(1, styles)
                                                for _ in range(len(source))]))
        if extractor is not None:
            fake_features.append(extractor.features_of_batch(fake))
        for accumulator in fake_sets.values():
            accumulator.update(fake)
        if miou is not None:
            miou.update(fake, _labels_for(paths, labels, settings.labels))
        if "psnr" in metrics:
            other = "target" if key == "source" else "source"
            psnrs += psnr_uint8(fake, torch.stack([item[other] for item in items]))
        if bar is not None:
            bar.update(len(items))
    if bar is not None:
        bar.close()
    num = len(spec)

    real_features, real_desc = None, ""
    if needs_real or real_sets:
        # one pass over the real target images feeds every metric that needs them
        ref_phases = parse_phases(settings.ref_phase or settings.phase)
        ref_spec = open_side(settings.data, target_side, ref_phases, settings.load_size,
                             out_channels, labels=label_args)
        batches = _feeding(image_batches(ref_spec, settings.batch_size, settings.workers),
                           list(real_sets.values()))
        if needs_real:
            real_features = extractor(batches, progress=not settings.no_progress,
                                      total=len(ref_spec), desc="real images")
        else:
            for _ in batches:
                pass
        real_desc = f"{len(ref_spec)} real images of {ref_spec.description}"
    if real_sets:
        _set_metrics(fake_sets, real_sets, real_desc, num, result)

    if wants_inception:
        from gancompress.metrics.fid import statistics
        features = np.concatenate(fake_features)
        if "fid" in metrics:
            if reference is not None:
                fid_ref, ref_desc = reference, f"statistics file {reference.path}"
            else:
                fid_ref, ref_desc = ReferenceStats(*statistics(real_features)), real_desc
            scorer = FIDScorer(fid_ref, method=settings.fid_method, extractor=extractor)
            value = scorer.score_features(features)
            protocol = scorer.protocol()
            protocol["reference"] = ref_desc
            if reference is not None and reference.meta:
                protocol["reference_meta"] = reference.meta
            result["metrics"]["fid"] = {
                "value": value, "num_images": num, "protocol": protocol,
                "summary": f"{num} generated vs {ref_desc}; Inception pool3 (weights "
                           f"{weights_tag(extractor.weights)}), {settings.fid_method}"}
        if "kid" in metrics:
            kid_ref = reference.features if reference is not None and \
                reference.features is not None else real_features
            ref_desc = (f"features in {reference.path}" if real_features is None
                        else real_desc)
            scorer = KIDScorer(kid_ref, num_subsets=settings.kid_subsets,
                               subset_size=settings.kid_subset_size, extractor=extractor)
            value = scorer.score_features(features)
            subset = min(settings.kid_subset_size, len(features), len(kid_ref))
            result["metrics"]["kid"] = {
                "value": value, "std": scorer.last["kid_std"], "num_images": num,
                "protocol": {**scorer.protocol(), "reference": ref_desc},
                "summary": f"{num} generated vs {ref_desc}; unbiased MMD^2, cubic polynomial "
                           f"kernel, {settings.kid_subsets} subsets of {subset}"}
    if miou is not None:
        value = miou.value()
        result["metrics"]["miou"] = {
            "value": value, "num_images": miou.count, "protocol": miou.protocol(),
            "summary": f"{miou.count} generated vs labels in {settings.labels}; DRN-D-105 (weights "
                       f"{weights_tag(miou.weights)}), bilinear to {settings.miou_size}, "
                       f"19 classes"}
    if "psnr" in metrics:
        finite = [p for p in psnrs if math.isfinite(p)]
        value = float(np.mean(psnrs)) if len(finite) == len(psnrs) else math.inf
        result["metrics"]["psnr"] = {
            "value": value, "unit": "dB", "num_images": len(psnrs),
            "summary": f"uint8 generated vs target, 10 log10(255^2 / MSE) per image, mean over "
                       f"{len(psnrs)} images"}
    return first_source


def _set_accumulators(names: list[str]) -> dict[str, Any]:
    from gancompress.metrics.colour import ABPixels
    from gancompress.metrics.swd import PatchDescriptors
    makers = {"swd": PatchDescriptors, "colour": ABPixels}
    return {name: makers[name]() for name in names}


def _feeding(batches, accumulators: list[Any]):
    """The batches, each also fed to the accumulators on its way."""
    for batch in batches:
        for accumulator in accumulators:
            accumulator.update(batch)
        yield batch


def _set_metrics(fake: dict[str, Any], real: dict[str, Any], real_desc: str, num: int,
                 result: dict[str, Any]) -> None:
    if "swd" in fake:
        from gancompress.metrics.swd import SWDScorer
        scorer = SWDScorer(real["swd"])
        value = scorer.score_descriptors(fake["swd"])
        result["metrics"]["swd"] = {
            "value": value, "levels": scorer.last["levels"], "num_images": num,
            "protocol": {**scorer.protocol(), "reference": real_desc},
            "summary": f"{num} generated vs {real_desc}; SWD x1e3 over Laplacian levels "
                       f"{', '.join(scorer.last['levels'])} (Karras et al. 2018), lower is better"}
    if "colour" in fake:
        from gancompress.metrics.colour import ColourScorer
        scorer = ColourScorer(real["colour"])
        value = scorer.score_pixels(fake["colour"])
        result["metrics"]["colour"] = {
            "value": value, "unit": "CIELAB a*b*", "num_images": num,
            "protocol": {**scorer.protocol(), "reference": real_desc},
            "summary": f"{num} generated vs {real_desc}; sliced W1 of the pixels' CIELAB a*b* "
                       f"(colour distribution), lower is better"}


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


def _progress(settings: EvalSettings, total: int, desc: str):
    if settings.no_progress:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="img", leave=False)


