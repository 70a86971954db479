"""int8 post-training static quantization of an exported ONNX generator (onnxruntime, QDQ).

Choice (measured on the compressed ResNet generator, 2-core AVX-512 VNNI CPU; see the report in
deploy/__init__.py): onnxruntime static quantization in QDQ format, per-channel int8 weights,
uint8 activations, MinMax calibration, Conv and DepthToSpace nodes. onnxruntime fuses each
DequantizeLinear -> Conv -> QuantizeLinear into QLinearConv (depthwise included) and runs it in
NHWC with VNNI kernels: the convs take ~2x less time than fp32. InstanceNormalization and Pad
stay float (onnxruntime has no int8 kernels for them), so Q/DQ pairs and NHWC transposes frame
every conv; DepthToSpace (sub-pixel outputs) moves uint8. Quantizing Pad/Relu/Add as well was
not measurably faster and cost ~0.5 dB. Percentile calibration gained ~1 dB on random weights at
3x the calibration time (available as method="percentile"). The PT2E path of PyTorch was not
chosen: its int8 CPU kernels need torch.compile (x86 inductor quantizer) and its output is not a
portable file.

Calibration images come from the training data (`calibration_images`). Layers whose quantization
costs too much quality stay float, chosen by sensitivity (`keep_float="auto"`): if the fully
quantized model is below `target_psnr` against fp32, each conv is in turn left float, the gain in
PSNR is measured (ranges are calibrated once and reused), and the most sensitive convs are kept
float one by one until the target is met or `max_float` convs are float. A conv that reads the
image itself (<= 4 input channels) is always kept float in "auto" mode: it is faster in fp32.
"""
from __future__ import annotations

import inspect
import math
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gancompress.deploy.session import open_session, quiet
from gancompress.errors import UserError
from gancompress.imaging import image_size, list_images, open_image, pil_to_tensor, read_image
from gancompress.metrics.quality import psnr

DEFAULT_TARGET_PSNR = 30.0    # dB vs fp32 the sensitivity search aims for
DEFAULT_MIN_PSNR = 20.0       # dB vs fp32 below which an int8 export is refused
CALIB_METHODS = ("minmax", "percentile", "entropy")


def _paired_half(path: Path, size: tuple[int, int], direction: str) -> str | None:
    """'left' / 'right' when `path` is an A|B side-by-side pair for a model taking `size`
    inputs (twice the model's aspect ratio), else None."""
    w, h = image_size(path)
    height, width = size
    if w % 2 == 0 and abs(w / h - 2 * width / height) < 1e-6 * max(1.0, w / h):
        return "left" if direction == "AtoB" else "right"
    return None


