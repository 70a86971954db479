"""The documentation site builds offline (mkdocs --strict: no broken link, no missing API object),
its command-line page is generated from the parser, and every section the code cites exists."""
from __future__ import annotations

import html
import os
import re
import subprocess
import sys

import pytest

from helpers import REPO

# the pages that replace the three planning notes, with the section numbers the code cites
PAGES = {"docs/reference.md": "reference.md", "docs/families.md": "families.md"}


def _headings(page: str) -> set[str]:
    text = (REPO / "docs" / page).read_text()
    return set(re.findall(r"^#{2,3} (\d+(?:\.\d+)*)\.? ", text, re.M))


def _cited() -> dict[str, set[str]]:
    """Section numbers cited in src/, tests/ and bench/ under the old or the new file names."""
    cited: dict[str, set[str]] = {page: set() for page in PAGES.values()}
    names = "|".join(re.escape(n) for n in [*PAGES, *(f"docs/{p}" for p in PAGES.values())])
    pattern = re.compile(rf"({names}) sec\. (\d+(?:\.\d+)*)")
    for top in ("src", "tests", "bench"):
        for path in (REPO / top).rglob("*.py"):
            for name, number in pattern.findall(path.read_text()):
                page = PAGES.get(name, name.removeprefix("docs/"))
                cited[page].add(number.rstrip("."))
    return cited


def test_every_cited_section_exists():
    cited = _cited()
    assert cited["reference.md"] >= {"2", "3", "5"}  # the scan finds the citations
    for page, numbers in cited.items():
        missing = numbers - _headings(page)
        assert not missing, f"docs/{page} lacks sections {sorted(missing)}"


@pytest.mark.slow
def test_site_builds_offline(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                          str(site), "--config-file", str(REPO / "mkdocs.yml")], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-4000:]
    cli = html.unescape((site / "cli" / "index.html").read_text())
    from gancompress.cli import build_parser
    parser = build_parser()
    (sub,) = [a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict)]
    for name, command in sub.choices.items():  # every subcommand, with its real options
        assert f"gancompress {name}" in cli, name
        options = [s for a in command._actions for s in a.option_strings if s.startswith("--")]
        assert all(o in cli for o in options), (name, [o for o in options if o not in cli])
    api = (site / "api" / "index.html").read_text()
    assert "load_generator" in api and "using_widths" in api
    for page in ("reference", "families", "design"):
        assert (site / page / "index.html").is_file()
    assert "fonts.googleapis.com" not in (site / "index.html").read_text()  # nothing fetched
