"""Built-in demo data: small datasets made from real photos bundled with scikit-image.

`write_demo_data(out)` writes the aligned layout (out/train/*.png, out/test/*.png, each file
A | B side by side) from random crops of the colour photographs that ship inside the
scikit-image wheel (read straight from the package folder, never through its downloader):
    kind="colorize"  A = grayscale crop, B = the colour crop   (grayscale -> colour)
    kind="edges"     A = Canny edges (black on white), B = the colour crop (edges -> photo)
`write_label_demo_data(out)` writes a label map -> photo dataset for GauGAN in the plain folder
layout data/segmaps.py reads (out/{train,test}/{labels,instances,images}/NAME.png): each 2:1
crop is cut into SLIC superpixels, every superpixel gets the class of the nearest of
DEMO_CLASSES' prototype colours (CIELAB distance of its mean colour), and every connected
region of one class is an instance (id = 1000 * class + k, as Cityscapes numbers instances).
Train and test crops come from disjoint photos, so no test crop shows a training photo.
All photos are public domain / CC0 or free to use (see scikit-image's data documentation).
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable
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

# The label demo's classes: name -> prototype colour (RGB). A superpixel takes the class whose
# prototype is nearest to its mean colour in CIELAB, so one id means one colour family in every
# photo (what lets a generator learn labels -> colours). The label PNGs carry these colours as
# their palette, so they look like the photo's colour families while holding class ids.
DEMO_CLASSES: dict[str, tuple[int, int, int]] = {
    "black": (15, 15, 20), "dark gray": (70, 70, 75), "gray": (128, 128, 128),
    "light gray": (190, 190, 195), "white": (245, 245, 245), "brown": (100, 65, 40),
    "beige": (215, 180, 140), "red": (190, 40, 40), "orange": (230, 140, 50),
    "yellow": (230, 210, 70), "green": (70, 140, 60), "blue": (50, 80, 170),
}
LABEL_NC = len(DEMO_CLASSES)
INSTANCE_STRIDE = 1000  # instance id = class * 1000 + region index (Cityscapes' convention)


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
    from gancompress.imaging import open_image

    return open_image(path, 3)


def _edges(gray: Image.Image) -> Image.Image:
    from skimage.feature import canny
    edges = canny(np.asarray(gray, dtype=np.float32) / 255.0, sigma=1.0)
    return Image.fromarray(np.where(edges, 0, 255).astype(np.uint8)).convert("RGB")


def _crops(photos: dict[str, str], n: int, size: int, rng: np.random.Generator, aspect: int = 1
           ) -> list[tuple[str, Image.Image]]:
    """n random crops `aspect`:1 (height 1/4..1/2 of the photo's short side, at most its width
    / aspect) resized to size x aspect*size (H x W)."""
    images = {name: bundled_photo(f) for name, f in photos.items()}
    names = sorted(images)
    out: list[tuple[str, Image.Image]] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        name = names[len(out) % len(names)] if attempts < 50 * n else names[0]
        img = images[name]
        w, h = img.size
        short = min(w // aspect, h)
        side = int(rng.integers(max(size, short // 4), max(size, short // 2) + 1))
        x, y = int(rng.integers(0, w - aspect * side + 1)), int(rng.integers(0, h - side + 1))
        crop = img.crop((x, y, x + aspect * side, y + side)).resize((aspect * size, size),
                                                                    Image.LANCZOS)
        # Skip near-uniform crops (dark sky, retina background): nothing to learn from them.
        if np.asarray(crop.convert("L"), dtype=np.float32).std() < 12 and attempts < 50 * n:
            continue
        out.append((name, crop))
    return out


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; choose a new folder for the demo data (nothing was "
                        f"changed)")
    if out.exists() and not folder_is_empty(out):
        raise UserError(f"{out} already exists and is not empty; choose a new folder for the demo "
                        f"data (nothing was changed)")


def _publish(out: Path, build: Callable[[Path], dict]) -> dict:
    """Run build(tmp) in a sibling temp folder, then rename it to `out`: never a half-written
    dataset. build writes the files and returns the summary (also written as demo.json)."""
    _check_out(out)
    check_writable(out, folder=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out.parent)  # temp folders of a killed earlier run
    tmp = temp_sibling(out, folder=True)
    try:
        summary = build(tmp)
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


def _check_counts(n_train: int, n_test: int) -> None:
    if n_train < 1 or n_test < 1:
        raise UserError("the demo dataset needs at least one train and one test pair")


def write_demo_data(out: str | Path, kind: str = "colorize", size: int = 64, n_train: int = 400,
                    n_test: int = 40, seed: int = 0) -> dict:
    """Write the demo dataset to `out` (must not exist or be empty); returns a summary dict."""
    if kind not in KINDS:
        raise UserError(f"unknown demo data kind {kind!r}; use one of {', '.join(KINDS)}")
    if size < 16 or size % 4:
        raise UserError(f"demo image size must be a multiple of 4 and at least 16, got {size}")
    _check_counts(n_train, n_test)
    rng = np.random.default_rng(seed)

    def build(tmp: Path) -> dict:
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
        return {"kind": kind, "size": size, "layout": "aligned (A | B)", "direction": "AtoB",
                "train": counts["train"], "test": counts["test"],
                "train_photos": sorted(TRAIN_PHOTOS), "test_photos": sorted(TEST_PHOTOS),
                "source": "scikit-image bundled sample photos (public domain / CC0)",
                "seed": seed}

    return _publish(Path(out), build)


def _lab(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab
    return rgb2lab(np.asarray(rgb, dtype=np.float64).reshape(-1, 1, 3) / 255.0).reshape(-1, 3)


_PROTOTYPES_LAB: np.ndarray | None = None


def label_photo(photo: Image.Image, n_segments: int = 24, compactness: float = 10.0
                ) -> tuple[np.ndarray, np.ndarray]:
    """(label ids (H, W) uint8 in 0..LABEL_NC-1, instance ids (H, W) uint16) of an RGB photo:
    SLIC superpixels, each given the class of the prototype colour nearest to its mean colour
    (CIELAB), and each 4-connected region of one class an instance 1000 * class + k."""
    from skimage.measure import label as connected
    from skimage.segmentation import slic

    global _PROTOTYPES_LAB
    if _PROTOTYPES_LAB is None:
        _PROTOTYPES_LAB = _lab(np.array(list(DEMO_CLASSES.values())))
    rgb = np.asarray(photo.convert("RGB"))
    segments = slic(rgb, n_segments=n_segments, compactness=compactness, start_label=0)
    lab = _lab(rgb)
    flat = segments.reshape(-1)
    count = np.bincount(flat).astype(np.float64)
    means = np.stack([np.bincount(flat, lab[:, c]) for c in range(3)], 1) / np.maximum(count, 1)[:, None]
    nearest = ((means[:, None, :] - _PROTOTYPES_LAB[None]) ** 2).sum(-1).argmin(1)
    labels = nearest[segments].astype(np.uint8)
    regions = connected(labels.astype(np.int64) + 1, connectivity=1, background=0)
    instances = np.zeros(labels.shape, dtype=np.uint16)
    for cls in np.unique(labels):
        mask = labels == cls
        ids = np.unique(regions[mask])  # regions of this class, numbered 0, 1, ... in order
        index = np.searchsorted(ids, regions[mask])
        instances[mask] = (INSTANCE_STRIDE * int(cls) + np.minimum(index, INSTANCE_STRIDE - 1)
                           ).astype(np.uint16)
    return labels, instances


def label_palette_image(labels: np.ndarray) -> Image.Image:
    """Class ids as a palette PNG: readers get the ids, viewers see the classes' colours."""
    img = Image.fromarray(labels.astype(np.uint8), mode="P")
    palette = [v for colour in DEMO_CLASSES.values() for v in colour]
    img.putpalette(palette + [0] * (768 - len(palette)))
    return img


