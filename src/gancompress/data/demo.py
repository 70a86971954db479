"""Built-in demo data: a small paired dataset made from real photos bundled with scikit-image.

`write_demo_data(out)` writes the aligned layout (out/train/*.png, out/test/*.png, each file
A | B side by side) from random crops of the colour photographs that ship inside the
scikit-image wheel (read straight from the package folder, never through its downloader):
    kind="colorize"  A = grayscale crop, B = the colour crop   (grayscale -> colour)
    kind="edges"     A = Canny edges (black on white), B = the colour crop (edges -> photo)
Train and test crops come from disjoint photos, so no test crop shows a training photo.
All photos are public domain / CC0 or free to use (see scikit-image's data documentation).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from gancompress.errors import UserError
from gancompress.files import (
    check_writable,
    clean_stale_temps,
    folder_is_empty,
    os_error,
    temp_sibling,
)

# Colour photographs bundled in the scikit-image wheel (skimage/data/). The stereo pair
# motorcycle_left/right shows one scene: both are on the training side.
TRAIN_PHOTOS = {"astronaut": "astronaut.png", "rocket": "rocket.jpg",
                "motorcycle_left": "motorcycle_left.png",
                "motorcycle_right": "motorcycle_right.png",
                "hubble_deep_field": "hubble_deep_field.jpg", "ihc": "ihc.png",
                "retina": "retina.jpg"}
TEST_PHOTOS = {"chelsea": "chelsea.png", "coffee": "coffee.png"}
KINDS = ("colorize", "edges")


def bundled_photo(filename: str) -> Image.Image:
    """An RGB photo from scikit-image's package data folder (no download is ever attempted)."""
    try:
        import skimage.data
    except ImportError:
        raise UserError("the demo data is made from photos bundled with scikit-image; install it "
                        "with: pip install scikit-image") from None
    path = Path(skimage.data.__file__).parent / filename
    if not path.is_file():
        raise UserError(f"{path} is missing from the installed scikit-image; reinstall "
                        f"scikit-image (the demo data uses only photos bundled in its wheel)")
    with Image.open(path) as img:
        return img.convert("RGB")


def _edges(gray: Image.Image) -> Image.Image:
    from skimage.feature import canny
    edges = canny(np.asarray(gray, dtype=np.float32) / 255.0, sigma=1.0)
    return Image.fromarray(np.where(edges, 0, 255).astype(np.uint8)).convert("RGB")


def _crops(photos: dict[str, str], n: int, size: int, rng: np.random.Generator
           ) -> list[tuple[str, Image.Image]]:
    """n random square crops (side 1/4..1/2 of the photo's short side) resized to `size`."""
    images = {name: bundled_photo(f) for name, f in photos.items()}
    names = sorted(images)
    out: list[tuple[str, Image.Image]] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        name = names[len(out) % len(names)] if attempts < 50 * n else names[0]
        img = images[name]
        w, h = img.size
        short = min(w, h)
        side = int(rng.integers(max(size, short // 4), max(size, short // 2) + 1))
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        crop = img.crop((x, y, x + side, y + side)).resize((size, size), Image.LANCZOS)
        # Skip near-uniform crops (dark sky, retina background): nothing to learn from them.
        if np.asarray(crop.convert("L"), dtype=np.float32).std() < 12 and attempts < 50 * n:
            continue
        out.append((name, crop))
    return out


def write_demo_data(out: str | Path, kind: str = "colorize", size: int = 64, n_train: int = 400,
                    n_test: int = 40, seed: int = 0) -> dict:
    """Write the demo dataset to `out` (must not exist or be empty); returns a summary dict."""
    if kind not in KINDS:
        raise UserError(f"unknown demo data kind {kind!r}; use one of {', '.join(KINDS)}")
    if size < 16 or size % 4:
        raise UserError(f"demo image size must be a multiple of 4 and at least 16, got {size}")
    if n_train < 1 or n_test < 1:
        raise UserError("the demo dataset needs at least one train and one test pair")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; choose a new folder for the demo data (nothing was "
                        f"changed)")
    if out.exists() and not folder_is_empty(out):
        raise UserError(f"{out} already exists and is not empty; choose a new folder for the demo "
                        f"data (nothing was changed)")
    rng = np.random.default_rng(seed)
    # Build everything in a sibling temp folder, then rename: never a half-written dataset.
    check_writable(out, folder=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out.parent)  # temp folders of a killed earlier run
    tmp = temp_sibling(out, folder=True)
    try:
        counts = {}
        for phase, photos, n in (("train", TRAIN_PHOTOS, n_train), ("test", TEST_PHOTOS, n_test)):
            folder = tmp / phase
            folder.mkdir()
            for i, (name, colour) in enumerate(_crops(photos, n, size, rng)):
                gray = colour.convert("L")
                source = gray.convert("RGB") if kind == "colorize" else _edges(gray)
                pair = Image.new("RGB", (2 * size, size))
                pair.paste(source, (0, 0))
                pair.paste(colour, (size, 0))
                pair.save(folder / f"{i:04d}_{name}.png")
            counts[phase] = n
        summary = {"kind": kind, "size": size, "layout": "aligned (A | B)", "direction": "AtoB",
                   "train": counts["train"], "test": counts["test"],
                   "train_photos": sorted(TRAIN_PHOTOS), "test_photos": sorted(TEST_PHOTOS),
                   "source": "scikit-image bundled sample photos (public domain / CC0)",
                   "seed": seed}
        (tmp / "demo.json").write_text(json.dumps(summary, indent=2) + "\n")
        if out.exists():
            for entry in out.iterdir():  # bookkeeping only (checked above)
                entry.unlink()
            out.rmdir()
        try:
            tmp.rename(out)  # atomic; fails if another process published `out` meanwhile
        except OSError as err:
            if out.exists():
                raise UserError(f"{out} was created by another process meanwhile; choose a new "
                                f"folder for the demo data (nothing was changed)") from None
            raise os_error(out, err) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary
