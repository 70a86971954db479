"""Image files <-> tensors, with the published conventions, and atomic file writes.

Tensors are float (C, H, W) or (B, C, H, W) in [-1, 1]. Conversion to uint8 follows the
reference evaluation code: (x + 1) / 2 * 255, clipped to [0, 255], truncated (not rounded).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from gancompress.errors import UserError
from gancompress.files import atomic_path

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside `folder` (sorted); a clear error if there is no such folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder of images")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMG_EXTENSIONS and p.is_file())


def open_image(path: str | Path, channels: int = 3) -> Image.Image:
    """Read an image fully (so truncation is caught here) as RGB (3 channels) or L (1 channel).

    Grayscale, palette and RGBA files are converted (alpha composited on white).
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            return flatten_image(img, channels)
    except FileNotFoundError:
        raise UserError(f"image file not found: {path}") from None
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


def save_image(x: torch.Tensor, path: str | Path) -> None:
    """Write a (C, H, W) tensor in [-1, 1] as an image file (atomically)."""
    array = to_uint8(x)
    if array.shape[-1] == 1:
        array = array[..., 0]
    path = Path(path)
    with atomic_path(path) as tmp:
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
