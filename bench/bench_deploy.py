"""Deployment speed, side by side: teachers and compressed students on every runtime and precision.

    python bench/bench_deploy.py [--quick] [--models LIST] [--backends LIST] [--size 256]
                                 [--runs 10] [--repeat 3] [--threads 2] [--json]
                                 [--student NAME=JSON] [--checkpoint NAME=FILE]
                                 [--no-gaugan] [--gaugan-size 256 512] [--gaugan-backends LIST]
                                 [--compile] [--profile] [--latency-model]
                                 [--lat-size 256] [--lat-samples 40] [--lat-backends LIST]

Rows (batch 1, each model on each backend, every backend timed round-robin per family,
deploy/backends.py), ResNet family at --size x --size:
    teacher                  ResnetGenerator() (dense, InstanceNorm, ngf 64, 56.8G MACs at 256)
    compressed               the published `16_16_24_16_32_64_16_24` (separable, InstanceNorm,
                             2.64G MACs)
    compressed-fast          a fast student at the published model's MAC budget: dense convs,
                             BatchNorm (folds into the convs at export), every width a multiple
                             of 16 (16_16_12_12_12_12_16_16: 2.50G MACs, 1/22.8 of the teacher)
    compressed-fast-latency  a wider fast student (16_16_16_16_16_16_16_16, 3.78G MACs) for the
                             same-latency comparison
The fast students are hand-picked, not searched (random weights: speed only). They are built
from FAST_STUDENT_ARGS; `fast_student_args()` returns them (dense convs, BatchNorm, zero padding: the student options of
models/resnet.py that fold into the convs at export). A
searched student: `--checkpoint compressed-searched=runs/x/compact.pth` (any generator file)
or `--student 'compressed-x={"conv": "dense", "norm": "batch", "widths": "..."}'`.
GauGAN family at 256x512 (--gaugan-size), label-map inputs:
    teacher-gaugan           SpadeGenerator(ngf=64) (published full model)
    compressed-gaugan        the published compressed config 32_32_48_32_32_32_32_24 (ngf 48,
                             separable, bench/bench_spade.py)
    compressed-gaugan-dense  the same widths with dense convs

Backends: torch (eager, as loaded: the papers' baseline), torch-cl (deployed module eager,
channels-last), torchscript, [compile], onnx, onnx-int8, openvino, openvino-bf16 (CPUs with
bf16), openvino-int8 (NNCF; float ops fp32), openvino-int8-bf16 (float ops bf16). Every row
prints runtime, precision, median and p10-p90 ms, the
model's own MACs at its benchmark size, PSNR against the fp32 PyTorch output (on smooth random
images / random label maps; random weights: a robustness figure, not a trained-model one), the
same-runtime speed-up (its family's teacher on the same backend / the row) and the speed-up
against the eager teacher. `--json` prints one JSON object: `rows` (model, family, teacher,
backend, runtime, precision, median_ms, p10_ms, p90_ms, macs, psnr_vs_fp32_db, speedups, ...).

`--quick` (a few minutes on an idle 2-core machine): 1 repeat x 5 runs, backends torch, onnx,
openvino, openvino-bf16 (where the CPU has bf16), openvino-int8; GauGAN on torch and the
OpenVINO fp32 / bf16 backends only (NNCF on the 256x512 teacher takes minutes). `--models`
filters rows by name (comma-separated, shell patterns: 'teacher,compressed*').
Timings on a shared machine are noisy: the load is printed at start and end.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gancompress.compress.latency import device_name  # noqa: E402
from gancompress.deploy.backends import BACKENDS, build_backend, measure_side_by_side  # noqa: E402
from gancompress.deploy.verify import reference_output, sample_inputs  # noqa: E402
from gancompress.errors import UserError  # noqa: E402
from gancompress.metrics.cost import count_macs, format_count, runtime_conditions  # noqa: E402
from gancompress.metrics.quality import psnr  # noqa: E402
from gancompress.models.resnet import ResnetGenerator  # noqa: E402

CONFIG = "16_16_24_16_32_64_16_24"
GAUGAN_CONFIG = "32_32_48_32_32_32_32_24"
FAST_CONFIGS = {"compressed-fast": "16_16_12_12_12_12_16_16",
                "compressed-fast-latency": "16_16_16_16_16_16_16_16"}
# Student options that exist today; fast_student_args() adds newer ones when ResnetGenerator
# has them.
FAST_STUDENT_ARGS = {"conv": "dense", "norm": "batch", "pad": "zero"}
QUICK_BACKENDS = ("torch", "onnx", "openvino", "openvino-bf16", "openvino-int8")
PRECISION = {"onnx-int8": "int8", "openvino-int8": "int8", "openvino-bf16": "bf16",
             "openvino-int8-bf16": "int8"}
RUNTIME = {"torch": "pytorch eager", "torch-cl": "pytorch eager", "torchscript": "torchscript",
           "compile": "torch.compile", "onnx": "onnxruntime", "onnx-int8": "onnxruntime",
           "openvino": "openvino", "openvino-bf16": "openvino", "openvino-int8": "openvino",
           "openvino-int8-bf16": "openvino"}
PAYS_PSNR = 35.0


def fast_student_args() -> dict:
    """Constructor arguments of the fast students (issue 23): dense convs, BatchNorm and zero
    padding, which fold into the convs at export."""
    return dict(FAST_STUDENT_ARGS)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def available(backends: list[str]) -> list[str]:
    try:
        from gancompress.deploy.session import supports_bf16
        if not supports_bf16():
            backends = [b for b in backends if not b.endswith("bf16")]
    except UserError:  # no openvino installed: its backends are skipped
        backends = [b for b in backends if not b.startswith("openvino")]
    return backends


def resnet_models(args) -> dict:
    models = {"teacher": ResnetGenerator(),
              "compressed": ResnetGenerator(conv="separable", widths=CONFIG)}
    for name, widths in FAST_CONFIGS.items():
        models[name] = ResnetGenerator(**fast_student_args(), widths=widths)
    for spec in args.student:
        name, _, text = spec.partition("=")
        models[_student_name(name)] = ResnetGenerator(**json.loads(text))
    for spec in args.checkpoint:
        from gancompress.models.checkpoint import load_generator
        name, _, path = spec.partition("=")
        models[_student_name(name)] = load_generator(path)
    return models


def _student_name(name: str) -> str:
    name = name.strip()
    return name if name.startswith("compressed") else f"compressed-{name}"


def gaugan_models() -> dict:
    from gancompress.models.spade import SpadeGenerator

    return {"teacher-gaugan": SpadeGenerator(ngf=64),
            "compressed-gaugan": SpadeGenerator(ngf=48, conv="separable", widths=GAUGAN_CONFIG),
            "compressed-gaugan-dense": SpadeGenerator(ngf=48, conv="dense", widths=GAUGAN_CONFIG)}


def inputs_for(model, size, count: int, seed: int) -> torch.Tensor:
    """Images the family takes: smooth random images, or random one-hot label maps."""
    if getattr(model, "image_input", True) and model.in_channels <= 4:
        return sample_inputs(size, count=count, seed=seed)
    return model.example_inputs(size[-2:], batch=count,
                                generator=torch.Generator().manual_seed(seed))[0]


@torch.no_grad()
def settle_batchnorm(model, images: torch.Tensor) -> None:
    """Running statistics of every BatchNorm from the model's own activations on `images`, as
    training would leave them: with the initial ones (mean 0, var 1) a random-weight BatchNorm
    student saturates its tanh, and its outputs (PSNR, int8 ranges) mean nothing."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
             and m.track_running_stats]
    model.eval()
    if not norms:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
        m.train()
    for i in range(len(images)):
        model(images[i:i + 1])
    model.eval()


