"""Teacher vs compact report: params, MACs, measured latency, quality, and an image grid.

    report = compare(teacher, compact, batches, paired=True, input_size=(1, 3, 64, 64))
    write_report(report, grid, out_dir)   -> report.json, report.md, grid.png

Quality is measured on the held-out slice of the training data that the search used, and on
the test split when the data has one (never seen by training nor by the search): L1 and PSNR to the ground truth on paired data, to the teacher's output on unpaired
data, and the distribution distances SWD and colour (metrics/swd.py, metrics/colour.py) between
the outputs and those references; FID/KID when the caller passes distribution scores. The run's
seed (meta "seed") is stated. MACs follow the published convention
(docs/reference.md sec. 5) at the evaluation size and at the family's reference size (the papers'
tables); latency is
batch 1, warm-up then timed runs, with the conditions recorded (gancompress.metrics.cost).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from gancompress.files import atomic_write_text
from gancompress.imaging import make_grid, save_image
from gancompress.compress.scoring import reconstruction_quality, scoring_inputs
from gancompress.metrics.colour import ColourSettings
from gancompress.metrics.cost import format_count
from gancompress.metrics.cost import profile as cost_profile
from gancompress.metrics.swd import SWDSettings


def quality(model: torch.nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]]
            ) -> dict[str, float | None]:
    """Mean L1 (in [-1, 1] units) and PSNR (dB) of `model` against each batch's reference (the
    one L1 / PSNR loop, compress/scoring.reconstruction_quality), and in the same pass the
    distances between the distributions of its outputs and of the references: SWD x 1e3
    (metrics/swd.py) and the colour metric (metrics/colour.py; None for non-RGB outputs)."""
    from gancompress.metrics.colour import ABPixels
    from gancompress.metrics.swd import PatchDescriptors

    sets: dict[str, tuple[Any, Any]] = {}

    def collect(fake: torch.Tensor, ref: torch.Tensor) -> None:
        if not sets:
            sets["swd"] = (PatchDescriptors(), PatchDescriptors())
            if fake.shape[1] == 3:
                sets["colour"] = (ABPixels(), ABPixels())
        for fakes, refs in sets.values():
            fakes.update(fake)
            refs.update(ref)

    return {**reconstruction_quality(model, batches, collect), **distribution_distances(sets)}


def distribution_distances(sets: Mapping[str, tuple[Any, Any]]) -> dict[str, float | None]:
    """{'swd': ..., 'colour': ... or None} of accumulated (outputs, references) sets."""
    from gancompress.metrics.colour import ColourScorer
    from gancompress.metrics.swd import swd_of_descriptors

    out: dict[str, float | None] = {"swd": None, "colour": None}
    if "swd" in sets:
        out["swd"] = swd_of_descriptors(*sets["swd"])["swd"]
    if "colour" in sets:
        out["colour"] = ColourScorer(sets["colour"][1]).score_pixels(sets["colour"][0])
    return out


# the reference scored against itself (unpaired data: the teacher's output is the reference)
_ITSELF = {"l1": 0.0, "psnr": None, "swd": 0.0, "colour": 0.0}


def profile(model: torch.nn.Module, input_size: Sequence[int], device: str | torch.device = "cpu",
            runs: int = 20, warmup: int = 5) -> dict[str, Any]:
    """Params, published and true MACs at `input_size` and at the family's reference size,
    measured latency (metrics/cost.profile, the one profiler)."""
    return cost_profile(model, tuple(int(v) for v in input_size), latency=True, warmup=warmup,
                        runs=runs, device=device, reference=True)


@torch.no_grad()
def compare(teacher: torch.nn.Module, compact: torch.nn.Module,
            batches: Sequence[tuple[torch.Tensor, torch.Tensor]], paired: bool,
            input_size: Sequence[int], device: str | torch.device = "cpu",
            extra_scores: Mapping[str, Mapping[str, float]] | None = None, n_grid: int = 4,
            latency_runs: int = 20, meta: Mapping[str, Any] | None = None,
            test: tuple[Sequence[tuple[torch.Tensor, torch.Tensor]], bool] | None = None
            ) -> tuple[dict[str, Any], torch.Tensor]:
    """(report dict, image grid tensor). batches: held-out (source, target) pairs; on unpaired
    data the target is ignored and the teacher's output is the reference.
    test: (batches, paired) of the test split (pipeline.test_batches), scored the same way into
    models[...]["test_quality"]; its reference is the ground truth only when it is paired.

    extra_scores: {"fid": {"teacher": x, "compact": y}, ...}, lower is better.
    """
    teacher, compact = teacher.to(device).eval(), compact.to(device).eval()
    batches = [(s.to(device), t.to(device)) for s, t in batches]
    teacher_out = [teacher(*scoring_inputs(teacher, s, i)) for i, (s, _) in enumerate(batches)]
    report: dict[str, Any] = {"paired": paired, "held_out_images": sum(len(s) for s, _ in batches),
                              "input_size": list(input_size), **dict(meta or {})}
    models = {"teacher": profile(teacher, input_size, device, latency_runs),
              "compact": profile(compact, input_size, device, latency_runs)}
    if paired:
        reference = "ground truth"
        models["teacher"]["quality"] = quality(teacher, batches)
        models["compact"]["quality"] = quality(compact, batches)
    else:
        reference = "teacher output"
        models["teacher"]["quality"] = dict(_ITSELF)  # the reference itself
        models["compact"]["quality"] = quality(compact, [(s, t) for (s, _), t in
                                                         zip(batches, teacher_out)])
    if test is not None:
        test_list = [(s.to(device), t.to(device)) for s, t in test[0]]
        report["test_images"] = sum(len(s) for s, _ in test_list)
        report["test_reference"] = "ground truth" if test[1] else "teacher output"
        for who, model in (("teacher", teacher), ("compact", compact)):
            models[who]["test_quality"] = (quality(model, test_list) if test[1] or
                                           who == "compact" else dict(_ITSELF))
    for name, values in (extra_scores or {}).items():
        for who in ("teacher", "compact"):
            if who in values:
                models[who]["quality"][name] = float(values[who])
    report["reference"] = reference
    report["models"] = models
    t, c = models["teacher"], models["compact"]
    report["ratios"] = {
        "macs": c["macs"] / t["macs"], "params": c["params"] / t["params"],
        "speedup": t["latency_ms"] / c["latency_ms"] if c["latency_ms"] > 0 else None,
        "l1": (c["quality"]["l1"] / t["quality"]["l1"]) if paired and t["quality"]["l1"] > 0
        else None}
    rows = []
    for index, ((source, target), t_out) in enumerate(zip(batches, teacher_out)):
        c_out = compact(*scoring_inputs(compact, source, index))
        shown = teacher.input_picture(source)
        for i in range(len(source)):
            if len(rows) >= n_grid:
                break
            row = [shown[i], t_out[i], c_out[i]]
            if paired:
                row.append(target[i])
            rows.append(row)
    report["grid_columns"] = ["input", "teacher", "compact"] + (["target"] if paired else [])
    return report, make_grid(rows)


def markdown(report: Mapping[str, Any]) -> str:
    """The report as a Markdown table (teacher | compact | ratio)."""
    t, c = report["models"]["teacher"], report["models"]["compact"]
    size = "x".join(map(str, report["input_size"][2:]))
    lat = t["latency"]
    lines = ["# gancompress report", ""]
    if report.get("config"):
        lines += [f"Compact sub-network `{report['config']}`"
                  + (f", budget {report['budget']}" if report.get("budget") else "") + ".", ""]
    lines += ["| | teacher | compact | compact / teacher |", "|---|---:|---:|---:|",
              f"| parameters | {t['params']:,} | {c['params']:,} | "
              f"{c['params'] / t['params']:.3f} |",
              f"| MACs at {size} | {format_count(t['macs'])} | {format_count(c['macs'])} | "
              f"{c['macs'] / t['macs']:.3f} |",
              f"| MACs at {'x'.join(map(str, c['ref_size']))} | {format_count(t['macs_ref'])} | "
              f"{format_count(c['macs_ref'])} | {c['macs_ref'] / t['macs_ref']:.3f} |",
              f"| latency (ms, median) | {t['latency_ms']:.2f} | {c['latency_ms']:.2f} | "
              f"{c['latency_ms'] / t['latency_ms']:.3f} |"]
    splits = [("quality", "", report["reference"])]
    if "test_quality" in c:
        splits.append(("test_quality", "test ", report["test_reference"]))
    for field, prefix, ref in splits:
        for key, label in (("l1", f"{prefix}L1 to {ref} (lower is better)"),
                           ("psnr", f"{prefix}PSNR to {ref}, dB (higher is better)"),
                           ("swd", f"{prefix}SWD x1e3 to {ref} (lower is better)"),
                           ("colour", f"{prefix}colour distance to {ref}, CIELAB a*b* "
                                      f"(lower is better)")):
            if key not in t[field] and key not in c[field]:
                continue  # a report written before the metric existed
            tv, cv = t[field].get(key), c[field].get(key)
            ratio = f"{cv / tv:.3f}" if tv not in (None, 0.0) else "-"
            lines.append(f"| {label} | {_num(tv)} | {_num(cv)} | {ratio} |")
    for key in sorted(set(t["quality"]) - {"l1", "psnr", "swd", "colour"}):
        tv, cv = t["quality"].get(key), c["quality"].get(key)
        lines.append(f"| {key.upper()} (lower is better) | {_num(tv, 3)} | {_num(cv, 3)} | - |")
    where = (f" and on the {report['test_images']} images of the test split" if "test_images" in
             report else " (the data has no test split)")
    lines += ["", f"Quality on {report['held_out_images']} held-out training images{where}. MACs: published convention (docs/reference.md sec. 5). Latency: batch 1 at "
              f"{size}, {lat['runs']} runs after {lat['warmup']} warm-up, {lat['device']} "
              f"({lat['device_name']}), {lat['threads']} threads, torch {lat['torch']}. "
              f"SWD: {SWDSettings().describe()}. Colour distance: {ColourSettings().describe()}."
              + (f" Seed of the run (train.seed): {report['seed']}."
                 if report.get("seed") is not None else ""), "",
              f"![input | teacher | compact{' | target' if report['paired'] else ''}](grid.png)",
              ""]
    return "\n".join(lines)


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def write_report(report: Mapping[str, Any], grid: torch.Tensor, out_dir: str | Path
                 ) -> dict[str, Path]:
    """Write report.json, report.md and grid.png into `out_dir` (atomically)."""
    out = Path(out_dir)
    paths = {"json": out / "report.json", "markdown": out / "report.md", "grid": out / "grid.png"}
    save_image(grid, paths["grid"])
    atomic_write_text(paths["markdown"], markdown(report))
    # report.json marks the stage done: written last, after every other file exists
    atomic_write_text(paths["json"], json.dumps(report, indent=2, default=str) + "\n")
    return paths
