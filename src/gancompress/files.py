"""Files: output ownership (locks, no-clobber publish), atomic writes, OS errors, SHA-256.

One rule for every output, used everywhere:
  * `output_lock(folder)` holds an exclusive lock (fcntl.flock on FOLDER/.lock, removed again at
    the end) for as long as a command writes into a run/output folder; a second process gets a
    one-line refusal at once, so two runs can never mix or overwrite each other's files.
  * `atomic_path(path, overwrite=...)` writes to a temporary sibling, fsyncs it and publishes it
    under the final name: by rename when replacing is allowed, else by `os.link`, which fails if
    the name exists (no check-then-write gap). A crash never leaves a half-written file, and
    temp files left by a killed process (their names carry its pid) are removed by the next
    writer (`clean_stale_temps`).
  * `os_error(path, err, doing)` turns an OSError (read-only folder, full disk, permission) into
    the one-line UserError that names the path and what to do; `check_writable` runs the same
    check before expensive work.
`sha256_file` gives every recorded hash (weights, supernets, statistics), `cache_root()` every
cache (published weights are looked up there last; latency models are cached under latency/).
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gancompress.errors import UserError

LOCK_NAME = ".lock"
# .NAME.<pid>.<random>.tmp (files) and .NAME.<pid>.<random>.tmpdir (folders)
_TEMP = re.compile(r"^\..+\.(\d+)\.[A-Za-z0-9_]+\.tmp(dir)?$")


# ----------------------------------------------------------------------------------------------
# OS errors -> one line


def os_error(path: str | Path, err: BaseException, doing: str = "write") -> UserError:
    """The one-line UserError for an OSError on `path` (what happened and what to do)."""
    code = getattr(err, "errno", None)
    reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
    if code == errno.ENOSPC or code == errno.EDQUOT:
        advice = "free some space or choose another output location"
    elif code in (errno.EROFS, errno.EACCES, errno.EPERM):
        advice = ("choose a folder you can write to" if doing == "write"
                  else "check the file's permissions")
    elif code == errno.ENOENT:
        advice = "check the path"
    elif code == errno.EISDIR:
        advice = "give a file, not a folder"
    elif code == errno.ENOTDIR:
        advice = "a part of the path is a file, not a folder"
    else:
        advice = "check the path and the device"
    tail = " (nothing was replaced)" if doing == "write" else ""
    return UserError(f"cannot {doing} {path}: {reason}; {advice}{tail}")


def check_writable(path: str | Path, folder: bool = False) -> None:
    """Fail now, with one line, if `path` (a file to create, or a folder with folder=True)
    cannot be written: probes the nearest existing folder with a real temporary file."""
    path = Path(path)
    target = path if folder else path.parent
    probe_dir = target
    while not probe_dir.exists():
        if probe_dir.parent == probe_dir:
            break
        probe_dir = probe_dir.parent
    if probe_dir.exists() and not probe_dir.is_dir():
        raise UserError(f"cannot write {path}: {probe_dir} is a file, not a folder; choose "
                        f"another output location")
    try:
        fd, name = tempfile.mkstemp(prefix=f".probe.{os.getpid()}.", suffix=".tmp",
                                    dir=probe_dir)
        os.close(fd)
        os.unlink(name)
    except OSError as err:
        raise os_error(path, err) from None
    if probe_dir == target:  # the writer's own temp files left by an earlier, killed run
        clean_stale_temps(target, only=None if folder else path.name)


def check_output_file(path: str | Path, overwrite: bool, option: str = "--out",
                      example: str = "") -> None:
    """One rule for a command's output FILE: a folder there is named as such (--overwrite never
    replaces a folder, so it is not offered), an existing file needs --overwrite."""
    path = Path(path)
    if path.is_dir():
        name = example or (path.name + ".out")
        raise UserError(f"{option} {path} is a folder; give a file name, e.g. {option} "
                        f"{path / name}")
    if path.exists() and not overwrite:
        raise UserError(f"{path} already exists; choose another {option} or pass --overwrite "
                        f"to replace it")


def read_dir(folder: str | Path) -> list[Path]:
    """The entries of a folder, with an unreadable folder as a one-line UserError."""
    try:
        return list(Path(folder).iterdir())
    except OSError as err:
        raise os_error(folder, err, doing="read") from None


# ----------------------------------------------------------------------------------------------
# Locks and folder state


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(folder: str | Path, only: str | None = None) -> list[Path]:
    """Remove temp files/folders of killed writers (`.NAME.<pid>.*.tmp[dir]`, pid not alive),
    all of them or (`only`) those of one target name."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        m = _TEMP.match(entry.name)
        if not m or _pid_alive(int(m.group(1))):
            continue
        if only is not None and not entry.name.startswith(f".{only}."):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


def is_bookkeeping(entry: Path) -> bool:
    """Files the output rules themselves leave (the lock, temp files): not user content."""
    return entry.name == LOCK_NAME or bool(_TEMP.match(entry.name))


def folder_is_empty(folder: str | Path) -> bool:
    """True for a folder that holds nothing but bookkeeping (a lock, stale temps)."""
    return not any(not is_bookkeeping(p) for p in read_dir(folder))


def is_new_or_empty(path: str | Path) -> bool:
    path = Path(path)
    return not path.exists() or (path.is_dir() and folder_is_empty(path))


# Locks this process holds: folder -> (fd, depth), so nested users (a pipeline calling the
# training loop on the same folder) do not lock themselves out.
_HELD: dict[str, list[int]] = {}


