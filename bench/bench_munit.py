"""Benchmark: teacher vs compressed MUNIT on this CPU (MACs, latency, L1 to the teacher).

    .venv/bin/python bench/bench_munit.py [--work /tmp/bench_munit] [--threads 1]
        [--teacher-epochs 6] [--supernet-epochs 4] [--runs 30] [--skip-trained] [--skip-published]

Part 1 (trained, built-in unpaired data): `gancompress demo-data --kind edges` (its A and B
halves used as two unpaired domains: edges, photos) -> MUNIT teacher (`train --preset
munit-demo`) -> `compress --preset munit-demo` (Fast pipeline: supernet with output, content and
style distillation, evolution scored by L1 to the teacher under fixed random styles, budget 1/5
of the teacher's MACs, no fine-tuning) -> compact model. Printed: MACs with and without the
style encoder, latency of teacher and compact measured side by side (eager PyTorch, batch 1),
L1 to the teacher on the held-out images under 4 fixed styles per image (seed 10), next to the
L1 between two teacher translations of the same image under different styles (how much the
style alone moves an output: the scale an L1 to the teacher should be read against).

Part 2 (published architectures, untrained weights, 256x256): the full MUNIT (ngf 64, mlp 256)
vs the released compressed config 16_16_16_24_56_16_40_40_32_24: MACs (docs/families.md
sec. 1.1: 77.30G vs 2.62G) and latency side by side.

Latency: medians over `--runs` calls, the models taking turns in blocks (deploy.backends.
measure_side_by_side), with p10/p90; the machine is shared, so absolute times are noisy and
only the side-by-side ratios are meaningful. Nothing here is a timed assertion.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from gancompress.compress.heldout import held_out_batches
from gancompress.compress.pipeline import compress, compress_config
from gancompress.config import apply_overrides, preset
from gancompress.data.demo import write_demo_data
from gancompress.deploy.backends import measure_side_by_side
from gancompress.metrics.cost import count_macs, count_params, format_count
from gancompress.models import build_generator
from gancompress.models.checkpoint import load_generator
from gancompress.compress.tasks import train

RELEASED = "16_16_16_24_56_16_40_40_32_24"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def macs_both(model, size: int) -> tuple[int, int]:
    """(with style encoder: forward(x), without: forward(x, style)) published MACs."""
    with_style = count_macs(model, (1, model.in_channels, size, size))
    without = count_macs(model, model.mac_variants((size, size))["without_style_encoder"])
    return with_style, without


def latency(models: dict, size: int, runs: int) -> dict:
    """Side-by-side eager latency of forward(x, style) and forward(x), batch 1."""
    calls = {}
    for name, model in models.items():
        x, style = model.example_inputs((size, size), generator=torch.Generator().manual_seed(0))

        def translate(m=model, x=x, s=style):
            with torch.inference_mode():
                return m(x, s)

        def own_style(m=model, x=x):
            with torch.inference_mode():
                return m(x)

        calls[f"{name} (given style)"] = translate
        calls[f"{name} (+ style encoder)"] = own_style
    return measure_side_by_side(calls, warmup=3, runs=runs, settle=False)


def print_latency(measured: dict, pairs: list[tuple[str, str]]) -> None:
    for name, m in measured.items():
        print(f"  {name:34s} {m['median_ms']:9.2f} ms median (p10 {m['p10_ms']:.2f}, p90 "
              f"{m['p90_ms']:.2f}, {m['runs']} runs)")
    for slow, fast in pairs:
        print(f"  speed-up {slow} / {fast}: "
              f"{measured[slow]['median_ms'] / measured[fast]['median_ms']:.2f}x")


@torch.no_grad()
def style_l1(teacher, compact, batches, n_styles: int = 4, seed: int = 10) -> dict:
    """Per-image L1 to the teacher under n fixed styles, and teacher-vs-teacher L1 between
    consecutive styles (the spread the style alone causes)."""
    gen = torch.Generator().manual_seed(seed)
    styles = [teacher.random_style(1, gen) for _ in range(n_styles)]
    to_teacher, between_styles = [], []
    for source, _ in batches:
        outs_t = [teacher(source, s.expand(len(source), -1, -1, -1)) for s in styles]
        outs_c = [compact(source, s.expand(len(source), -1, -1, -1)) for s in styles]
        for t, c in zip(outs_t, outs_c):
            to_teacher += (t - c).abs().flatten(1).mean(1).tolist()
        for a, b in zip(outs_t, outs_t[1:]):
            between_styles += (a - b).abs().flatten(1).mean(1).tolist()
    return {"l1_to_teacher": statistics.fmean(to_teacher),
            "l1_to_teacher_p90": sorted(to_teacher)[int(0.9 * (len(to_teacher) - 1))],
            "teacher_l1_between_styles": statistics.fmean(between_styles),
            "images": len(to_teacher) // n_styles, "styles": n_styles}


def part1(work: Path, threads: int, teacher_epochs: int, supernet_epochs: int, runs: int) -> dict:
    timings = {}
    data = work / "data"
    if not data.exists():
        write_demo_data(data, kind="edges")
    t = time.perf_counter()
    teacher_dir = work / "teacher"
    if not (teacher_dir / "generator_AtoB.pth").is_file():
        cfg = apply_overrides(preset("munit-demo"), {
            "data.root": str(data), "train.progress": False, "train.threads": threads,
            "train.epochs": teacher_epochs})
        train(cfg, teacher_dir, resume=(teacher_dir / "config.json").is_file())
    timings["teacher training"] = time.perf_counter() - t
    t = time.perf_counter()
    cfg = compress_config(teacher=str(teacher_dir / "generator_AtoB.pth"), data=str(data),
                          preset_name="munit-demo", overrides=[
                              "train.progress=false", f"train.threads={threads}",
                              f"compress.supernet_epochs={supernet_epochs}"])
    result = compress(cfg, work / "compressed", log=log)
    timings["compress"] = time.perf_counter() - t
    best = json.loads((work / "compressed" / "search" / "best.json").read_text())

    teacher = load_generator(teacher_dir / "generator_AtoB.pth")
    compact = load_generator(work / "compressed" / "compact.pth")
    names = (work / "compressed" / "held_out.txt").read_text().split()
    batches, _ = held_out_batches(cfg, names, teacher)
    size = cfg.data.crop_size
    out = {"config": best["best"], "timings": timings, "search": best,
           "params": {"teacher": count_params(teacher), "compact": count_params(compact)},
           "macs": {"teacher": macs_both(teacher, size), "compact": macs_both(compact, size)},
           "macs_256": {"teacher": macs_both(teacher, 256), "compact": macs_both(compact, 256)},
           "quality": style_l1(teacher, compact, batches),
           "report_l1": result["report"]["models"]["compact"]["quality"]["l1"], "size": size}
    out["latency"] = latency({"teacher": teacher, "compact": compact}, size, runs)
    return out


def part2(runs: int) -> dict:
    torch.manual_seed(0)
    full = build_generator("munit", ngf=64).eval()
    small = build_generator("munit", ngf=64, conv="separable", widths=RELEASED).eval()
    return {"macs": {"full": macs_both(full, 256), "compressed": macs_both(small, 256)},
            "params": {"full": count_params(full), "compressed": count_params(small)},
            "latency": latency({"full": full, "compressed": small}, 256, runs)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/bench_munit"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--teacher-epochs", type=int, default=6)
    p.add_argument("--supernet-epochs", type=int, default=4)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--published-runs", type=int, default=8)
    p.add_argument("--skip-trained", action="store_true")
    p.add_argument("--skip-published", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {args.threads} thread(s); shared machine: absolute "
          f"times are noisy, ratios are measured side by side")
    if not args.skip_trained:
        r = part1(args.work, args.threads, args.teacher_epochs, args.supernet_epochs, args.runs)
        print(f"\n== Part 1: munit-demo teacher vs compressed ({r['config']}), demo edges -> "
              f"photos, {r['size']} px")
        for who in ("teacher", "compact"):
            (w, wo), (w256, wo256) = r["macs"][who], r["macs_256"][who]
            print(f"  {who:8s} params {r['params'][who]:>9,}  MACs {format_count(w)} "
                  f"({format_count(wo)} without style encoder); at 256 px {format_count(w256)} "
                  f"({format_count(wo256)})")
        ratio = r["macs"]["teacher"][0] / r["macs"]["compact"][0]
        print(f"  MAC reduction (with style encoder): {ratio:.2f}x")
        q = r["quality"]
        print(f"  held-out L1 to the teacher, {q['styles']} fixed styles x {q['images']} images: "
              f"{q['l1_to_teacher']:.4f} (p90 {q['l1_to_teacher_p90']:.4f}); search score "
              f"{r['search'].get('score'):.4f}, report {r['report_l1']:.4f}")
        print(f"  teacher vs itself under another style (style spread): "
              f"{q['teacher_l1_between_styles']:.4f}")
        print_latency(r["latency"], [("teacher (given style)", "compact (given style)"),
                                     ("teacher (+ style encoder)", "compact (+ style encoder)")])
        print("  wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in r["timings"].items())
              + f"; search {r['search'].get('seconds', 0):.0f} s")
        (args.work / "part1.json").write_text(json.dumps(r, indent=2, default=str))
    if not args.skip_published:
        r = part2(args.published_runs)
        print("\n== Part 2: published architectures at 256x256 (untrained weights)")
        for who in ("full", "compressed"):
            w, wo = r["macs"][who]
            print(f"  {who:10s} params {r['params'][who]:>11,}  MACs {w:,} ({format_count(w)}); "
                  f"without style encoder {wo:,}")
        print_latency(r["latency"], [("full (given style)", "compressed (given style)"),
                                     ("full (+ style encoder)", "compressed (+ style encoder)")])
        (args.work / "part2.json").write_text(json.dumps(r, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
