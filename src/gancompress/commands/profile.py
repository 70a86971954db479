"""`gancompress profile`: parameters, MACs (published and true) and measured latency of a generator.

    gancompress profile runs/demo-compact/compact.pth --latency
    gancompress profile --arch resnet --ngf 64 --widths 16_16_32_16_32_32_16_16 --size 256 256
    gancompress profile G.pth --latency --backends torch,onnx,onnx-int8 --latency-runs 20 --json
    gancompress profile G.onnx --latency --threads 4
"""
from __future__ import annotations

import argparse
from pathlib import Path

from gancompress.commands._common import (
    THREADS,
    add_arch_arguments,
    float_range,
    image_side,
    model_from_args,
    print_json,
)
from gancompress.commands._options import add_device_argument, add_latency_arguments
from gancompress.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="count params and MACs, measure latency",
                       description="Count parameters and MACs (published convention and true "
                                   "count) of a generator checkpoint or an architecture, and "
                                   "optionally measure its latency at batch 1.")
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="generator checkpoint (any supported format) or exported file (.onnx, "
                        "OpenVINO .xml, TorchScript .pt): MACs from its recorded architecture, "
                        "--latency times the file itself")
    add_arch_arguments(p)
    p.add_argument("--size", nargs=2, type=image_side, metavar=("H", "W"),
                   help="input height and width (default: the family's reference size, e.g. "
                        "256 256 for ResNet)")
    p.add_argument("--latency", action="store_true", help="also measure latency (batch 1)")
    add_latency_arguments(p, old_names=True)
    add_device_argument(p)
    p.add_argument("--threads", type=THREADS, help="torch CPU threads for --latency")
    p.add_argument("--backends", default="torch", metavar="LIST",
                   help="with --latency: comma-separated backends measured side by side: torch "
                        "(eager, default), torchscript, compile, onnx, onnx-int8, openvino, "
                        "openvino-bf16, openvino-int8")
    p.add_argument("--calib", metavar="DIR", help="calibration images for the int8 backends "
                                                  "(default: synthetic images, speed only)")
    p.add_argument("--edit", type=float_range(0.0, 1.0), metavar="FRACTION",
                   help="incremental inference: apply a synthetic brush-stroke edit covering "
                        "FRACTION of the family's example input (e.g. 0.02) and report MACs, "
                        "error and PSNR of the incremental pass against a dense pass (with "
                        "--latency: ms_dense and ms_incremental, side by side)")
    p.add_argument("--mode", choices=("exact", "fast"), default="fast",
                   help="with --edit: exact (equals the dense pass) or fast (SIGE's trade: one "
                        "region per resolution, cached InstanceNorm statistics; default)")
    p.add_argument("--realistic", action="store_true",
                   help="with --edit: start from a bundled photo (or a label map cut from it) "
                        "instead of the family's random example input")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from gancompress.devices import parse_device
    from gancompress.metrics.cost import count_macs_both, count_params, measure_latency

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto" and args.model and \
            Path(args.model).suffix.lower() in (".onnx", ".xml"):
        args.device = "cpu"  # exported graphs run on the CPU here; auto must not pick CUDA
    args.device = str(parse_device(args.device))
    if args.model:
        from gancompress.deploy.runtime import file_kind
        if file_kind(args.model) != "checkpoint":
            return _profile_file(args)
    model = model_from_args(args, device=args.device)
    if args.edit is not None:
        return _profile_edit(args, model)
    size = model.input_size(args.size)
    published, true = count_macs_both(model, size)
    result = {"arch": model.arch_name, "conv": model.arch.get("conv"),
              "widths": model.arch.get("widths"), "input_size": list(size),
              "params": count_params(model), "macs": published, "macs_true": true}
    for name, inputs in model.mac_variants(size[-2:]).items():  # e.g. MUNIT without style encoder
        result.setdefault("macs_variants", {})[name] = count_macs_both(model, example=inputs)[0]
    if getattr(model, "source_format", None):
        result["format"] = model.source_format
    backends = ["torch"]
    if args.latency and args.backends != "torch":
        from gancompress.deploy.backends import parse_backends
        backends = parse_backends(args.backends)
    if args.latency and backends != ["torch"]:
        _measure_backends(args, model, size, backends, result)
    elif args.latency:
        lat = measure_latency(model, size, warmup=args.latency_warmup, runs=args.latency_runs,
                              device=args.device)
        result["latency_ms"] = lat["median_ms"]
        result["latency"] = lat
    if args.json:
        print_json(result)
        return 0
    _print(args, result)
    return 0


def _print(args: argparse.Namespace, result: dict) -> None:
    from gancompress.metrics.cost import format_count

    size, published, true = result["input_size"], result["macs"], result["macs_true"]
    if "file" in result:
        print(f"file          {args.model} ({result['file']}, {result['precision']})")
    print(f"architecture  {result['arch']} ({result['conv']}), widths {result['widths']}")
    if "format" in result:
        print(f"format        {result['format']}")
    print(f"input         {'x'.join(map(str, size))}")
    print(f"params        {result['params']:,} ({format_count(result['params'])})")
    print(f"MACs          {published:,} ({format_count(published)}, published convention)")
    print(f"MACs (true)   {true:,} ({format_count(true)})")
    for name, macs in result.get("macs_variants", {}).items():
        print(f"MACs          {macs:,} ({format_count(macs)}, {name.replace('_', ' ')})")
    if args.latency and "backends" in result:
        base = result["backends"].get("torch", {}).get("median_ms")
        for name, lat in result["backends"].items():
            ratio = f", {base / lat['median_ms']:.2f}x eager" if base and name != "torch" else ""
            print(f"latency       {name:12s} {lat['median_ms']:8.2f} ms median (p10 "
                  f"{lat['p10_ms']:.2f}, p90 {lat['p90_ms']:.2f}, {lat['runs']} runs{ratio})")
        print(f"              measured side by side, {result['threads']} threads, "
              f"{result['device_name']}")
    elif args.latency:
        lat = result["latency"]
        print(f"latency       {lat['median_ms']:.2f} ms median (p10 {lat['p10_ms']:.2f}, p90 "
              f"{lat['p90_ms']:.2f}, {lat['runs']} runs) on {lat['device']} "
              f"({lat['device_name']}), {lat['threads']} threads, torch {lat['torch']}")


