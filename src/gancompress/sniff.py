"""What a file is, told from its first bytes: the one sniffer behind every command that takes a
model or an image, so a file given in the wrong place is named for what it is.

    sniff("x.onnx")            -> Sniffed(kind="onnx", what="an ONNX model")
    sniff(b"\\x89PNG...")       -> Sniffed(kind="image", what="a PNG image", detail="PNG")
    check_checkpoint(path)     -> UserError "x.onnx is an ONNX model, not a PyTorch checkpoint; ..."
    model_kind(path)           -> "onnx" | "openvino" | "torchscript" | "checkpoint" (generate,
                                  profile, the demo), or the one-line UserError for other files

Kinds (`Sniffed.kind`):
    image         any format Pillow recognises by its signature (detail: Pillow's format name)
    checkpoint    a zip archive written by torch.save (it holds data.pkl)
    pickle        a legacy (pre-1.6) torch.save file or another Python pickle (protocol 2-5)
    tar           a tar archive (torch.save's oldest format was one)
    torchscript   a zip archive written by torch.jit.save (compiled code, constants.pkl)
    zip           another zip archive (detail: NumPy .npz, ...); zip-damaged: no zip directory
    onnx          an ONNX ModelProto (protobuf: field 1 ir_version, then a known field)
    openvino      an OpenVINO IR .xml (<net ...>); openvino-bin: the .bin next to one
    safetensors, hdf5, npy, xml, text, empty, folder, missing, unknown

The checks are cheap (the first 512 bytes, and a zip's directory), so readers may sniff every
file. Commands that accept several kinds (generate, profile, the demo) dispatch on `kind`; the
others accept theirs and name anything else in one line (`not_a`).
"""
from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from gancompress.errors import UserError

HEAD = 512  # bytes read: a tar header's "ustar" sits at 257, an IR's <net> within the first lines

# What each kind is called in a message (images, zips and pickles say more, see _what).
WHAT = {
    "checkpoint": "a PyTorch checkpoint",
    "pickle": "a Python pickle",
    "tar": "a tar archive",
    "torchscript": "a TorchScript program (torch.jit.save: compiled code and weights)",
    "zip": "a zip archive",
    "zip-damaged": "a damaged or truncated zip archive (its directory is missing)",
    "onnx": "an ONNX model",
    "openvino": "an OpenVINO IR model (.xml)",
    "openvino-bin": "the weights (.bin) of an OpenVINO IR model",
    "safetensors": "a safetensors file",
    "hdf5": "an HDF5 file (e.g. Keras weights)",
    "npy": "a NumPy array file (.npy)",
    "xml": "an XML file",
    "text": "a text file",
    "empty": "empty (0 bytes)",
    "folder": "a folder",
    "missing": "not found",
    "unknown": "of no format known here",
}
# The kinds torch.load itself may read: a checkpoint reader leaves them to torch (which reports
# truncation and corruption), and names every other kind.
TORCH_LOADABLE = ("checkpoint", "pickle", "tar", "zip-damaged")
EXPORTED = ("onnx", "openvino", "openvino-bin", "torchscript")
IMAGE_FORMATS = "a PNG, JPEG, BMP, TIFF or WebP image"


@dataclass(frozen=True)
class Sniffed:
    kind: str
    what: str
    detail: str = ""

    @property
    def is_image(self) -> bool:
        return self.kind == "image"


def sniff(source: str | Path | bytes) -> Sniffed:
    """What `source` (a path, or the bytes of a file) is; never raises for unreadable content
    (an unreadable path is 'missing' / 'folder', or the OSError of reading it)."""
    data: bytes | None = source if isinstance(source, (bytes, bytearray)) else None
    path = None if data is not None else Path(source)
    if path is not None:
        if path.is_dir():
            return _make("folder")
        if not path.exists():
            return _make("missing")
        with open(path, "rb") as handle:
            head = handle.read(HEAD)
    else:
        head = bytes(data[:HEAD])
    if not head:
        return _make("empty")
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _zip(path if path is not None else io.BytesIO(bytes(data)))
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        legacy = head[2:4] == b"\x8a\x0a"  # torch.save's legacy format opens with a magic long
        return Sniffed("pickle", "a legacy PyTorch checkpoint (pickle)" if legacy
                       else "a Python pickle", "legacy torch" if legacy else "")
    if len(head) >= 262 and head[257:262] == b"ustar":
        return _make("tar")
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return _make("hdf5")
    if head[:6] == b"\x93NUMPY":
        return _make("npy")
    if _looks_safetensors(head):
        return _make("safetensors")
    if _looks_onnx(head):
        return _make("onnx")
    image = _image_format(head)
    if image:
        return Sniffed("image", f"{'an' if image[0] in 'AEIOU' else 'a'} {image} image", image)
    text = _text(head)
    if text is not None:
        stripped = text.lstrip("\ufeff \t\r\n")
        if stripped.startswith("<"):
            if "<net " in stripped or "<net>" in stripped:
                return _make("openvino")
            return _make("xml")
        first = stripped.splitlines()[0][:40] if stripped else ""
        return Sniffed("text", f"a text file (it begins {first!r})" if first else "a text file")
    if path is not None and path.suffix.lower() == ".bin" and path.with_suffix(".xml").is_file():
        return _make("openvino-bin")
    return Sniffed("unknown", f"of no format known here (it begins {head[:8].hex(' ')})")


