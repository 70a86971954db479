"""Dataset folder layouts of the pix2pix / CycleGAN world, and file-list selection.

    aligned     ROOT/train/*.jpg, ROOT/test/*.jpg, ROOT/val/*.jpg   each file = A | B side by side
    unaligned   ROOT/trainA, ROOT/trainB, ROOT/testA, ROOT/testB   (valA / valB for phase "val")
    single      a folder of images (ROOT itself, or ROOT/<phase>, or ROOT/<phase>A)
"auto" picks unaligned if ROOT/<phase>A exists, aligned if ROOT/<phase> exists, single if ROOT
holds images. An aligned folder given directly (images in ROOT, no phase folders) is used for
every phase.

A file list is a text file with one entry per line (blank lines and '#' comments ignored); an
entry is a file name or a path relative to ROOT (e.g. `train/12.jpg`, `trainA/n0213.jpg`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gancompress.errors import UserError
from gancompress.imaging import IMG_EXTENSIONS, list_images

MODES = ("auto", "aligned", "unaligned", "single")
PHASES = ("train", "test", "val")


@dataclass
class Layout:
    """A resolved layout: mode and the image files of each side ("AB", or "A" and "B")."""
    mode: str
    root: Path
    files: dict[str, list[Path]]


def _images(folder: Path) -> list[Path]:
    files = list_images(folder)
    if not files:
        raise UserError(f"no images in {folder} (expected files ending in "
                        f"{', '.join(IMG_EXTENSIONS)})")
    return files


def _has_images(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix.lower() in IMG_EXTENSIONS for p in folder.iterdir())


def _phase_dir(root: Path, phase: str, suffix: str = "") -> Path | None:
    """ROOT/<phase><suffix>; for "val" any folder named val*<suffix> (validation, val_small...)."""
    exact = root / f"{phase}{suffix}"
    if exact.is_dir():
        return exact
    if phase == "val":
        matches = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("val")
                         and p.name.endswith(suffix) and (suffix or not p.name[-1] in "AB"))
        if matches:
            return matches[0]
    return None


def _found(root: Path) -> str:
    subdirs = sorted(p.name for p in root.iterdir() if p.is_dir())
    n_images = sum(1 for p in root.iterdir() if p.suffix.lower() in IMG_EXTENSIONS)
    return f"found folders {subdirs or 'none'} and {n_images} images directly in it"


def resolve_layout(root: str | Path, mode: str = "auto", phase: str = "train") -> Layout:
    """Find the image files of `phase` under `root` in the given (or detected) layout."""
    root = Path(root)
    if mode not in MODES:
        raise UserError(f"unknown dataset mode {mode!r}; use one of {', '.join(MODES)}")
    if phase not in PHASES:
        raise UserError(f"unknown phase {phase!r}; use one of {', '.join(PHASES)}")
    if not root.exists():
        raise UserError(f"dataset folder {root} does not exist")
    if not root.is_dir():
        raise UserError(f"dataset path {root} is not a folder")

    unaligned_a, unaligned_b = _phase_dir(root, phase, "A"), _phase_dir(root, phase, "B")
    paired = _phase_dir(root, phase)
    if mode == "auto":
        if unaligned_a or unaligned_b:
            mode = "unaligned"
        elif paired:
            mode = "aligned"
        elif _has_images(root):
            mode = "single"
        else:
            raise UserError(
                f"cannot tell the layout of {root} for phase {phase!r}: expected {phase}/ (aligned "
                f"A|B images), {phase}A/ and {phase}B/ (unaligned) or images directly in it "
                f"(single); {_found(root)}")

    if mode == "aligned":
        if paired:
            return Layout("aligned", root, {"AB": _images(paired)})
        if unaligned_a or unaligned_b or _phase_dir(root, "train", "A"):
            raise UserError(f"{root} has the unaligned layout ({phase}A/, {phase}B/) but aligned "
                            f"data was requested; give a folder with {phase}/ holding A|B "
                            f"side-by-side images, or, for unpaired data, data.mode=unaligned "
                            f"with a task that learns from unpaired images (train.task=cyclegan"
                            f"; pix2pix needs pairs)")
        if _has_images(root) and not any(_phase_dir(root, p) for p in PHASES):
            return Layout("aligned", root, {"AB": _images(root)})
        raise UserError(f"no {phase}/ folder in {root} (aligned layout: {root}/{phase}/ with each "
                        f"image = A | B side by side); {_found(root)}")

    if mode == "unaligned":
        if unaligned_a and unaligned_b:
            return Layout("unaligned", root, {"A": _images(unaligned_a), "B": _images(unaligned_b)})
        if unaligned_a or unaligned_b:
            missing = f"{phase}B" if unaligned_a else f"{phase}A"
            raise UserError(f"{root} has {(unaligned_a or unaligned_b).name}/ but no {missing}/; "
                            f"unaligned data needs both {phase}A/ and {phase}B/")
        if paired:
            raise UserError(f"{root} has the aligned layout ({phase}/ with A|B images) but "
                            f"unaligned data was requested; set data.mode=aligned (or auto)")
        raise UserError(f"no {phase}A/ and {phase}B/ folders in {root} (unaligned layout); "
                        f"{_found(root)}")

    # single
    for folder in (root, paired, unaligned_a):
        if folder is not None and _has_images(folder):
            return Layout("single", root, {"A": _images(folder)})
    raise UserError(f"no images in {root} (nor in {root}/{phase}/ or {root}/{phase}A/); "
                    f"{_found(root)}")


def read_file_list(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"file list {path} not found")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read file list {path}: {err}") from None
    entries = [line.strip() for line in lines]
    return [e for e in entries if e and not e.startswith("#")]


def select(layout: Layout, file_list: str | Path | list[str] | None = None,
           exclude_list: str | Path | list[str] | None = None) -> Layout:
    """Keep only files named in `file_list` and drop those in `exclude_list` (every side)."""
    if file_list is None and exclude_list is None:
        return layout

    def entries(spec):
        return read_file_list(spec) if isinstance(spec, (str, Path)) else list(spec)

    def names(path: Path) -> set[str]:
        return {path.name, path.relative_to(layout.root).as_posix()}

    every = {n for files in layout.files.values() for p in files for n in names(p)}
    files = dict(layout.files)
    for spec, keep in ((file_list, True), (exclude_list, False)):
        if spec is None:
            continue
        wanted = set(entries(spec))
        unknown = sorted(wanted - every)
        if unknown and keep:
            shown = ", ".join(unknown[:3])
            where = f"file list {spec}" if isinstance(spec, (str, Path)) else "the file list"
            raise UserError(f"{where}: {len(unknown)} entries match no image under "
                            f"{layout.root}, e.g. {shown}; entries are file names or paths "
                            f"relative to the dataset folder")
        files = {side: [p for p in paths if bool(names(p) & wanted) == keep]
                 for side, paths in files.items()}
    for side, paths in files.items():
        if not paths:
            named = [str(s) for s in (file_list, exclude_list) if isinstance(s, (str, Path))]
            lists = f" ({', '.join(named)})" if named else ""
            raise UserError(f"no {side} images left in {layout.root} after applying the file "
                            f"list(s){lists}: the list keeps none of its "
                            f"{len(layout.files[side])} images; check the entries (file names "
                            f"or paths relative to the dataset folder)")
    return Layout(layout.mode, layout.root, files)