def _profile_file(args: argparse.Namespace) -> int:
    """An exported file: its recorded architecture's counts, and its own latency (--latency)."""
    import torch

    from gancompress.deploy.backends import measure_side_by_side
    from gancompress.deploy.runtime import open_model
    from gancompress.metrics.cost import count_macs_both, count_params, runtime_conditions
    from gancompress.models import build_generator

    if args.backends != "torch":
        raise UserError("--backends applies to checkpoints (each backend exports the model "
                        "itself); an exported file runs on its own runtime: drop --backends")
    runner = open_model(args.model, device=args.device, threads=args.threads)
    meta = runner.metadata
    if "arch_name" not in meta or "arch" not in meta:
        raise UserError(f"{args.model} records no architecture (not exported by gancompress "
                        f"export); profile the checkpoint instead")
    model = build_generator(meta["arch_name"], **meta["arch"]).eval()
    size = tuple(runner.input_size) if runner.input_size is not None else \
        model.input_size(args.size)
    published, true = count_macs_both(model, size)
    precision = meta.get("precision", "fp32")
    result = {"file": runner.kind, "precision": precision, "arch": model.arch_name,
              "conv": model.arch.get("conv"), "widths": model.arch.get("widths"),
              "input_size": list(size), "params": count_params(model), "macs": published,
              "macs_true": true}
    if args.latency:
        name = runner.kind + ("" if precision == "fp32" else f"-{precision}")
        example = torch.rand(size) * 2 - 1
        measured = measure_side_by_side({name: lambda: runner(example)},
                                        warmup=args.latency_warmup, runs=args.latency_runs,
                                        device=args.device)
        result["backends"] = measured
        result["latency_ms"] = measured[name]["median_ms"]
        result.update({k: v for k, v in runtime_conditions(args.device).items()
                       if k in ("threads", "device_name", "torch")})
    if args.json:
        print_json(result)
    else:
        _print(args, result)
    return 0


def _measure_backends(args: argparse.Namespace, model, size, backends: list[str],
                      result: dict) -> None:
    """Latency of several backends, timed side by side (gancompress.deploy.backends)."""
    from gancompress.deploy.backends import build_backend, measure_side_by_side
    from gancompress.metrics.cost import runtime_conditions

    calib = None
    if args.calib and any(name.endswith("-int8") for name in backends):
        from gancompress.deploy.quantize import calibration_images
        calib = calibration_images(args.calib, size)
    calls, infos = {}, {}
    for name in backends:
        calls[name], infos[name] = build_backend(name, model, size, threads=args.threads,
                                                 device=args.device, calib_images=calib)
    measured = measure_side_by_side(calls, warmup=args.latency_warmup, runs=args.latency_runs,
                                    device=args.device)
    result["backends"] = {name: {**measured[name], **infos[name]} for name in backends}
    if "torch" in measured:
        result["latency_ms"] = measured["torch"]["median_ms"]
    result.update({k: v for k, v in runtime_conditions(args.device).items()
                   if k in ("threads", "device_name", "torch")})


def _profile_edit(args: argparse.Namespace, model) -> int:
    """`--edit FRACTION`: one incremental pass against a dense pass (gancompress.incremental)."""
    from gancompress.incremental.measure import edit_input, profile_edit

    if args.backends != "torch":
        raise UserError("--edit measures eager PyTorch (dense and incremental on the same "
                        "runtime): drop --backends")
    x0 = edit_input(model, model.input_size(args.size)[-2:], realistic=args.realistic)
    result = profile_edit(model, x0, args.edit, mode=args.mode, latency=args.latency,
                          runs=args.latency_runs, warmup=args.latency_warmup)
    result["arch"] = model.arch_name
    if args.json:
        print_json(result)
        return 0
    dense, inc = result["macs_dense"], result["macs_incremental"]
    print(f"incremental   {model.arch_name}, {result['mode']} mode: {result['mode_behaviour']}")
    print(f"input         {'x'.join(map(str, result['input_size']))}, edit covering "
          f"{result['changed_fraction']:.2%} of the pixels")
    print(f"MACs          {format_count(dense)} dense -> {format_count(inc)} incremental "
          f"({dense / max(inc, 1):.1f}x fewer)")
    print(f"error         max {result['max_abs_error']:.2e}, PSNR {result['psnr_db']:.1f} dB "
          f"against the dense pass")
    print(f"cache         {result['cache_bytes'] / 2**20:.1f} MiB of cached activations")
    if result["dense_ops"]:
        ops = ", ".join(f"{k} x{v}" for k, v in result["dense_ops"].items())
        print(f"dense ops     {ops} (whole-image dependence or not modelled)")
    if args.latency:
        print(f"latency       {result['ms_dense']:.2f} ms dense, {result['ms_incremental']:.2f} ms "
              f"incremental ({result['ms_dense'] / result['ms_incremental']:.2f}x), "
              f"{result['threads']} threads, eager PyTorch")
    return 0
