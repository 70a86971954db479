"""Automatic elastic conversion (models/traced.py): how long it takes, and what it gives.

    python bench/bench_auto_convert.py [--repeat 3] [--threads 1] [--no-onnx] [--only NAMES]
                                       [--tiny] [--json]

Rows:
  * pix2pix ResNet teacher (tests/user_models/pix2pix_resnet.py: ngf 64, 9 blocks, batch norm)
    at 256x256: the issue's target is conversion in under 5 s (issue 24);
  * every generator of tests/user_models at its published default widths and the input size of
    docs/byog.md's table (64x64; 16x16 for the super-resolution nets), or with --tiny at the
    tests' tiny widths and sizes (a quick smoke run).

Per row: width groups, the conversion time (`convert(module, example_inputs)`: the trace on a
meta-device copy, the analysis and the in-place swap to elastic layers; median of --repeat
runs, fresh module each time, module construction not counted), MACs (published convention)
of the model, and after one uniform width factor (the largest, found by bisection, that brings
the MACs to at most 1/10: the simplest point, the search picks non-uniform widths), and the max
abs error of that compact model exported to ONNX and run by onnxruntime against PyTorch
(deploy.onnx_export's verification; `--no-onnx` skips it, as does a missing onnxruntime).

Timings depend on the machine's load: say whether it was idle (the load averages are printed).
"""
from __future__ import annotations

import argparse
import copy
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]  # gancompress, and user_models

from gancompress.metrics.cost import count_macs_both, format_count  # noqa: E402
from gancompress.models.elastic import compact, using_widths  # noqa: E402
from gancompress.models.traced import convert  # noqa: E402

SR = (1, 3, 16, 16)
IMG = (1, 3, 64, 64)
# name: (class, arguments of docs/byog.md's table (published defaults unless it says otherwise),
# tiny arguments of tests/contract/test_auto_convert.py, input shapes, tiny input shapes)
ARCHS = {
    "pix2pix ResNet 9 blocks @256": (
        "user_models.pix2pix_resnet:ResnetGenerator", {}, dict(ngf=8, n_blocks=3),
        [(1, 3, 256, 256)], [(1, 3, 32, 32)]),
    "pix2pixHD global": ("user_models.pix2pixhd:GlobalGenerator", dict(n_downsampling=4),
                         dict(ngf=4, n_downsampling=2, n_blocks=2), [IMG], [(1, 3, 32, 32)]),
    "CUT ResNet": ("user_models.cut:ResnetGenerator", {}, dict(ngf=4, n_blocks=2), [IMG],
                   [(1, 3, 32, 32)]),
    "Johnson TransformerNet": ("user_models.johnson:TransformerNet", {}, dict(width=4), [IMG],
                               [(1, 3, 32, 32)]),
    "AnimeGANv2": ("user_models.animegan:Generator", {}, dict(width=4), [IMG], [(1, 3, 32, 32)]),
    "U-GAT-IT light": ("user_models.ugatit:ResnetGenerator", dict(n_blocks=4, img_size=64),
                       dict(ngf=4, n_blocks=2, img_size=32), [IMG], [(1, 3, 32, 32)]),
    "ESRGAN RRDBNet": ("user_models.esrgan:RRDBNet", {}, dict(nf=8, nb=1, gc=4), [SR], [SR]),
    "Real-ESRGAN SRVGGNetCompact": ("user_models.realesrgan:SRVGGNetCompact", dict(num_conv=32),
                                    dict(num_feat=8, num_conv=2, upscale=2), [SR], [SR]),
    "Attention U-Net": ("user_models.attention_unet:AttU_Net", {}, dict(base=4), [IMG],
                        [(1, 3, 32, 32)]),
    "StarGAN (image + label)": ("user_models.stargan:Generator", {},
                                dict(conv_dim=4, c_dim=5, repeat_num=2), [IMG, (1, 5)],
                                [(1, 3, 32, 32), (1, 5)]),
    "Transformer bottleneck": ("user_models.transformer_unet:TransformerUNet", dict(ngf=64),
                               dict(ngf=4),
                               [IMG], [(1, 3, 32, 32)]),
}


def build(path: str, args: dict) -> torch.nn.Module:
    mod, _, cls = path.partition(":")
    return getattr(importlib.import_module(mod), cls)(**args).eval()


