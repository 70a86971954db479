"""Image files <-> tensors, with the published conventions: the one decoding rule (16-bit
scaled, never clipped; every input of a batch checked before anything is written).

`open_checked` is the one reader of image files, photos and label maps alike (commands, data
readers, calibration, the demo's uploads): the pixel count an image declares is checked against
`pixel_limit()` (GANCOMPRESS_MAX_IMAGE_PIXELS, default 128 Mi pixels) before anything is decoded,
whatever Pillow's own bomb limit; EXIF orientation is applied to photos (never to label maps,
whose pixels are ids); every decoding failure is one UserError that says what the file is
(sniff.py) and what was expected.

Tensors are float (C, H, W) or (B, C, H, W) in [-1, 1]. Conversion to uint8 follows the
reference evaluation code: (x + 1) / 2 * 255, clipped to [0, 255], truncated (not rounded).
"""
from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from gancompress.errors import UserError
from gancompress.files import atomic_path, os_error, read_dir
from gancompress.sniff import IMAGE_FORMATS, declared_size, sniff

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside `folder` (sorted); a clear error if there is no such folder
    or it cannot be read."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder of images")
    return sorted(p for p in read_dir(folder) if p.suffix.lower() in IMG_EXTENSIONS
                  and p.is_file())


# Modes holding more than 8 bits per sample. PNG/TIFF store 16-bit samples in 0..65535; Pillow
# opens them as I;16* (or I), and convert("RGB") would clip every value above 255 to white.
_WIDE_INTEGER = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def to_8bit(img: Image.Image, path: Path | str = "image") -> Image.Image:
    """8-bit grayscale ("L") version of a 16-/32-bit integer image, scaled from the 16-bit
    range (v / 257, so 65535 -> 255); refuses float and out-of-range images (one line)."""
    if img.mode not in _WIDE_INTEGER:
        if img.mode == "F":
            raise UserError(f"cannot use image {path}: it holds 32-bit floating-point samples, "
                            f"whose range is not defined; convert it to an 8- or 16-bit PNG")
        return img
    array = np.asarray(img, dtype=np.int64)
    if array.size and (array.min() < 0 or array.max() > 65535):
        raise UserError(f"cannot use image {path}: its {img.mode} samples span "
                        f"{array.min()}..{array.max()}, outside the 16-bit range 0..65535; "
                        f"convert it to an 8- or 16-bit PNG")
    scaled = np.floor(array.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


# Decompression-bomb guard: 128 Mi pixels (16384 x 8192, a 108 MP phone photo fits) is below
# Pillow's own refusal (2 x 89.5 M pixels), so by default Pillow's global limit is left alone.
MAX_PIXELS_ENV = "GANCOMPRESS_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 128 * 2**20


class ImageTooLarge(UserError):
    """An image declaring more pixels than the limit (the demo answers it with 413)."""

    def __init__(self, message: str, pixels: int, limit: int,
                 size: tuple[int, int] | None = None):
        super().__init__(message)
        self.pixels = pixels
        self.limit = limit
        self.size = size  # (width, height) when the header was read, else None


def pixel_limit() -> int:
    """The most pixels an image may declare: $GANCOMPRESS_MAX_IMAGE_PIXELS, else 128 Mi."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "").replace(",", "")
    if not text:
        return DEFAULT_MAX_PIXELS
    if not text.isdigit() or int(text) < 1:
        raise UserError(f"{MAX_PIXELS_ENV}={os.environ[MAX_PIXELS_ENV]!r}: give a whole number of "
                        f"pixels, e.g. {MAX_PIXELS_ENV}=400000000")
    return int(text)


def _check_pixels(name: str, size: tuple[int, int], limit: int, what: str,
                  env_advice: bool) -> None:
    width, height = int(size[0]), int(size[1])
    if width * height > limit:
        raise ImageTooLarge(
            f"{what} {name} is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{limit:,} pixels (a guard against decompression bombs)"
            + (f"; if it is genuine, raise the limit: {MAX_PIXELS_ENV}={width * height}"
               if env_advice else ""), width * height, limit, (width, height))


def _allow_in_pillow(limit: int) -> None:
    """Pillow refuses images over 2 x Image.MAX_IMAGE_PIXELS inside Image.open; when the user
    raised our limit past that, Pillow's is raised with it (never lowered)."""
    current = Image.MAX_IMAGE_PIXELS
    if current is not None and 2 * current < limit:
        Image.MAX_IMAGE_PIXELS = limit


def open_checked(source: str | Path | bytes, *, name: str | None = None, what: str = "image",
                 orient: bool = False, limit: int | None = None, header_only: bool = False
                 ) -> Image.Image:
    """Open an image file (a path, or the bytes of an upload) through the checks: the declared
    pixel count against `limit` (default `pixel_limit()`) before decoding, the whole file
    decoded (so truncation is caught here; `header_only` stops after the header), EXIF
    orientation applied when `orient` (photos). The image keeps its mode (callers convert).

    Every failure is one UserError naming the file (`name`, default the path): ImageTooLarge
    for too many pixels, else what the file is when it is not an image, else Pillow's reason.
    """
    data = source if isinstance(source, (bytes, bytearray)) else None
    label = name or str(source)
    env_advice = limit is None
    limit = pixel_limit() if limit is None else int(limit)
    try:
        handle = io.BytesIO(bytes(data)) if data is not None else open(source, "rb")
    except FileNotFoundError:
        raise UserError(f"{what} file not found: {label}") from None
    except IsADirectoryError:
        raise UserError(f"{label} is a folder; give {what} file") from None
    except OSError as err:
        raise os_error(label, err, doing="read") from None
    with handle:
        try:
            size = declared_size(handle)
        except OSError as err:
            raise os_error(label, err, doing="read") from None
        if size is not None:
            _check_pixels(label, size, limit, what, env_advice)
        handle.seek(0)
        _allow_in_pillow(limit)
        try:
            with warnings.catch_warnings():
                # our limit decides; Pillow's warning below its refusal would only be noise
                # (racing demo threads can at worst leave this one "ignore" filter installed)
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = Image.open(handle)
                _check_pixels(label, img.size, limit, what, env_advice)
                if not header_only:
                    img.load()
                    if orient:
                        img = ImageOps.exif_transpose(img)
        except UserError:
            raise
        except Image.DecompressionBombError as err:  # a format whose header we do not parse
            found = re.search(r"\((\d+) pixels\)", str(err))
            pixels = int(found.group(1)) if found else limit + 1
            raise ImageTooLarge(
                f"{what} {label} declares {pixels:,} pixels, over the limit of {limit:,} pixels "
                f"(a guard against decompression bombs)"
                + (f"; if it is genuine, raise the limit: {MAX_PIXELS_ENV}={pixels}"
                   if env_advice else ""), pixels, limit) from None
        except MemoryError:
            raise UserError(f"cannot read {what} {label}: not enough memory to decode it "
                            f"(the file is corrupt, or too large for this machine)") from None
        except Exception as err:  # noqa: BLE001 - any decoder failure on the file's bytes
            raise _unreadable(label, data if data is not None else Path(source), err,
                              what) from None
    return img


def _unreadable(label: str, source: Path | bytes, err: BaseException, what: str) -> UserError:
    """The one line for a file Pillow could not open: what it is when it is no image."""
    try:
        found = sniff(source)
    except OSError:
        found = None
    if found is not None and not found.is_image:
        return UserError(f"cannot read {what} {label}: it is {found.what}, not an image (give "
                         f"{IMAGE_FORMATS} file)")
    if isinstance(err, UnidentifiedImageError):  # its text names the file object, not the file
        reason = (f"its {found.detail} header is damaged" if found is not None and found.is_image
                  else "Pillow cannot decode this image format")
    else:
        text = str(err).strip()
        reason = text.splitlines()[0][:200] if text else type(err).__name__
    return UserError(f"cannot read {what} {label}: {reason} (the file is corrupt, truncated or "
                     f"not an image; replace or remove it)")


def image_size(path: str | Path, what: str = "image") -> tuple[int, int]:
    """(width, height) from an image's header (nothing decoded), through the same checks."""
    return open_checked(path, what=what, header_only=True).size


def open_image(path: str | Path, channels: int = 3) -> Image.Image:
    """Read a photo fully (so truncation is caught here) as RGB (3 channels) or L (1 channel),
    upright by its EXIF orientation.

    Grayscale, palette and RGBA files are converted (alpha composited on white); 16-bit
    images are scaled to 8 bits (`to_8bit`), never clipped.
    """
    img = open_checked(path, orient=True)
    try:
        return flatten_image(to_8bit(img, path), channels)
    except (ValueError, OSError) as err:  # a mode Pillow cannot convert (LAB, HSV, ...)
        raise UserError(f"cannot read image {path}: {err} (convert it to an 8-bit RGB or "
                        f"grey PNG)") from None


def flatten_image(img: Image.Image, channels: int = 3) -> Image.Image:
    """A loaded image as RGB (3 channels) or L (1 channel); transparency composited on white."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("RGB" if channels == 3 else "L")


def check_images(paths: list[Path], channels: int = 3, limit: int = 10) -> None:
    """Decode every file before a batch command writes anything; one UserError listing all the
    bad files (up to `limit` named) if any cannot be used."""
    bad: list[str] = []
    for path in paths:
        try:
            open_image(path, channels)
        except ImageTooLarge as err:
            bad.append(f"{path} ({_too_large(err)})")
        except UserError as err:
            bad.append(f"{path} ({_reason(str(err))})")
    if bad:
        shown = "; ".join(bad[:limit]) + (f"; and {len(bad) - limit} more" if len(bad) > limit
                                          else "")
        raise UserError(f"{len(bad)} of {len(paths)} input image(s) cannot be read, so nothing "
                        f"was written: {shown}. Replace or remove them and run again")


def _too_large(err: ImageTooLarge) -> str:
    size = f"{err.size[0]}x{err.size[1]} = " if err.size else ""
    return (f"{size}{err.pixels:,} pixels, over the limit of {err.limit:,}; if genuine, raise "
            f"it with {MAX_PIXELS_ENV}")


def _reason(message: str) -> str:
    # "cannot read image P: REASON (the file is ...)" -> REASON
    text = message.split(": ", 1)[1] if ": " in message else message
    return text.split(" (the file is")[0][:120]


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image -> float tensor (C, H, W) in [-1, 1]."""
    array = np.asarray(img, dtype=np.float32)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.transpose(2, 0, 1).copy()) / 127.5 - 1.0


def read_image(path: str | Path, channels: int = 3, size: tuple[int, int] | None = None
               ) -> torch.Tensor:
    """Image file -> (C, H, W) in [-1, 1]; `size` = (H, W) resizes bicubically first."""
    img = open_image(path, channels)
    if size is not None and img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), Image.BICUBIC)
    return pil_to_tensor(img)


def to_uint8_tensor(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> uint8, the published truncation trunc(clip((y + 1) / 2 * 255, 0, 255)), on the
    same device and layout. uint8 input is returned as is. The one uint8 conversion (images
    saved, FID, mIoU, PSNR)."""
    if images.dtype == torch.uint8:
        return images
    return ((images.detach().float() + 1) / 2 * 255).clamp(0, 255).to(torch.uint8)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) or (B, C, H, W) in [-1, 1] -> uint8 array (H, W, C) or (B, H, W, C)."""
    x = to_uint8_tensor(x).cpu()
    return x.permute(*range(x.dim() - 3), -2, -1, -3).numpy()


def save_image(x: torch.Tensor, path: str | Path, overwrite: bool = True) -> None:
    """Write a (C, H, W) tensor in [-1, 1] as an image file (atomically; with overwrite=False
    an existing file is never replaced)."""
    array = to_uint8(x)
    if array.shape[-1] == 1:
        array = array[..., 0]
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        Image.fromarray(array).save(tmp, format=_pil_format(path))


def make_grid(rows: list[list[torch.Tensor]], pad: int = 2) -> torch.Tensor:
    """Tile equal-sized (C, H, W) images: rows[i][j] at row i, column j. 1-channel -> 3-channel."""
    cells = [[t.expand(3, *t.shape[1:]) if t.shape[0] == 1 else t for t in row] for row in rows]
    c, h, w = cells[0][0].shape
    n_cols = max(len(r) for r in cells)
    grid = torch.ones(c, len(cells) * (h + pad) + pad, n_cols * (w + pad) + pad)
    for i, row in enumerate(cells):
        for j, img in enumerate(row):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[:, y:y + h, x:x + w] = img.detach().cpu().float()
    return grid


def _pil_format(path: Path) -> str:
    ext = path.suffix.lower()
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
            ".webp": "WEBP", ".ppm": "PPM", ".pgm": "PPM"}.get(ext, "PNG")


def colour_ids(ids: torch.Tensor) -> torch.Tensor:
    """(H, W) integer label ids -> (3, H, W) in [-1, 1], a fixed distinct colour per id (for
    sample grids and reports of label-map inputs)."""
    ids = ids.long()
    rgb = torch.stack([(ids * 37) % 255, (ids * 91 + 80) % 255, (ids * 153 + 160) % 255]).float()
    return rgb / 127.5 - 1
