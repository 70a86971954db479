"""Image files <-> tensors, with the published conventions: the one decoding rule (16-bit
scaled, never clipped; every input of a batch checked before anything is written).

Tensors are float (C, H, W) or (B, C, H, W) in [-1, 1]. Conversion to uint8 follows the
reference evaluation code: (x + 1) / 2 * 255, clipped to [0, 255], truncated (not rounded).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from gancompress.errors import UserError
from gancompress.files import atomic_path, os_error, read_dir

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


def open_image(path: str | Path, channels: int = 3) -> Image.Image:
    """Read an image fully (so truncation is caught here) as RGB (3 channels) or L (1 channel).

    Grayscale, palette and RGBA files are converted (alpha composited on white); 16-bit
    images are scaled to 8 bits (`to_8bit`), never clipped.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            return flatten_image(to_8bit(img, path), channels)
    except FileNotFoundError:
        raise UserError(f"image file not found: {path}") from None
    except PermissionError as err:
        raise os_error(path, err, doing="read") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UserError(f"cannot read image {path}: {err} (the file is corrupt, truncated or not "
                        f"an image; replace or remove it)") from None


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
        except UserError as err:
            bad.append(f"{path} ({_reason(str(err))})")
    if bad:
        shown = "; ".join(bad[:limit]) + (f"; and {len(bad) - limit} more" if len(bad) > limit
                                          else "")
        raise UserError(f"{len(bad)} of {len(paths)} input image(s) cannot be read, so nothing "
                        f"was written: {shown}. Replace or remove them and run again")


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