def uniform_tenth(g, inputs) -> tuple[float, dict, int, int]:
    """(factor, widths, MACs, MACs at widths): the largest uniform width factor with MACs <= 1/10.
    Counted on a meta-device copy (MACs follow shapes only; no arithmetic at 256x256)."""
    try:
        meta = copy.deepcopy(g).to("meta")
        meta_inputs = tuple(t.to("meta") for t in inputs)
        count_macs_both(meta, meta_inputs)
        g, inputs = meta, meta_inputs
    except Exception:  # noqa: BLE001 - a forward that needs values: count on real tensors
        pass
    full = count_macs_both(g, inputs)[0]

    def at(f: float) -> tuple[dict, int]:
        widths = {k: max(1, round(v * f)) for k, v in g.max_widths.items()}
        with using_widths(g, widths):
            return widths, count_macs_both(g, inputs)[0]

    lo, hi = 0.0, 1.0
    for _ in range(14):
        mid = (lo + hi) / 2
        if at(mid)[1] <= full / 10:
            lo = mid
        else:
            hi = mid
    widths, macs = at(lo)
    return lo, widths, full, macs


def onnx_error(g, widths, inputs) -> float | None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    from gancompress.deploy.onnx_export import export_onnx

    small = compact(g, widths).eval()
    with tempfile.TemporaryDirectory() as tmp:
        meta = export_onnx(small, Path(tmp) / "g.onnx", input_size=tuple(inputs[0].shape))
    return float(meta["verify"]["max_abs"])


def measure(name: str, tiny: bool, repeat: int, onnx: bool) -> dict:
    path, published, small, shapes, tiny_shapes = ARCHS[name]
    args = small if tiny else published
    shapes = tiny_shapes if tiny else shapes
    gen = torch.Generator().manual_seed(0)
    inputs = tuple(torch.rand(s, generator=gen) * 2 - 1 for s in shapes)
    times = []
    for _ in range(repeat):
        net = build(path, args)
        start = time.perf_counter()
        g = convert(net, inputs, args=args)
        times.append(time.perf_counter() - start)
    g.eval()
    factor, widths, full, tenth = uniform_tenth(g, inputs)
    error = onnx_error(g, widths, inputs) if onnx else None
    return {"architecture": name, "groups": len(g.max_widths),
            "input": "x".join(map(str, shapes[0][2:])), "convert_s": statistics.median(times),
            "convert_s_all": times, "macs": full, "macs_tenth": tenth, "factor": factor,
            "onnx_max_abs": error}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="conversions timed per row (3)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1)")
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX export and check")
    p.add_argument("--only", help="comma-separated row names (substrings), e.g. ResNet,ESRGAN")
    p.add_argument("--tiny", action="store_true", help="the tests' tiny widths and sizes")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    names = [n for n in ARCHS if not a.only or any(s.strip().lower() in n.lower()
                                                   for s in a.only.split(","))]
    # one untimed conversion first: torch's lazy initialisation (meta tensors, dispatch) and
    # the imports of the first call are not the conversion's cost
    path, _, tiny_args, _, tiny_shapes = ARCHS["pix2pix ResNet 9 blocks @256"]
    convert(build(path, tiny_args), torch.zeros(tiny_shapes[0]), args=tiny_args)
    load = os.getloadavg()
    rows = []
    for name in names:
        rows.append(measure(name, a.tiny, max(1, a.repeat), not a.no_onnx))
        if not a.json:
            r = rows[-1]
            err = "-" if r["onnx_max_abs"] is None else f"{r['onnx_max_abs']:.1e}"
            # tiny widths: even 1 channel per group may stay above 1/10
            factor = f"x{r['factor']:.2f}" if r["factor"] > 0 else "every width 1"
            print(f"| {name} | {r['groups']} | {r['input']} | {r['convert_s']:.2f} | "
                  f"{format_count(r['macs'])} | {format_count(r['macs_tenth'])} "
                  f"({r['macs_tenth'] / r['macs']:.3f}, {factor}) | {err} |",
                  flush=True)
            if len(rows) == 1:
                print("(columns: architecture | width groups | input | convert s (median) | "
                      "MACs | MACs at <= 1/10 (ratio, uniform width factor) | ONNX max abs "
                      "error)", flush=True)
    info = {"torch": torch.__version__, "threads": a.threads, "repeat": a.repeat,
            "tiny": a.tiny, "load_before": load, "load_after": os.getloadavg()}
    if a.json:
        print(json.dumps({"info": info, "rows": rows}, indent=2))
    else:
        print(f"# torch {info['torch']}, {a.threads} thread(s), load average before "
              f"{load[0]:.2f}, after {info['load_after'][0]:.2f} (a loaded machine: noisy "
              f"timings)")
        resnet = next((r for r in rows if r["architecture"].startswith("pix2pix ResNet")), None)
        if resnet is not None and not a.tiny:
            verdict = "meets" if resnet["convert_s"] < 5 else "misses"
            print(f"# 9-block ResNet teacher at 256x256: {resnet['convert_s']:.2f} s, "
                  f"{verdict} the < 5 s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