def _make(kind: str) -> Sniffed:
    return Sniffed(kind, WHAT[kind])


def _zip(source) -> Sniffed:
    try:
        with zipfile.ZipFile(source) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error):
        return _make("zip-damaged")
    base = [n.rsplit("/", 1)[-1] for n in names]
    # TorchScript archives hold compiled code (<name>/code/...) and constants.pkl; torch.save
    # checkpoints only data.pkl and the tensor storages.
    if any("/code/" in n or n.startswith("code/") for n in names) or "constants.pkl" in base:
        return _make("torchscript")
    if "data.pkl" in base:
        return _make("checkpoint")
    if names and all(n.endswith(".npy") for n in names):
        return Sniffed("zip", "a NumPy archive (.npz)", "npz")
    return Sniffed("zip", "a zip archive (not one torch.save wrote: it holds no data.pkl)")


def _varint(data: bytes, pos: int) -> tuple[int, int] | None:
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None


# ModelProto fields (onnx.proto): number -> wire type (0 varint, 2 length-delimited).
_ONNX_FIELDS = {2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}


def _looks_onnx(head: bytes) -> bool:
    """Field 1 (ir_version, a small varint) first, then a ModelProto field: what every ONNX
    writer emits (protobuf serialises fields in number order)."""
    if head[:1] != b"\x08":
        return False
    version = _varint(head, 1)
    if version is None or not 1 <= version[0] <= 100:
        return False
    tag = _varint(head, version[1])
    if tag is None:
        return False
    field, wire = tag[0] >> 3, tag[0] & 7
    return _ONNX_FIELDS.get(field) == wire


def _looks_safetensors(head: bytes) -> bool:
    # 8-byte little-endian header length, then the JSON header
    return len(head) >= 10 and head[8:10] in (b'{"', b"{}") and \
        0 < struct.unpack("<Q", head[:8])[0] < 100_000_000


def _image_format(head: bytes) -> str | None:
    """Pillow's name of the image format whose signature `head` carries, else None. Pillow's
    own signature checks decide; formats it opens without one (TGA, ...) are not claimed."""
    from PIL import Image

    Image.init()
    for name, (_, accept) in Image.OPEN.items():
        try:
            if accept is not None and accept(head[:16]) is True:
                return name
        except Exception:  # noqa: BLE001 - a plugin's check on odd bytes is not our failure
            continue
    return None


def _text(head: bytes) -> str | None:
    """The head as text when it is (UTF-8 without NULs, nearly all printable), else None."""
    if b"\x00" in head:
        return None
    for cut in range(4):  # the head may end inside a multi-byte character
        try:
            text = head[:len(head) - cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    else:
        return None
    printable = sum(ch.isprintable() or ch in "\t\r\n\f" for ch in text)
    return text if printable >= 0.95 * max(1, len(text)) else None


# ----------------------------------------------------------------------------------------------
# One-line refusals


def not_a(path: str | Path, sniffed: Sniffed, expects: str, advice: str = "") -> UserError:
    """'PATH is WHAT, not EXPECTS[; ADVICE]': the one line for a file of the wrong kind."""
    if sniffed.kind == "empty":
        return UserError(f"{path} is empty (0 bytes): it was not written completely; copy or "
                         f"save it again")
    if sniffed.kind in ("folder", "missing"):
        return UserError(f"{path} is {sniffed.what}; give {expects}")
    return UserError(f"{path} is {sniffed.what}, not {expects}" + (f"; {advice}" if advice else ""))


def checkpoint_advice(sniffed: Sniffed) -> str:
    """What to do when a file of kind `sniffed` was given where a checkpoint is read."""
    kind = sniffed.kind
    if kind in EXPORTED:
        return ("this needs the PyTorch checkpoint (.pth) it was exported from "
                "(`gancompress generate` and `gancompress profile` run exported files directly)")
    if kind == "image":
        return "give the generator checkpoint (.pth) as MODEL, and images with --input"
    if kind == "safetensors":
        return ("read it with safetensors.torch.load_file and save the state dict with "
                "torch.save (a generator: gancompress.save_generator(model, 'generator.pth'))")
    if kind == "unknown":
        return "give a file written by torch.save (is it complete?)"
    return "give a generator checkpoint (.pth, written by torch.save)"


def check_checkpoint(path: str | Path) -> Sniffed:
    """The sniffed kind of a file read as a PyTorch checkpoint; one UserError if it is another
    kind of file (torch.load reports damage within its own formats)."""
    sniffed = sniff(path)
    if sniffed.kind not in TORCH_LOADABLE:
        raise not_a(path, sniffed, "a PyTorch checkpoint", checkpoint_advice(sniffed))
    return sniffed


def check_exported(path: str | Path, kind: str) -> Sniffed:
    """UserError if `path`, opened as an exported model of `kind` (onnx, openvino,
    torchscript), is recognisably another kind of file (content of no known kind is left to the
    runtime, which reports damage in its own words)."""
    sniffed = sniff(path)
    if sniffed.kind == "openvino-bin" and kind == "openvino":
        raise UserError(f"{path} is {sniffed.what}; give the .xml file next to it "
                        f"({Path(path).with_suffix('.xml').name})")
    lenient = ("unknown",) + (("xml",) if kind == "openvino" else ())
    if sniffed.kind != kind and sniffed.kind not in lenient:
        label = {"onnx": "ONNX", "openvino": "OpenVINO", "torchscript": "TorchScript"}[kind]
        advice = ("; export one with `gancompress export MODEL --out FILE`"
                  if sniffed.kind in TORCH_LOADABLE else "")
        raise UserError(f"cannot load {label} file {path}: it is {sniffed.what}, not "
                        f"{WHAT[kind]}{advice}")
    return sniffed


MODEL_FILES = "a generator file (a PyTorch checkpoint, ONNX, OpenVINO .xml or TorchScript)"


def model_kind(path: str | Path) -> str:
    """How a generator file given to generate / profile / the demo is run: 'onnx', 'openvino',
    'torchscript' or 'checkpoint' (torch.load); one UserError naming any other kind of file."""
    path = Path(path)
    sniffed = sniff(path)
    suffix = path.suffix.lower()
    kind = sniffed.kind
    if kind == "unknown" and suffix == ".onnx":
        kind = "onnx"  # the runtime reports what is wrong with it
    if kind == "xml" and suffix == ".xml":
        kind = "openvino"
    if kind in ("onnx", "torchscript"):
        return kind
    if kind == "openvino":
        if not path.with_suffix(".bin").is_file():
            raise UserError(f"{path} is an OpenVINO IR without its weights: "
                            f"{path.with_suffix('.bin').name} is missing next to it")
        return kind
    if kind == "openvino-bin":
        raise UserError(f"{path} is {sniffed.what}; give the .xml file next to it "
                        f"({path.with_suffix('.xml').name})")
    if kind in TORCH_LOADABLE:
        return "checkpoint"
    raise not_a(path, sniffed, MODEL_FILES, checkpoint_advice(sniffed) if kind == "image"
                else "")


# ----------------------------------------------------------------------------------------------
# Declared image size (before any decoder runs)


def declared_size(handle) -> tuple[int, int] | None:
    """(width, height) an image's header declares, read from the open binary file `handle`
    (PNG, GIF, BMP, WebP, JPEG), else None: the pixel limit is checked from these numbers before
    Pillow sees the file, whatever Pillow's own bomb limit. Leaves the position undefined."""
    handle.seek(0)
    head = handle.read(32)
    try:
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            return struct.unpack(">II", head[16:24])
        if head[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", head[6:10])
        if head[:2] == b"BM" and len(head) >= 26:
            if struct.unpack("<I", head[14:18])[0] == 12:  # OS/2 core header: 16-bit sides
                return struct.unpack("<HH", head[18:22])
            w, h = struct.unpack("<ii", head[18:26])
            return abs(w), abs(h)
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return _webp_size(head + handle.read(8))
        if head[:3] == b"\xff\xd8\xff":
            return _jpeg_size(handle)
    except struct.error:
        return None
    return None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8X":  # 24-bit sides minus one
        return (int.from_bytes(head[24:27], "little") + 1,
                int.from_bytes(head[27:30], "little") + 1)
    if chunk == b"VP8L" and head[20:21] == b"\x2f":
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(head) >= 30:
        w, h = struct.unpack("<HH", head[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


# JPEG start-of-frame markers (baseline, progressive, lossless, ...; not DHT/JPG/DAC)
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(handle) -> tuple[int, int] | None:
    """Walk the JPEG segments (APPn, EXIF, ICC ...) to the first start-of-frame."""
    handle.seek(2)
    for _ in range(256):
        marker = handle.read(2)
        while marker[:1] == b"\xff" and marker[1:2] == b"\xff":  # fill bytes
            marker = marker[1:] + handle.read(1)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        code = marker[1]
        if code in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            continue
        length = handle.read(2)
        if len(length) < 2:
            return None
        size = struct.unpack(">H", length)[0]
        if code in _SOF:
            frame = handle.read(5)
            if len(frame) < 5:
                return None
            height, width = struct.unpack(">HH", frame[1:5])
            return width, height
        if code in (0xD9, 0xDA) or size < 2:  # end of image / start of scan before a frame
            return None
        handle.seek(size - 2, 1)
    return None
