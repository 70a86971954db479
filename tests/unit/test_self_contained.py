"""The repository is self-contained: a clone into an empty folder runs every test.

No path in tests/ or src/ reaches out of the repository (the fixtures live in tests/fixtures),
importing the package reads no file, and importing the test modules reads only files inside the
repository."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from helpers import FIXTURES, OFFICIAL, REPO

# Built from pieces so that this file, which is scanned too, does not match itself.
_SH = "sh" + "ared"
FORBIDDEN = [
    re.escape("../" + _SH),               # the sibling folder CI used to provide
    re.escape("/" + _SH + "/"),
    re.escape(_SH + "/fixtures"),
    "[\"']" + _SH + "[\"']",               # the folder's name as a path piece
    re.escape("/wo" + "rk/"),             # absolute paths of one machine
    re.escape("REPO" + ".parent"),        # the folder above the clone
    r"parents\[[2-9]\]",                  # tests/x.py: parents[1] is the repository itself
    re.escape("/" + "home/"),
]
TEXT_SUFFIXES = {".py", ".md", ".json", ".txt", ".js", ".html", ".css", ".toml", ".cfg", ".yaml",
                 ".yml", ".sh", ".ini"}


def _text_files():
    for top in ("src", "tests"):
        for path in sorted((REPO / top).rglob("*")):
            if path.is_file() and path.suffix in TEXT_SUFFIXES and "__pycache__" not in path.parts:
                yield path


def test_no_path_reaches_out_of_the_repository():
    files = list(_text_files())
    assert any(p.name == "conftest.py" for p in files) and len(files) > 50
    hits = []
    for path in files:
        for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for pattern in FORBIDDEN:
                if re.search(pattern, line):
                    hits.append(f"{path.relative_to(REPO)}:{lineno}: {line.strip()}")
    assert not hits, "paths that leave the repository:\n" + "\n".join(hits)


def test_the_scan_catches_what_it_should():
    bad = ["FIXTURES = REPO" + '.parent / "' + _SH + '" / "fixtures"',
           "p = Path(__file__).parents[" + "2] / 'x'", "open('/wo" + "rk/main/x')",
           "../" + _SH + "/fixtures/official", "x = ROOT / '" + _SH + "' / 'y'"]
    for line in bad:
        assert any(re.search(p, line) for p in FORBIDDEN), line
    assert not any(re.search(p, 'REPO = Path(__file__).resolve().parents[1]') for p in FORBIDDEN)


def test_fixtures_are_inside_and_complete():
    assert FIXTURES.resolve().is_relative_to(REPO) and OFFICIAL.resolve().is_relative_to(REPO)
    manifest = json.loads((OFFICIAL / "MANIFEST.json").read_text())
    families = {entry.get("family", "resnet") for entry in manifest.values()}
    assert families == {"resnet", "spade", "unet", "munit"}
    for name in manifest:
        assert (OFFICIAL / f"{name}.pth").is_file() and (OFFICIAL / f"{name}.io.pt").is_file(), name
    listed = {p.name for p in OFFICIAL.iterdir()}
    assert listed == {"MANIFEST.json"} | {f"{n}{s}" for n in manifest for s in (".pth", ".io.pt")}
    assert (FIXTURES / "README.md").is_file()


# Runs in a fresh interpreter: records every file opened on behalf of the watched code. Walking up
# from the open, the first frame that is either the import system or watched code decides: a
# module being imported is the import system's read; a read that the watched code asks for
# (itself or through a library) is the code's.
_PROBE = r"""
import importlib, json, os, pkgutil, sys
watched = os.path.realpath(sys.argv[1])
what = sys.argv[2]
opened = []

def caller_is_watched():
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith("<frozen importlib"):
            return False
        if os.path.realpath(name).startswith(watched + os.sep):
            return True
        frame = frame.f_back
    return False

def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)) and caller_is_watched():
        opened.append(os.fsdecode(args[0]))

import torch  # noqa: F401  (a dependency's own start-up reads are not ours)
sys.addaudithook(hook)
if what == "package":
    import gancompress
    for info in pkgutil.walk_packages(gancompress.__path__, "gancompress."):
        if info.name != "gancompress.__main__":  # runs the command line
            importlib.import_module(info.name)
else:
    sys.path.insert(0, watched)  # helpers.py, as pyproject's pythonpath = ["tests"] does
    for folder, _, names in sorted(os.walk(watched)):  # the test folders (contract/, unit/, ...)
        for name in sorted(names):
            if name.startswith("test_") and name.endswith(".py"):
                sys.path.insert(0, folder)
                importlib.import_module(name[:-3])
print(json.dumps(opened))
"""


def _opened_while_importing(watched: Path, what: str) -> list[str]:
    env = {"PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1",
           "PATH": "/usr/bin:/bin", "HOME": str(REPO / "nonexistent-home")}
    out = subprocess.run([sys.executable, "-c", _PROBE, str(watched), what], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_package_reads_no_file():
    # every module, including the optional ones (serve, deploy backends): nothing is read at
    # import time, so `--help` is fast and a missing data file fails where it is used
    opened = _opened_while_importing(REPO / "src" / "gancompress", "package")
    assert opened == [], opened


def test_importing_the_tests_reads_only_inside_the_repository():
    opened = _opened_while_importing(REPO / "tests", "tests")
    assert len(list((REPO / "tests").rglob("test_*.py"))) > 40  # the walk reaches every folder
    outside = [p for p in opened if not Path(p).resolve().is_relative_to(REPO)]
    assert not outside, outside
    assert any(Path(p).name == "MANIFEST.json" for p in opened)  # the probe does see reads
