"""Finding, validating and fingerprinting the pretrained weight files that metrics need.

Evaluation networks (the FID Inception-v3, the DRN-D-105 Cityscapes segmenter, later ones) are
never downloaded at run time: the user places the published file, under its published name, in a
weights folder. Lookup order for a file `name` (first hit wins):

    1. an explicit file (`--inception-weights FILE`, `--drn-weights FILE`)
    2. `--weights-dir DIR`                      -> DIR/name
    3. the GANCOMPRESS_WEIGHTS_DIR variable     -> $GANCOMPRESS_WEIGHTS_DIR/name
    4. the cache folder                         -> $XDG_CACHE_HOME/gancompress/name
                                                   (default ~/.cache/gancompress/name)

A missing file ends in a UserError that names the public URL of the published file and every
folder that was searched. A file is accepted only by a strict load of its exact layout (every
tensor name and shape) and, where the published file's SHA-256 is known, by its hash: a file
with the right layout but other weights (a retrained or random stand-in) is refused unless
explicitly allowed (`--allow-unverified-weights`, or GANCOMPRESS_ALLOW_UNVERIFIED_WEIGHTS=1),
and then every result made with it is marked "verified": false. Its SHA-256 travels with every
number computed from it, so a result can always be traced to the weights that made it.

Known hashes: the FID Inception file follows torch.hub's naming convention, where the 8 hex
digits before `.pth` are the start of the file's SHA-256 (`6726825d`), so that prefix is checked.
No published hash is known to us for the DRN-D-105 file: it is accepted on layout and marked
"verified": null (unknown).

Below every checkpoint reader sit the two loaders here: `safe_load` (torch.load restricted to
tensors and plain containers) and `load_state_strict` (the one strict state-dict load: names and
shapes checked first, one UserError naming the tensors), used for published weight files,
our generator checkpoints and the families' published formats alike.
"""
from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gancompress.errors import UserError
from gancompress.files import cache_root, os_error, sha256_file
from gancompress.sniff import check_checkpoint

ENV_VAR = "GANCOMPRESS_WEIGHTS_DIR"
ALLOW_ENV = "GANCOMPRESS_ALLOW_UNVERIFIED_WEIGHTS"


@dataclass(frozen=True)
class PublishedWeights:
    """A weight file known by its published name: where it comes from and what it is for."""

    name: str
    url: str
    purpose: str
    option: str  # the command-line option that names the file explicitly
    sha256: str = ""  # the published file's SHA-256, or its known prefix ("" = unknown)


# Public addresses of the published files (docs/reference.md sec. 5).
INCEPTION_FID = PublishedWeights(
    name="pt_inception-2015-12-05-6726825d.pth",
    url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
        "pt_inception-2015-12-05-6726825d.pth",
    purpose="FID/KID Inception-v3 (TensorFlow FID weights ported by pytorch-fid)",
    option="--inception-weights",
    sha256="6726825d")  # torch.hub convention: the name carries the SHA-256 prefix
DRN_D_105_CITYSCAPES = PublishedWeights(
    name="drn-d-105_ms_cityscapes.pth",
    url="http://go.yf.io/drn-cityscapes-models (the DRN author's page of Cityscapes models)",
    purpose="Cityscapes mIoU segmenter DRN-D-105 (Yu et al., Dilated Residual Networks)",
    option="--drn-weights")

VGG19_IMAGENET = PublishedWeights(
    name="vgg19-dcbb9e9d.pth", url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    purpose="GauGAN VGG19 perceptual loss (torchvision's ImageNet VGG19 weights)",
    option="loss.vgg_weights=")

PUBLISHED: dict[str, PublishedWeights] = {w.name: w for w in (INCEPTION_FID, DRN_D_105_CITYSCAPES,
                                                              VGG19_IMAGENET)}


def cache_dir() -> Path:
    """The last folder searched: the cache root (files.cache_root)."""
    return cache_root()


