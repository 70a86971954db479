"""The worked example of docs/byog.md runs as written: its module file and Python example, its
profile commands, and its `gancompress.api.compress` script (verbatim, on tiny pairs in
datasets/edges2shoes, with the demo recipe shrunk to test size: the code is the page's, the
recipe's epochs and search sizes are the tests')."""
from __future__ import annotations

import re
import runpy
import shlex
from pathlib import Path

import gancompress
from gancompress.cli import main
from gancompress.config.presets import PRESETS, Preset
from helpers import REPO, TINY, make_inverted_pairs

PAGE = REPO / "docs" / "byog.md"


def test_worked_example_runs_as_written(tmp_path, monkeypatch, capsys, one_thread):
    text = PAGE.read_text()
    files = dict(re.findall(r'```python title="([^"]+)"\n(.*?)```', text, re.S))
    assert set(files) == {"mynets.py", "example.py", "compress_mynet.py"}
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(tmp_path / "example.py"))  # its assert: compact == sub-network
    printed = capsys.readouterr().out
    assert "'blocks.0.gate.1': 8" in printed and "'up.3': 'an output of the model'" in printed
    bash = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    first = shlex.split(bash.splitlines()[0])
    assert first[:2] == ["gancompress", "profile"]
    assert main(first[1:]) == 0
    assert "MACs" in capsys.readouterr().out


def test_python_api_example_runs_as_written(tmp_path, monkeypatch, capsys, one_thread):
    text = PAGE.read_text()
    files = dict(re.findall(r'```python title="([^"]+)"\n(.*?)```', text, re.S))
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    make_inverted_pairs(tmp_path / "datasets" / "edges2shoes", n=8)
    tiny = dict(item.split("=", 1) for item in TINY if not item.startswith("compress.space"))
    monkeypatch.setitem(PRESETS, "compress-demo", Preset("compress-demo", "test size", tiny))
    runpy.run_path(str(tmp_path / "compress_mynet.py"))
    printed = capsys.readouterr().out
    assert "Compact" in printed and printed.rstrip().endswith("mynets:MyNet")
    compact = gancompress.load_generator(tmp_path / "runs" / "mynet-compact" / "compact.pth")
    assert compact.arch["module"] == "mynets:MyNet" and compact.arch["args"] == {"ngf": 16}