def bench_family(family: str, models: dict, teacher: str, size, backends, args, log) -> list:
    """Rows of one family: every model on every backend, timed round-robin together."""
    calls, infos = {}, {}
    for name, model in models.items():
        calib = inputs_for(model, size, 8, seed=1)
        settle_batchnorm(model, calib[:4])
        for backend in backends:
            start = time.perf_counter()
            try:
                calls[(name, backend)], infos[(name, backend)] = build_backend(
                    backend, model, size, threads=args.threads, search=False,
                    calib_images=calib if "int8" in backend else None)
            except UserError as err:
                log(f"{name} on {backend}: skipped: {err}")
                continue
            infos[(name, backend)]["build_s"] = time.perf_counter() - start
    for (name, backend), call in calls.items():  # PSNR of every row against fp32 PyTorch
        images = inputs_for(models[name], size, 2, seed=7)
        with torch.no_grad():
            infos[(name, backend)]["psnr_vs_fp32_db"] = psnr(
                reference_output(models[name], images), call.run(images))
    named = {f"{m}/{b}": call for (m, b), call in calls.items()}
    per_repeat = {k: [] for k in calls}
    pooled = {k: [] for k in calls}
    for _ in range(args.repeat):
        measured = measure_side_by_side(named, warmup=args.warmup, runs=args.runs)
        for m, b in calls:
            per_repeat[(m, b)].append(measured[f"{m}/{b}"]["median_ms"])
            pooled[(m, b)].append(measured[f"{m}/{b}"])
    macs = {name: count_macs(model, size) for name, model in models.items()}
    rows = []
    for (m, b), medians in per_repeat.items():
        stats = pooled[(m, b)]
        rows.append({"model": m, "family": family, "teacher": teacher, "backend": b,
                     "runtime": RUNTIME[b], "precision": PRECISION.get(b, "fp32"),
                     "input_size": list(size), "macs": macs[m],
                     "median_ms": statistics.median(medians),
                     "min_ms": min(s["min_ms"] for s in stats),
                     "p10_ms": statistics.median(s["p10_ms"] for s in stats),
                     "p90_ms": statistics.median(s["p90_ms"] for s in stats),
                     "repeat_medians_ms": [round(v, 2) for v in medians],
                     **{("float_precision" if k == "precision" else k): v
                        for k, v in infos[(m, b)].items() if k not in ("backend",)}})
        quality = rows[-1].get("psnr_vs_fp32_db")
        if quality is not None and not math.isfinite(quality):  # identical: strict JSON
            rows[-1]["psnr_vs_fp32_db"] = None
    by = {(r["model"], r["backend"]): r for r in rows}
    eager = by.get((teacher, "torch"))
    for r in rows:
        same = by.get((teacher, r["backend"]))
        r["speedup_same_runtime"] = same["median_ms"] / r["median_ms"] if same else None
        r["speedup_vs_eager_teacher"] = eager["median_ms"] / r["median_ms"] if eager else None
        r["mac_ratio"] = macs[teacher] / r["macs"] if teacher in macs else None
    return rows


