"""The built wheel ships every file of the source package (package data is declared by folder, so
a new static file cannot be missed), the licence files, one version and the declared extras."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from helpers import REPO


def _project_version() -> str:
    # (tomllib is 3.11+; the package supports 3.10)
    text = (REPO / "pyproject.toml").read_text()
    return re.search(r'^version = "([^"]+)"$', text, re.M).group(1)


def _source_files() -> set[str]:
    root = REPO / "src"
    return {p.relative_to(root).as_posix() for p in (root / "gancompress").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    # build from a copy: the build writes build/ and *.egg-info next to the sources
    work = tmp_path_factory.mktemp("wheel")
    tree = work / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "NOTICE"):
        shutil.copy(REPO / name, tree / name)
    shutil.copytree(REPO / "src", tree / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                          "--no-index", "-q", "-w", str(work / "dist"), str(tree)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    (path,) = (work / "dist").glob("gancompress-*.whl")
    return path


@pytest.mark.slow
def test_wheel_holds_every_source_file(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    shipped = {n for n in names if n.startswith("gancompress/")}
    source = _source_files()
    assert "gancompress/py.typed" in source and any(n.startswith("gancompress/serve/static/")
                                                     for n in source)
    assert sorted(source - shipped) == []  # e.g. a new static file left out of the package data
    assert sorted(shipped - source) == []  # nothing stale (build/ leftovers, bytecode)


@pytest.mark.slow
def test_wheel_metadata(wheel):
    version = _project_version()
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = z.read(meta_name).decode()
    assert re.search(rf"^Version: {re.escape(version)}$", meta, re.M)
    assert {n.rsplit("/", 1)[-1] for n in names if "/licenses/" in n} >= {"LICENSE", "NOTICE"}
    assert re.search(r"^License-Expression: MIT$", meta, re.M)
    requires = re.findall(r"^Requires-Dist: (.*)$", meta, re.M)
    assert "torch>=2.5" in requires  # the dynamo ONNX exporter
    demo = [r for r in requires if "extra == \"demo\"" in r]
    assert demo and not any(t in r for r in demo for t in ("selenium", "httpx", "pytest"))


def test_one_version_literal():
    import gancompress
    version = _project_version()
    init = (REPO / "src" / "gancompress" / "__init__.py").read_text()
    assert version not in init  # read from the installed metadata, not repeated
    assert re.fullmatch(r"\d+\.\d+\.\d+.*|0\+unknown", gancompress.__version__)