@contextlib.contextmanager
def output_lock(folder: str | Path, what: str = "gancompress") -> Iterator[Path]:
    """Hold an exclusive lock on `folder` (created) for the duration; refuse at once if another
    process holds it. Stale temp files of killed writers are removed once the lock is held."""
    import fcntl

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file; give a folder")
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise os_error(folder, err) from None
    key = os.path.realpath(folder)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield folder
        finally:
            _HELD[key][1] -= 1
        return
    lock = folder / LOCK_NAME
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise os_error(folder, err) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = ""
        with contextlib.suppress(OSError, ValueError):
            holder = os.pread(fd, 200, 0).decode().strip()
        os.close(fd)
        raise UserError(f"{folder} is in use by another gancompress process"
                        + (f" ({holder})" if holder else "")
                        + "; wait for it to finish or choose another output (nothing was "
                          "changed)") from None
    try:
        same = os.fstat(fd).st_ino == os.stat(lock).st_ino
    except OSError:
        same = False
    if not same:  # the lock file was removed and re-created by its previous owner meanwhile
        os.close(fd)
        raise UserError(f"{folder} is in use by another gancompress process; wait for it to "
                        f"finish or choose another output (nothing was changed)")
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, {what}".encode(), 0)
    _HELD[key] = [fd, 1]
    failed = False
    try:
        clean_stale_temps(folder)
        yield folder
    except BaseException:
        failed = True
        raise
    finally:
        _HELD.pop(key, None)
        # Remove the lock file while still holding it: a process that opened the old file
        # meanwhile sees (by the inode check above) that it is gone, and refuses.
        with contextlib.suppress(OSError):
            os.unlink(lock)
        if failed and created:
            # A folder this call created and left empty: leave no trace of the failure.
            with contextlib.suppress(OSError):
                if all(is_bookkeeping(p) for p in folder.iterdir()):
                    for p in folder.iterdir():
                        p.unlink()
                    folder.rmdir()
        os.close(fd)  # releases the flock


# ----------------------------------------------------------------------------------------------
# Atomic, no-clobber writes


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def temp_sibling(path: Path, folder: bool = False) -> Path:
    """A fresh temp file (or folder) next to `path`, named so clean_stale_temps recognises it."""
    prefix = f".{path.name}.{os.getpid()}."
    if folder:
        return Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmpdir", dir=path.parent))
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def publish(tmp: Path, path: Path, overwrite: bool = True) -> None:
    """Move finished `tmp` onto `path`: replace when allowed, else link (fails if it exists)."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise UserError(f"{path} exists (another process may have written it meanwhile); choose "
                        f"another output or pass the overwrite option") from None
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # No hard links on this file system: exclusive create of the name, then replace it.
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            raise UserError(f"{path} exists (another process may have written it meanwhile); "
                            f"choose another output or pass the overwrite option") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_path(path: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success fsync it and publish it under `path`
    (replacing an existing file only if `overwrite`), else delete it.

    A crash mid-write never leaves a half-written file under the final name; an OSError (full
    disk, read-only folder) becomes a one-line UserError naming `path`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise UserError(f"cannot write {path}: it is a folder; give a file name")
        if not overwrite and path.exists():
            raise UserError(f"{path} exists; choose another output or pass the overwrite option")
        tmp = temp_sibling(path)
    except OSError as err:
        raise os_error(path, err) from None
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the final file normal permissions
        yield tmp
        with open(tmp, "rb+") as f:  # durable before it becomes visible under the final name
            os.fsync(f.fileno())
        publish(tmp, path, overwrite)
        _fsync_dir(path.parent)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise os_error(path, err) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str, overwrite: bool = True) -> None:
    with atomic_path(path, overwrite=overwrite) as tmp:
        Path(tmp).write_text(text)


def append_line(path: str | Path, line: str, sync: bool = False) -> None:
    """Append one line to a JSON-lines file. If a kill left the last line without its newline,
    one is added first, so the torn line never swallows the next record."""
    path = Path(path)
    try:
        with open(path, "ab+") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")
            f.write(line.rstrip("\n").encode() + b"\n")
            f.flush()
            if sync:
                os.fsync(f.fileno())
    except OSError as err:
        raise os_error(path, err) from None


# ----------------------------------------------------------------------------------------------
# Fingerprints

# SHA-256 of large files is cached per (path, size, mtime) so that repeated scoring (a search
# evaluates hundreds of candidates) hashes each 100 MB file once.
_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    path = Path(path)
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _HASH_CACHE:
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            _HASH_CACHE[key] = digest.hexdigest()
    except OSError as err:
        raise os_error(path, err, doing="read") from None
    return _HASH_CACHE[key]


def file_fingerprint(path: str | Path) -> str:
    """Short SHA-256 (first 16 hex digits): which supernet a search folder belongs to."""
    return sha256_file(path)[:16]


def names_fingerprint(names: list[str]) -> str:
    """Short SHA-256 of a sorted list of names (which files a dataset holds)."""
    digest = hashlib.sha256("\n".join(sorted(names)).encode())
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    """The one cache folder: $GANCOMPRESS_CACHE, else $XDG_CACHE_HOME/gancompress, else
    ~/.cache/gancompress."""
    if os.environ.get("GANCOMPRESS_CACHE"):
        return Path(os.environ["GANCOMPRESS_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base) / "gancompress"