def int8_pays(rows: list) -> list[dict]:
    by = {(r["model"], r["backend"]): r for r in rows}
    out = []
    for (model, backend), r in by.items():
        full = {"onnx-int8": "onnx", "openvino-int8": "openvino", "openvino-bf16": "openvino",
                "openvino-int8-bf16": "openvino"}.get(backend)
        if full is None or (model, full) not in by:
            continue
        speedup = by[(model, full)]["median_ms"] / r["median_ms"]
        quality = r.get("psnr_vs_fp32_db")
        quality = math.inf if quality is None else quality
        bf16 = by.get((model, "openvino-bf16"))
        vs_bf16 = bf16["median_ms"] / r["median_ms"] \
            if bf16 and backend.startswith("openvino-int8") else None
        ok = speedup > 1.0 and quality >= PAYS_PSNR
        out.append({"model": model, "backend": backend, "speedup_vs_fp32": speedup,
                    "speedup_vs_bf16": vs_bf16, "psnr_vs_fp32_db": quality, "pays": ok,
                    "text": f"{model:24s} {backend:14s} {speedup:5.2f}x vs {full} fp32"
                            + (f", {vs_bf16:5.2f}x vs bf16" if vs_bf16 else "")
                            + f", PSNR vs fp32 {quality:5.1f} dB (random weights): "
                              f"{'pays' if ok else 'does not pay'}"})
    return out