def _crop_half(img: Image.Image, half: str) -> Image.Image:
    w, h = img.size
    return img.crop((0, 0, w // 2, h) if half == "left" else (w // 2, 0, w, h))


def calibration_images(folder: str | Path, input_size: Sequence[int], limit: int = 32,
                       direction: str = "AtoB") -> torch.Tensor:
    """Up to `limit` images (evenly spread) from a folder of images or a dataset folder
    (pix2pix/CycleGAN layouts, training phase, source side), resized to `input_size`, in [-1, 1].
    """
    folder = Path(folder)
    _, channels, height, width = (int(v) for v in input_size)
    if not folder.is_dir():
        raise UserError(f"calibration folder {folder} does not exist or is not a folder")
    files = list_images(folder)
    if files:
        picked = [files[i] for i in _spread(len(files), limit)]
        half = _paired_half(picked[0], (height, width), direction)
        if half is not None:  # the train/ or test/ folder of an aligned A|B set: the input half
            return torch.stack([pil_to_tensor(_crop_half(open_image(p, channels), half)
                                              .resize((width, height), Image.BICUBIC))
                                for p in picked])
        return torch.stack([read_image(p, channels, (height, width)) for p in picked])
    try:
        from gancompress.data import open_dataset

        dataset = open_dataset(folder, phase="train", direction=direction, preprocess="none",
                               flip=False, augment=False, in_channels=channels)
    except ImportError:
        dataset = None
    except UserError as err:
        raise UserError(f"calibration folder {folder} holds no images directly and is not a "
                        f"dataset folder ({err}); pass a folder of training images") from None
    if dataset is None or len(dataset) == 0:
        raise UserError(f"calibration folder {folder} holds no images; pass a folder of "
                        f"training images (png/jpg) or a dataset folder (train/, trainA/)")
    images = []
    for i in _spread(len(dataset), limit):
        source = dataset[i]["source"].unsqueeze(0)
        if tuple(source.shape[-2:]) != (height, width):
            source = F.interpolate(source, size=(height, width), mode="bicubic",
                                   align_corners=False).clamp(-1, 1)
        images.append(source[0])
    return torch.stack(images)


def run_calibration_folder(meta: Any) -> str | None:
    """The training data folder a compressed (or trained) generator's checkpoint records
    (its run's data.root), when it still exists: int8 export calibrates on the run's own data
    when no --calib is given. None when there is no such record or folder."""
    if not isinstance(meta, dict):
        return None
    for key in ("train_config", "config"):
        config = meta.get(key)
        data = config.get("data") if isinstance(config, dict) else None
        root = data.get("root") if isinstance(data, dict) else None
        if isinstance(root, str) and root.strip() and Path(root).is_dir():
            return root
    return None


def _spread(n: int, limit: int) -> list[int]:
    if n <= limit:
        return list(range(n))
    return sorted({int(i * n / limit) for i in range(limit)})


class _Reader:
    """onnxruntime CalibrationDataReader over a tensor of images (one image per batch)."""

    def __init__(self, name: str, images: torch.Tensor):
        self.name, self.images, self.index = name, images.float().cpu().numpy(), 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.index >= len(self.images):
            return None
        self.index += 1
        return {self.name: self.images[self.index - 1:self.index]}

    def __len__(self) -> int:
        return len(self.images)

    def rewind(self) -> None:
        self.index = 0


def _conv_names(model_bytes: bytes) -> tuple[list[str], list[str]]:
    """(Conv node names in graph order, those whose input has <= 4 channels)."""
    import onnx

    proto = onnx.load_from_string(model_bytes)
    shapes = {t.name: list(t.dims) for t in proto.graph.initializer}
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    # weight (out, in / groups, kh, kw): a dense conv reading an image has in <= 4
    narrow = [n.name for n in convs if len(shapes.get(n.input[1], [])) == 4
              and shapes[n.input[1]][1] <= 4 and not _is_grouped(n)]
    return [n.name for n in convs], narrow


def _is_grouped(node) -> bool:
    return any(a.name == "group" and a.i > 1 for a in node.attribute)


class _Quantizer:
    """Calibrates once (onnxruntime's calibration cache when available), quantizes many times."""

    def __init__(self, fp32: bytes, images: torch.Tensor, method: str, workdir: Path,
                 op_types: Sequence[str] = ("Conv",)):
        from onnxruntime.quantization import CalibrationMethod

        if method not in CALIB_METHODS:
            raise UserError(f"unknown calibration method {method!r}; use one of "
                            f"{', '.join(CALIB_METHODS)}")
        self.method = {"minmax": CalibrationMethod.MinMax,
                       "percentile": CalibrationMethod.Percentile,
                       "entropy": CalibrationMethod.Entropy}[method]
        self.workdir = workdir
        self.source = workdir / "fp32.onnx"
        self.source.write_bytes(fp32)
        self.images = images
        self.op_types = list(op_types)
        self.cache = workdir / "calibration.json"
        from onnxruntime.quantization import quantize_static
        self.can_cache = "calibration_cache_path" in inspect.signature(quantize_static).parameters
        self.count = 0

    def __call__(self, exclude: Sequence[str] = ()) -> bytes:
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

        self.count += 1
        out = self.workdir / f"int8_{self.count}.onnx"
        kwargs: dict[str, Any] = {}
        reader: _Reader | None = _Reader("input", self.images)
        if self.can_cache:
            kwargs["calibration_cache_path"] = str(self.cache)
            if self.cache.is_file():
                reader = None
        with quiet():
            quantize_static(str(self.source), str(out), reader, quant_format=QuantFormat.QDQ,
                            op_types_to_quantize=self.op_types, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_exclude=list(exclude), calibrate_method=self.method,
                            **kwargs)
        return out.read_bytes()


def _score(model_bytes: bytes, images: torch.Tensor, reference: torch.Tensor,
           threads: int | None) -> float:
    return psnr(reference, open_session("onnx", model_bytes, threads)(images))


def split_holdout(calib: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(images to calibrate on, held-out images to score on): with >= 4 images a quarter is
    held out; with fewer both are all of them."""
    held = max(1, len(calib) // 4) if len(calib) >= 4 else 0
    return (calib[:-held], calib[-held:]) if held else (calib, calib)


def sensitivity_search(build: Callable[[Sequence[str]], Any], score: Callable[[Any], float],
                       candidates: Sequence[str], excluded: Sequence[str], model: Any,
                       quality: float, target_psnr: float, limit: int
                       ) -> tuple[Any, float, list[str], dict[str, float]]:
    """Keep the most sensitive layers float until `target_psnr` is met (any quantizer).

    build(names kept float) -> quantized model; score(model) -> PSNR vs fp32. Each candidate is
    in turn left float and the PSNR gain measured; then, most sensitive first, a layer stays
    float if that raises the PSNR, until the target is met, `limit` layers are float, or no
    layer gains. Returns (model, PSNR, float layers, gain of each candidate in dB).
    """
    excluded = list(excluded)
    gains = {name: score(build(excluded + [name])) - quality
             for name in candidates if name not in excluded}
    for name, gain in sorted(gains.items(), key=lambda kv: -kv[1]):
        if quality >= target_psnr or len(excluded) >= limit or gain <= 0:
            break
        candidate = build(excluded + [name])
        candidate_quality = score(candidate)
        if candidate_quality > quality:
            excluded.append(name)
            model, quality = candidate, candidate_quality
    ranked = {k: round(v, 3) for k, v in sorted(gains.items(), key=lambda kv: -kv[1])}
    return model, quality, excluded, ranked


def quantize_onnx(fp32: bytes, calib: torch.Tensor, reference_fn, keep_float: str | Sequence[str]
                  = "auto", target_psnr: float = DEFAULT_TARGET_PSNR, max_float: float = 0.25,
                  method: str = "minmax", threads: int | None = None,
                  op_types: Sequence[str] = ("Conv", "DepthToSpace")) -> tuple[bytes, dict]:
    """int8 QDQ model of the fp32 ONNX `fp32`, and a report.

    calib: (N, C, H, W) calibration images (N >= 1; with N >= 4 a quarter is held out for
    scoring). reference_fn(images) -> fp32 PyTorch outputs. keep_float: "auto" (the conv on the
    input image, then by sensitivity, see the module docstring), "none", or names of Conv nodes
    to keep float ("first", "last" allowed). op_types: onnx ops to quantize (DepthToSpace then
    moves uint8 instead of float).
    """
    if len(calib) == 0:
        raise UserError("no calibration images")
    fit, score_on = split_holdout(calib)
    reference = reference_fn(score_on)
    convs, image_convs = _conv_names(fp32)
    with tempfile.TemporaryDirectory(prefix="gancompress-int8-") as tmp:
        quantizer = _Quantizer(fp32, fit, method, Path(tmp), op_types)
        if isinstance(keep_float, str) and keep_float not in ("auto", "none"):
            keep_float = [k for k in keep_float.split(",") if k]
        if keep_float == "auto":
            # A conv on the image itself (3 input channels) is slower in int8 (measured: stem
            # 7x7 3->16 at 256x256, QLinearConv 3.9 ms vs 1.6 ms fp32 NCHWc: K = 147 is too
            # short for the int8 GEMM) and the classic most sensitive layer: it stays float.
            excluded: list[str] = image_convs[:1]
        elif isinstance(keep_float, str):
            excluded = []
        else:
            alias = {"first": convs[0], "last": convs[-1]} if convs else {}
            excluded = [alias.get(k, k) for k in keep_float]
            unknown = [k for k in excluded if k not in convs]
            if unknown:
                raise UserError(f"--keep-float names {unknown} are not Conv nodes of the "
                                f"exported graph; known: first, last, {', '.join(convs[:6])}, ...")
        model = quantizer(excluded)
        quality = _score(model, score_on, reference, threads)
        report: dict[str, Any] = {"method": f"onnxruntime static QDQ, per-channel s8 weights, "
                                            f"u8 activations, {method} calibration, "
                                            f"{'+'.join(op_types)}",
                                  "calibration_images": len(fit), "scored_images": len(score_on),
                                  "convs": len(convs), "psnr_start": quality,
                                  "float_convs_start": list(excluded)}
        if keep_float == "auto" and quality < target_psnr and convs:
            model, quality, excluded, gains = sensitivity_search(
                quantizer, lambda m: _score(m, score_on, reference, threads), convs, excluded,
                model, quality, target_psnr, limit=max(1, int(math.floor(max_float * len(convs)))))
            report["sensitivity_db"] = gains
        report.update(float_convs=excluded, psnr_db=quality, target_psnr=target_psnr)
    return model, report