def write_label_demo_data(out: str | Path, height: int = 32, n_train: int = 300,
                          n_test: int = 30, seed: int = 0) -> dict:
    """Write the label map -> photo demo dataset (height x 2*height images) to `out` (must not
    exist or be empty); returns a summary dict (also in out/demo.json)."""
    if height < 16 or height % 4:
        raise UserError(f"demo image height must be a multiple of 4 and at least 16, got {height}")
    _check_counts(n_train, n_test)
    rng = np.random.default_rng(seed)
    width = 2 * height
    # about one superpixel per 8x8 pixels: regions of a few dozen pixels at the demo's 32x64
    n_segments = max(8, height * width // 64)

    def build(tmp: Path) -> dict:
        counts, classes_seen = {}, np.zeros(LABEL_NC, dtype=np.int64)
        for phase, photos, n in (("train", TRAIN_PHOTOS, n_train), ("test", TEST_PHOTOS, n_test)):
            folders = {k: tmp / phase / k for k in ("labels", "instances", "images")}
            for folder in folders.values():
                folder.mkdir(parents=True)
            for i, (name, photo) in enumerate(_crops(photos, n, height, rng, aspect=2)):
                labels, instances = label_photo(photo, n_segments)
                if phase == "train":
                    classes_seen += np.bincount(labels.reshape(-1), minlength=LABEL_NC)
                stem = f"{i:04d}_{name}"
                label_palette_image(labels).save(folders["labels"] / f"{stem}.png")
                Image.fromarray(instances).save(folders["instances"] / f"{stem}.png")
                photo.save(folders["images"] / f"{stem}.png")
            counts[phase] = n
        return {"kind": "labels", "size": [height, width], "layout": "folders (labels/ + "
                "instances/ + images/)", "label_nc": LABEL_NC, "classes": list(DEMO_CLASSES),
                "train_pixels_per_class": classes_seen.tolist(),
                "train": counts["train"], "test": counts["test"],
                "train_photos": sorted(TRAIN_PHOTOS), "test_photos": sorted(TEST_PHOTOS),
                "source": "scikit-image bundled sample photos (public domain / CC0); labels "
                          "from SLIC superpixels and nearest prototype colours",
                "seed": seed}

    return _publish(Path(out), build)