def print_table(rows: list) -> None:
    print(f"{'model':24s} {'backend':18s} {'runtime':14s} {'prec':4s} {'median':>8s} "
          f"{'p10-p90 ms':>15s} {'MACs':>7s} {'PSNR':>6s} {'same-rt':>8s} {'vs eager':>9s} "
          f"{'MAC ratio':>9s}")
    for r in rows:
        def x(v):
            return f"{v:7.1f}x" if v else "       -"
        print(f"{r['model']:24s} {r['backend']:18s} {r['runtime']:14s} {r['precision']:4s} "
              f"{r['median_ms']:8.2f} {r['p10_ms']:7.2f}-{r['p90_ms']:<7.2f} "
              f"{format_count(r['macs']):>7s} "
              f"{r['psnr_vs_fp32_db'] if r.get('psnr_vs_fp32_db') is not None else math.inf:6.1f} "
              f"{x(r['speedup_same_runtime'])} {x(r['speedup_vs_eager_teacher'])}  "
              f"{x(r['mac_ratio'])}")


def profile(models, size, threads, log) -> dict:
    """Per-op OpenVINO profiles (PERF_COUNT) of the ResNet models, summed over 5 runs."""
    from gancompress.deploy.openvino import latency_call
    from gancompress.deploy.session import supports_bf16

    out = {}
    for precision in ["fp32"] + (["bf16"] if supports_bf16() else []):
        for name, model in models.items():
            call, _ = latency_call(model, size, threads=threads, precision=precision,
                                   profile=True)
            for _ in range(3):
                call()
            by_type: dict[str, float] = {}
            for _ in range(5):
                call()
                for row in call.op_times():
                    kind = f"{row['type']} ({row['kernel']})"
                    by_type[kind] = by_type.get(kind, 0.0) + row["ms"] / 5
            total = sum(by_type.values())
            out[f"{name}/{precision}"] = {"total_ms": total, "by_type_ms": by_type}
            log(f"\nOpenVINO per-op profile, {name}, {precision}: {total:.2f} ms summed op time")
            for kind, ms in sorted(by_type.items(), key=lambda kv: -kv[1])[:10]:
                log(f"  {ms:8.2f} ms {100 * ms / total:5.1f}%  {kind}")
    return out


def latency_models(args, log) -> dict:
    """The latency model of the channels-64-cycleGAN space per --lat-backends runtime, its
    held-out error and its prediction for the published config."""
    import tempfile

    from gancompress.compress.latency import LatencyModel
    from gancompress.compress.space import SearchSpace

    lat_size = args.lat_size or args.size
    size = (1, 3, lat_size, lat_size)
    supernet = ResnetGenerator(ngf=64, conv="separable").eval()
    space = SearchSpace.for_model(supernet, "channels-64-cycleGAN")
    config = space.decode(CONFIG)
    out = {}
    for runtime in [b for b in args.lat_backends.split(",") if b]:
        with tempfile.TemporaryDirectory() as cache:
            start = time.perf_counter()
            try:
                latency = LatencyModel.load_or_build(supernet, space, size, backend=runtime,
                                                     cache_dir=cache, samples=args.lat_samples,
                                                     runs=args.lat_runs, threads=args.threads)
            except UserError as err:
                log(f"latency model ({runtime}): skipped: {err}")
                continue
            built = time.perf_counter() - start
            predicted, measured = latency.predict(config), latency.measure(config)
            out[runtime] = {**latency.summary(), "build_s": built, "size": lat_size,
                            "predicted_ms": predicted, "measured_ms": measured}
            log(f"{latency.describe()}; built in {built:.0f} s; {CONFIG}: predicted "
                f"{predicted:.1f} ms, measured {measured:.1f} ms (min of 10); {load()}")
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 repeat x 5 runs, main backends")
    p.add_argument("--models", help="row filter: names or patterns, comma-separated")
    p.add_argument("--backends", help="comma-separated (default: all available)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--runs", type=int, default=None, help="timed runs per repeat (10)")
    p.add_argument("--repeat", type=int, default=None, help="(3)")
    p.add_argument("--warmup", type=int, default=None, help="(3)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--student", action="append", default=[], metavar="NAME=JSON",
                   help="an extra ResNet student row from ResnetGenerator arguments")
    p.add_argument("--checkpoint", action="append", default=[], metavar="NAME=FILE",
                   help="an extra student row from a generator file (a searched student)")
    p.add_argument("--no-gaugan", action="store_true")
    p.add_argument("--gaugan-size", type=int, nargs=2, default=(256, 512), metavar=("H", "W"))
    p.add_argument("--gaugan-backends", help="comma-separated (default: as --backends; with "
                                             "--quick torch and OpenVINO fp32 / bf16)")
    p.add_argument("--compile", action="store_true", help="also torch.compile (slow build)")
    p.add_argument("--profile", action="store_true", help="per-op OpenVINO profile")
    p.add_argument("--latency-model", action="store_true",
                   help="also fit the latency model per --lat-backends runtime (slow)")
    p.add_argument("--no-latency-model", action="store_true",
                   help="(the default now; accepted for earlier command lines)")
    p.add_argument("--lat-size", type=int, default=None, help="default: --size")
    p.add_argument("--lat-samples", type=int, default=40)
    p.add_argument("--lat-runs", type=int, default=9)
    p.add_argument("--lat-backends", default="torch,onnx,openvino,openvino-bf16,openvino-int8")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    quick = args.quick
    args.runs = args.runs or (5 if quick else 10)
    args.repeat = args.repeat or (1 if quick else 3)
    args.warmup = args.warmup if args.warmup is not None else (1 if quick else 3)
    if args.backends:
        backends = [b.strip() for b in args.backends.split(",") if b.strip()]
        unknown = [b for b in backends if b not in BACKENDS]
        if unknown:
            p.error(f"unknown backends {unknown}; choose from {', '.join(BACKENDS)}")
    elif quick:
        backends = list(QUICK_BACKENDS)
    else:
        backends = [b for b in BACKENDS if b != "compile" or args.compile]
    args.backend_list = available(backends)
    if args.gaugan_backends:
        gaugan = [b.strip() for b in args.gaugan_backends.split(",") if b.strip()]
    elif quick:
        gaugan = ["torch", "openvino", "openvino-bf16"]
    else:
        gaugan = backends
    args.gaugan_list = available(gaugan)
    args.patterns = [m.strip() for m in (args.models or "").split(",") if m.strip()]
    return args


def wanted(name: str, patterns: list[str]) -> bool:
    return not patterns or any(fnmatch.fnmatch(name, p) for p in patterns)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    log = (lambda *a, **k: print(*a, **k, file=sys.stderr)) if args.json else print
    torch.manual_seed(0)
    conditions = {**runtime_conditions("cpu"), "device_name": device_name("cpu")}
    start_load = load()
    log(f"{conditions['device_name']}, batch 1, {args.threads} threads, {args.repeat} repeat(s) "
        f"x {args.runs} runs, round-robin per family; at start: {start_load}")
    rows = []
    size = (1, 3, args.size, args.size)
    resnet = {k: v for k, v in resnet_models(args).items() if wanted(k, args.patterns)}
    if resnet:
        teacher = "teacher"
        if teacher not in resnet:  # the same-runtime speed-ups need the teacher's row
            resnet = {"teacher": ResnetGenerator(), **resnet}
        rows += bench_family("resnet", resnet, teacher, size, args.backend_list, args, log)
    if not args.no_gaugan:
        gaugan = {k: v for k, v in gaugan_models().items() if wanted(k, args.patterns)}
        if gaugan:
            first = next(iter(gaugan.values()))
            g_size = (1, first.in_channels, *args.gaugan_size)
            rows += bench_family("gaugan", gaugan, "teacher-gaugan", g_size, args.gaugan_list,
                                 args, log)
    end_load = load()
    pays = int8_pays(rows)
    result = {"config": CONFIG, "gaugan_config": GAUGAN_CONFIG, "fast_configs": FAST_CONFIGS,
              "fast_student_args": fast_student_args(), "threads": args.threads,
              "device_name": conditions["device_name"], "torch": conditions["torch"],
              "runs": args.runs, "repeat": args.repeat, "quick": args.quick,
              "load_start": start_load, "load_end": end_load, "rows": rows,
              "reduced_precision_pays": pays}
    if not args.json:
        print_table(rows)
        for line in pays:
            print(line["text"])
        print(f"{args.repeat} repeat(s) x {args.runs} runs, round-robin; at end: {end_load}")
    if args.profile:
        result["openvino_profile"] = profile(
            {k: v for k, v in resnet_models(args).items() if k in ("teacher", "compressed")},
            size, args.threads, log)
    if args.latency_model:
        result["latency_model"] = latency_models(args, log)
    if args.json:
        print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