def search_dirs(weights_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """(origin, folder) pairs in lookup order (after an explicit file)."""
    dirs: list[tuple[str, Path]] = []
    if weights_dir:
        dirs.append(("--weights-dir", Path(weights_dir).expanduser()))
    if os.environ.get(ENV_VAR):
        dirs.append((ENV_VAR, Path(os.environ[ENV_VAR]).expanduser()))
    dirs.append(("cache", cache_dir()))
    return dirs


def find_weights(name: str, explicit: str | Path | None = None,
                 weights_dir: str | Path | None = None) -> Path:
    """The path of weight file `name`: explicit > weights_dir > $GANCOMPRESS_WEIGHTS_DIR > cache.

    An explicit file that does not exist is an error (never silently replaced by another one).
    """
    known = PUBLISHED.get(name)
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.is_file():
            return path
        what = "a folder, not a file" if path.is_dir() else "not found"
        raise UserError(f"weights file {path} is {what}. " + _where_to_get(name, known, weights_dir))
    for _, folder in search_dirs(weights_dir):
        path = folder / name
        if path.is_file():
            return path
    raise UserError(f"weights file {name} not found. " + _where_to_get(name, known, weights_dir))


def _where_to_get(name: str, known: PublishedWeights | None, weights_dir) -> str:
    searched = ", ".join(f"{folder / name} ({origin})" for origin, folder in search_dirs(weights_dir))
    get = (f"It is the published {known.purpose}; download it from {known.url} "
           if known else f"Obtain {name} ")
    option = known.option if known else "the explicit weights option"
    return (f"{get}and put it in a weights folder: pass --weights-dir DIR, or set {ENV_VAR}=DIR, "
            f"or place it in {cache_dir()}; or name the file itself with {option} FILE. "
            f"Searched: {searched}.")


@dataclass(frozen=True)
class WeightsRecord:
    """Which file made a number: its published name, where it was found, and its SHA-256."""

    name: str
    path: str
    sha256: str
    verified: bool | None = None  # True: matches the published hash; None: no hash known

    def as_dict(self) -> dict[str, str | bool | None]:
        return {"name": self.name, "path": self.path, "sha256": self.sha256,
                "verified": self.verified}


def weights_tag(record: WeightsRecord) -> str:
    """'sha256 0123abcd4567' plus UNVERIFIED when the file is not the published one."""
    tag = f"sha256 {record.sha256[:12]}"
    if record.verified is False:
        tag += ", UNVERIFIED: not the published file"
    return tag


def allow_unverified() -> bool:
    return os.environ.get(ALLOW_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def verify_hash(spec: PublishedWeights, path: Path, digest: str) -> bool | None:
    """True if `digest` matches the published file's (known) hash, None if no hash is known;
    a mismatch is a UserError unless unverified files are allowed (then False and a warning)."""
    if not spec.sha256:
        return None
    if digest.startswith(spec.sha256.lower()):
        return True
    message = (f"weights file {path} has the layout of {spec.name} but not its published "
               f"contents (SHA-256 {digest[:16]}..., the published file's starts with "
               f"{spec.sha256[:16]}): results would not be comparable to published numbers")
    if not allow_unverified():
        raise UserError(f"{message}. Use the published file ({spec.url}), or pass "
                        f"--allow-unverified-weights (or set {ALLOW_ENV}=1) to use it anyway, "
                        f"with results marked unverified")
    warnings.warn(f"{message}; used anyway ({ALLOW_ENV}), results are marked unverified",
                  stacklevel=2)
    return False


def read_state_dict(path: str | Path, strip_prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Load a weights file as a flat name -> tensor dict, without unpickling code.

    Unwraps {'state_dict': ...} and drops a DataParallel `module.` prefix.
    """
    obj = safe_load(path)
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj or not all(
            isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path} is not a weights file (expected a state dict of named tensors, "
                        f"found {type(obj).__name__})")
    if strip_prefix and all(k.startswith(strip_prefix) for k in obj):
        obj = {k[len(strip_prefix):]: v for k, v in obj.items()}
    return dict(obj)


def safe_load(path: str | Path) -> Any:
    """torch.load restricted to tensors and plain containers; user errors become UserError."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder; give the checkpoint file inside it (e.g. "
                        f"{path / 'generator.pth'})")
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        if path.stat().st_size == 0:
            raise UserError(f"checkpoint {path} is empty (0 bytes): it was not written completely; "
                            f"copy or save it again")
        # An ONNX model, an image, a TorchScript program... is named for what it is, not left
        # to torch.load (whose refusal would call it pickled objects that could run code).
        check_checkpoint(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except UserError:
        raise
    except pickle.UnpicklingError as err:
        if not _forbidden_object(err):  # a damaged pickle, not one that embeds objects
            raise UserError(f"cannot read checkpoint {path}: {_first_line(err, 'damaged')} (is "
                            f"the file complete and a PyTorch checkpoint?)") from None
        raise UserError(
            f"refused to load {path}: it contains pickled Python objects beyond tensors and plain "
            f"containers ({_first_line(err, 'unsupported object')}), which could run code when "
            f"loaded. If you trust the file, re-save it in the gancompress format with "
            f"gancompress.save_generator(model, 'generator.pth') (a generator), or save only "
            f"its state_dict() (published layouts)") from None
    except PermissionError as err:
        raise os_error(path, err, doing="read") from None
    except Exception as err:  # noqa: BLE001 - torch.load on damaged bytes raises many kinds
        raise UserError(f"cannot read checkpoint {path}: {_first_line(err, type(err).__name__)} "
                        f"(is the file complete and a PyTorch checkpoint?)") from None


def _forbidden_object(err: BaseException) -> bool:
    """torch's weights-only unpickler refused a global or a reduce (an embedded object), as
    opposed to stumbling on damaged bytes."""
    text = str(err)
    return any(word in text for word in ("Unsupported global", "GLOBAL", "not an allowed global",
                                         "Unsupported class", "REDUCE", "BUILD"))


def _first_line(err: BaseException, fallback: str) -> str:
    """First informative line of an exception message (some have none), without torch's
    advice to retry with weights_only=False, which would run the file's code."""
    lines = [line for line in str(err).strip().splitlines() if line.strip()
             and "weights_only" not in line and "Re-running" not in line]
    # torch's weights-only refusal opens with advice; the line naming the object says more
    named = [line.split("error: ", 1)[-1] for line in lines if "Unsupported" in line
             or "GLOBAL" in line]
    return ((named or lines)[0] if lines else fallback)[:300]


def layout_problems(state: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]]
                    ) -> list[str]:
    """What differs between `state` and the `expected` tensor names and shapes ([] if nothing)."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} has shape {tuple(state[k].shape)}, expected {tuple(expected[k])}"
             for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k])]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing tensors (e.g. {missing[:3]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[:3]})")
    if wrong:
        parts.append(f"{len(wrong)} tensors of the wrong shape (e.g. {wrong[:2]})")
    return parts


def check_layout(state: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]],
                 what: str, advice: str = "Use the published file unchanged.") -> None:
    """UserError unless `state` has exactly the tensor names and shapes of `expected`."""
    parts = layout_problems(state, expected)
    if parts:
        raise UserError(f"{what} does not have the expected layout: {'; '.join(parts)}."
                        + (f" {advice}" if advice else ""))


def load_state_strict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str,
                      advice: str = "Use the published file unchanged.", assign: bool = False
                      ) -> None:
    """The one strict state-dict load: `state` must have exactly `model`'s tensor names and
    shapes (else one UserError naming them, see `check_layout`), then load_state_dict(strict).
    assign=True adopts the tensors (a model built on the meta device)."""
    check_layout(state, {k: tuple(v.shape) for k, v in model.state_dict().items()}, what,
                 advice)
    model.load_state_dict(state, strict=True, assign=assign)


def load_published(model: torch.nn.Module, spec: PublishedWeights, explicit: str | Path | None = None,
                   weights_dir: str | Path | None = None) -> WeightsRecord:
    """Find `spec`'s file, check its exact layout against `model`, load it strictly.

    `model` may live on the meta device (build it under `with torch.device("meta"):`).
    Returns the record (name, path, SHA-256) that every result computed with `model` carries.
    """
    path = find_weights(spec.name, explicit=explicit, weights_dir=weights_dir)
    state = read_state_dict(path)
    # assign=True adopts the loaded tensors, so `model` may be built on the meta device (no
    # random initialisation of 24-54M parameters that are overwritten anyway).
    load_state_strict(model, state, f"weights file {path} (used as {spec.name}, the "
                                    f"{spec.purpose})", assign=True)
    digest = sha256_file(path)
    verified = verify_hash(spec, path, digest)
    return WeightsRecord(name=spec.name, path=str(path), sha256=digest, verified=verified)
