"""`gancompress export`: generator checkpoint -> verified ONNX (fp32 / int8), OpenVINO IR (fp32 /
bf16 / int8) or TorchScript file.

    gancompress export runs/demo-compact/compact.pth --out compact.onnx
    gancompress export compact.pth --out compact-int8.onnx --int8 --calib demo_data/train
    gancompress export compact.pth --out compact.xml --int8 --calib demo_data/train   # OpenVINO
    gancompress export runs/c/finetune/supernet.pth --widths 16_16_32_16_32_32_16_16 --out s.pt
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gancompress.commands._common import (
    add_user_arch_arguments,
    float_range,
    image_side,
    int_range,
    load_model_arg,
)
from gancompress.commands._options import HIDDEN, old
from gancompress.errors import UserError

FORMATS = ("onnx", "openvino", "torchscript")
SUFFIX_FORMATS = {".onnx": "onnx", ".xml": "openvino", ".pt": "torchscript", ".ts": "torchscript",
                  ".torchscript": "torchscript", ".ptl": "torchscript"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a generator to ONNX, OpenVINO IR (fp32 or int8) or TorchScript",
        description="Export any generator checkpoint gancompress can load (ours or the published "
                    "formats; a supernet at --widths) to a deployable file. Every export is run "
                    "on sample inputs and compared with PyTorch before the file is written; the "
                    "input size and normalisation are recorded in the file.")
    p.add_argument("model", metavar="MODEL", help="generator checkpoint (any supported format)")
    p.add_argument("--out", required=True,
                   help="output file (.onnx, .xml for OpenVINO with a .bin next to it, .pt)")
    p.add_argument("--format", help="onnx, openvino or torchscript (default: from the --out "
                                    "suffix)")
    p.add_argument("--int8", action="store_true",
                   help="int8 post-training quantization (ONNX: onnxruntime static QDQ; "
                        "OpenVINO: NNCF), calibrated on --calib images")
    p.add_argument("--bf16", action="store_true",
                   help="OpenVINO only: run in bf16 on CPUs with AMX / AVX-512 BF16 (faster, "
                        "checked against --min-psnr instead of the fp32 tolerance)")
    p.add_argument("--calib", metavar="DIR",
                   help="calibration images: a folder of training images or a dataset folder")
    p.add_argument("--calib-count", type=int_range(1, 10**6), default=32, help="calibration images used (32)")
    p.add_argument("--calib-method", default="minmax", help="minmax (default), percentile, entropy")
    p.add_argument("--keep-float", default="auto", metavar="auto|none|NAMES",
                   help="convs left in float for --int8: auto (by sensitivity, default), none, "
                        "or comma-separated ONNX node names / 'first' / 'last'")
    p.add_argument("--target-psnr", type=float_range(0.0, 200.0), help="dB vs fp32 the auto sensitivity search "
                                                     "aims for (default 30)")
    p.add_argument("--min-psnr", type=float_range(0.0, 200.0),
                   help="refuse an int8 export below this PSNR vs fp32 (default 20 dB)")
    p.add_argument("--size", nargs=2, type=image_side, metavar=("H", "W"),
                   help="input height and width recorded in the file (default: the family's "
                        "reference size, 256 256 for ResNet and U-Net)")
    p.add_argument("--widths", metavar="CONFIG",
                   help="export this sub-network of a supernet (config string 16_16_32_...)")
    p.add_argument("--opset", type=int_range(7, 100), help="ONNX opset (default 18; legacy exporter: 17)")
    p.add_argument("--exporter", default="dynamo", help="dynamo (default) or legacy")
    p.add_argument("--no-optimize", action="store_true",
                   help="skip the CPU rewrites (output phases, sub-pixel transposed convs)")
    p.add_argument("--tolerance", type=float_range(0.0, 10.0), default=1e-3,
                   help="max abs difference to PyTorch an fp32 export may have (default 1e-3)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out file" + old("--force"))
    p.add_argument("--force", dest="overwrite", action="store_true", help=HIDDEN)
    p.add_argument("--json", action="store_true", help="print the recorded metadata as JSON")
    add_user_arch_arguments(p)
    p.set_defaults(func=run)


def _format(args: argparse.Namespace) -> str:
    if args.format:
        fmt = args.format.lower()
        if fmt not in FORMATS:
            raise UserError(f"unsupported export target {args.format!r}; supported: onnx, "
                            f"openvino, torchscript (TFLite, Core ML and TensorRT read the ONNX file with "
                            f"their own converters)")
        return fmt
    suffix = Path(args.out).suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        raise UserError(f"cannot tell the export format from {args.out!r}; pass --format onnx, "
                        f"openvino or torchscript (or name the file .onnx / .xml / .pt)")
    return SUFFIX_FORMATS[suffix]


def run(args: argparse.Namespace) -> int:
    import torch

    from gancompress.deploy.onnx_export import export_onnx
    from gancompress.deploy.torchscript import export_torchscript
    from gancompress.models.elastic import compact

    from gancompress.files import check_output_file, check_writable

    out = Path(args.out)
    suffix = {"onnx": ".onnx", "openvino": ".xml", "torchscript": ".pt"}.get(
        (args.format or "onnx").lower(), ".onnx")
    # a folder first: the format cannot be told from its name, and --overwrite cannot help
    check_output_file(out, args.overwrite, example=f"{Path(args.model).stem}{suffix}")
    fmt = _format(args)
    check_writable(out)  # before the export work, not after it
    if args.int8 and fmt not in ("onnx", "openvino"):
        raise UserError("--int8 is available for ONNX and OpenVINO only; use --format onnx or "
                        "--format openvino")
    if args.bf16 and fmt != "openvino":
        raise UserError("--bf16 is an OpenVINO inference precision; use --format openvino")
    if fmt == "openvino":
        from gancompress.deploy.openvino import require_nncf, require_openvino
        require_openvino()
        if args.int8:
            require_nncf()
        if out.suffix.lower() != ".xml":
            raise UserError(f"an OpenVINO IR is an .xml file (the .bin goes next to it); got "
                            f"--out {out}")
    model = load_model_arg(args)  # a checkpoint, or a user's class (--arch) with its weights
    if args.int8 and not args.calib:  # the run's own training data, where the model records it
        from gancompress.deploy.quantize import run_calibration_folder
        args.calib = run_calibration_folder(getattr(model, "meta", None))
        if not args.calib:
            raise UserError("--int8 needs calibration images from the training data: pass "
                            "--calib DIR (a folder of images or a dataset folder); this model "
                            "records no training data folder that exists")
        print(f"# int8 calibration on the run's training data: {args.calib}", file=sys.stderr)
    if args.widths:  # the config string of the model's own family
        model = compact(model, model.widths_from_config(args.widths)).eval()
    size = (1, model.in_channels, *model.check_size(args.size or model.reference_size))
    if fmt == "torchscript" and len(model.input_names) > 1:
        raise UserError(f"a {model.arch_name} generator takes {', '.join(model.input_names)}; "
                        f"TorchScript export traces the image input only: use --format onnx "
                        f"(the further inputs become ONNX inputs)")
    meta_extra = {"source": Path(args.model).name,
                  "source_format": getattr(model, "source_format", None)}
    with torch.no_grad():
        calib = None
        if args.int8:
            from gancompress.deploy.quantize import calibration_images
            calib = calibration_images(args.calib, size, limit=args.calib_count)
        if fmt == "openvino":
            from gancompress.deploy.openvino import export_openvino

            meta = export_openvino(model, out, size, optimize=not args.no_optimize,
                                   tolerance=args.tolerance, metadata=meta_extra,
                                   overwrite=args.overwrite, int8=args.int8, calib_images=calib,
                                   keep_float=args.keep_float, min_psnr=args.min_psnr,
                                   target_psnr=args.target_psnr,
                                   precision="bf16" if args.bf16 else "fp32")
        elif fmt == "onnx":
            meta = export_onnx(model, out, size, opset=args.opset, exporter=args.exporter,
                               optimize=not args.no_optimize, tolerance=args.tolerance,
                               metadata=meta_extra, overwrite=args.overwrite, int8=args.int8,
                               calib_images=calib, keep_float=args.keep_float,
                               min_psnr=args.min_psnr, target_psnr=args.target_psnr,
                               calib_method=args.calib_method)
        else:
            meta = export_torchscript(model, out, size, optimize=not args.no_optimize,
                                      tolerance=args.tolerance, metadata=meta_extra,
                                      overwrite=args.overwrite)
    if args.json:
        print(json.dumps(meta, indent=2, default=str))
        return 0
    verify = meta["verify"]
    what = f"{fmt} {meta['precision']}"
    size_bytes = out.stat().st_size
    if fmt == "onnx":
        what += f", opset {meta['opset']} ({meta['exporter']} exporter)"
    elif fmt == "openvino":
        what += f", runs in {meta['inference_precision']}, OpenVINO {meta['openvino']}"
        size_bytes += out.with_suffix(".bin").stat().st_size
        out = f"{out} + {out.with_suffix('.bin').name}"
    print(f"wrote {out} ({what}, {size_bytes / 1e6:.2f} MB)")
    what_in = "in [-1, 1]" if model.image_input else model.input_description
    print(f"input         {'x'.join(map(str, size))} {what_in} (dynamic batch), config "
          f"{meta.get('config', '-')}")
    for name, shape in meta.get("extra_inputs", {}).items():  # e.g. MUNIT's style code
        print(f"input         {name}: (B, {', '.join(map(str, shape))})")
    if meta["precision"] == "int8":
        q = meta["quantization"]
        print(f"int8          PSNR vs fp32 {q['psnr_db']:.2f} dB on {q['scored_images']} held-out "
              f"calibration images ({q['psnr_start']:.2f} dB before the sensitivity search); "
              f"{len(q['float_convs'])} of {q['convs']} convs kept float")
        print(f"verified      max abs error {verify['max_abs']:.3g}, PSNR "
              f"{verify['psnr_db']:.2f} dB vs PyTorch on {verify['inputs']} sample inputs")
    elif "min_psnr" in verify:
        print(f"verified      fp32 max abs error {verify['fp32_max_abs']:.3g}; in "
              f"{meta['inference_precision']} max abs error {verify['max_abs']:.3g}, PSNR "
              f"{verify['psnr_db']:.2f} dB vs PyTorch on {verify['inputs']} sample inputs")
    else:
        print(f"verified      max abs error {verify['max_abs']:.3g} (tolerance "
              f"{verify['tolerance']:g}), PSNR {verify['psnr_db']:.1f} dB vs PyTorch on "
              f"{verify['inputs']} sample inputs")
    return 0
