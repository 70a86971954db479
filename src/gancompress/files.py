"""Files: atomic writes (a crash never leaves a half-written file), SHA-256 fingerprints.

One function per job, used everywhere: `atomic_path` / `atomic_write_text` for every output,
`sha256_file` for every recorded hash (weights, supernets, statistics), `cache_root()` for every
cache (published weights are looked up there last; latency models are cached under latency/).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it onto `path`, else delete it.

    A crash mid-write therefore never leaves a half-written file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the final file normal permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


# SHA-256 of large files is cached per (path, size, mtime) so that repeated scoring (a search
# evaluates hundreds of candidates) hashes each 100 MB file once.
_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASH_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _HASH_CACHE[key] = digest.hexdigest()
    return _HASH_CACHE[key]


def file_fingerprint(path: str | Path) -> str:
    """Short SHA-256 (first 16 hex digits): which supernet a search folder belongs to."""
    return sha256_file(path)[:16]


def cache_root() -> Path:
    """The one cache folder: $GANCOMPRESS_CACHE, else $XDG_CACHE_HOME/gancompress, else
    ~/.cache/gancompress."""
    if os.environ.get("GANCOMPRESS_CACHE"):
        return Path(os.environ["GANCOMPRESS_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base) / "gancompress"
