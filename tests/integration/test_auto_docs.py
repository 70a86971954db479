"""The worked example of docs/byog.md runs as written: its module file and Python example, and
its profile commands."""
from __future__ import annotations

import re
import runpy
import shlex
from pathlib import Path

from gancompress.cli import main
from helpers import REPO

PAGE = REPO / "docs" / "byog.md"


def test_worked_example_runs_as_written(tmp_path, monkeypatch, capsys, one_thread):
    text = PAGE.read_text()
    files = dict(re.findall(r'```python title="([^"]+)"\n(.*?)```', text, re.S))
    assert set(files) == {"mynets.py", "example.py"}
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
