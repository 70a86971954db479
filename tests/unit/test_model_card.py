"""The model card a compression run folder gets (RUN/README.md): front matter for a model hub,
fed from the report the pipeline wrote."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from gancompress.cli import main
from gancompress.compress.model_card import write_model_card
from gancompress.errors import UserError
from gancompress.files import sha256_file


def front_matter(text: str) -> dict:
    """The card's YAML front matter, read as the subset model_card writes (block mappings, one
    JSON value per line) - a reader that fails on anything else."""
    lines = text.split("\n")
    assert lines[0] == "---"
    end = lines.index("---", 1)
    root: dict = {}
    stack = [(-1, root)]
    for line in lines[1:end]:
        indent = len(line) - len(line.lstrip(" "))
        key, sep, value = line.strip().partition(":")
        assert sep, line
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if value.strip():
            parent[key] = json.loads(value)
        else:
            parent[key] = {}
            stack.append((indent, parent[key]))
    return root


def _fresh_report(run: Path) -> None:
    """Drop the fixture's stand-in report (so `report RUN` makes the real one) and give its
    settings the tiny space its supernet was trained in."""
    (run / "report" / "report.json").unlink()
    settings = json.loads((run / "compress.json").read_text())
    settings["compress"].update({"space": "8,4", "held_out": 2})
    settings["train"] = {"device": "cpu", "progress": False}
    (run / "compress.json").write_text(json.dumps(settings))


def test_report_of_a_run_writes_a_model_card(demo_run, capsys):
    run = demo_run["run"]
    _fresh_report(run)
    assert main(["report", str(run), "--license", "mit"]) == 0
    assert f"model card: {run / 'README.md'}" in capsys.readouterr().out
    text = (run / "README.md").read_text()
    meta = front_matter(text)
    report = json.loads((run / "report" / "report.json").read_text())
    teacher, compact = report["models"]["teacher"], report["models"]["compact"]
    assert meta["license"] == "mit" and meta["library_name"] == "gancompress"
    assert {"gancompress", "image-to-image", "resnet"} <= set(meta["tags"])
    assert meta["teacher"]["sha256"] == sha256_file(demo_run["run"].parent / "teacher.pth")
    assert meta["compact"]["sha256"] == sha256_file(run / "compact.pth")
    assert meta["compact"]["config"] == demo_run["chosen"] and meta["budget"] == "1/2"
    assert meta["macs"]["teacher"] == teacher["macs"] and meta["macs"]["compact"] == compact["macs"]
    assert meta["params"] == {"teacher": teacher["params"], "compact": compact["params"]}
    assert meta["metrics"]["compact"]["held_out_l1"] == compact["quality"]["l1"]
    latency = meta["latency"]
    assert latency["compact_ms"] == compact["latency_ms"] and latency["device"] == "cpu"
    assert latency["threads"] >= 1 and latency["versions"]["torch"] == teacher["latency"]["torch"]
    assert latency["versions"]["gancompress"]
    assert "load_generator(\"compact.pth\")" in text and "](report/grid.png)" in text


def test_the_card_defaults_to_license_other_and_needs_a_report(demo_run, tmp_path):
    with pytest.raises(UserError, match="has no report yet"):
        write_model_card(tmp_path / "empty")
    run = demo_run["run"]
    _fresh_report(run)
    assert main(["report", str(run)]) == 0
    assert front_matter((run / "README.md").read_text())["license"] == "other"
    teacher = run.parent / "teacher.pth"
    teacher.rename(run.parent / "moved.pth")  # a moved teacher: the card says so, no crash
    text = Path(write_model_card(run)).read_text()
    assert front_matter(text)["teacher"]["sha256"] is None and "teacher file moved" in text
