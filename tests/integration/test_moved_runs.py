"""Run folders that move (issue 26 item 1): a compression interrupted in its supernet stage, its
folder (or, separately, its data folder or its teacher) moved, resumes there and ends bitwise
equal to an uninterrupted run; what a run folder records about its own contents is relative to
it; a moved input with other content is refused naming what moved; a run folder of an earlier
version (absolute paths) still resumes. Resuming below the steps done is refused, untouched."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from helpers import TINY, compare_runs, make_inverted_pairs, make_pairs, tiny_config

from gancompress.compress.pipeline import compress, compress_config
from gancompress.compress.tasks import DistillTask, train
from gancompress.errors import UserError

# 12 pairs, 4 held out: 8 training images at batch 4 = 2 steps per epoch; 3 epochs = 6 steps,
# a checkpoint every 2
STAGE = ["compress.supernet_epochs=3", "train.max_steps=0", "train.checkpoint_every=2",
         "train.log_every=1"]


class Interrupt(BaseException):
    """Stands for a kill: raised inside a step, so nothing after the last checkpoint is saved."""


def _config(teacher: Path, data: Path):
    return compress_config(teacher=str(teacher), data=str(data), budget="1/3",
                           overrides=TINY + STAGE)


def _interrupted(monkeypatch, cfg, out: Path, at_step: int) -> None:
    step = DistillTask.step

    def dying(self, batch, index):
        if index == at_step:
            raise Interrupt
        return step(self, batch, index)

    monkeypatch.setattr(DistillTask, "step", dying)
    with pytest.raises(Interrupt):
        compress(cfg, out, stages=["supernet"], log=lambda _: None)
    monkeypatch.setattr(DistillTask, "step", step)


def _events(run: Path) -> list[dict]:
    return [r for r in map(json.loads, (run / "log.jsonl").read_text().splitlines())
            if "event" in r]


@pytest.fixture
def inputs(tmp_path, workspace):
    """A teacher and a data folder of this test's own (the test moves them)."""
    shutil.copy(workspace / "teacher.pth", tmp_path / "teacher.pth")
    make_inverted_pairs(tmp_path / "data")
    return tmp_path / "teacher.pth", tmp_path / "data"


def _as_earlier_version(out: Path) -> None:
    """Rewrite a compression folder as earlier versions left it: absolute paths only, no
    inputs.json."""
    from gancompress.config import Config
    from gancompress.training.run import load_run_config

    for run in (out / "supernet",):
        (run / "config.json").write_text(load_run_config(run).to_json())
        (run / "inputs.json").unlink()
    saved = Config.from_dict(json.loads((out / "compress.json").read_text()))
    (out / "compress.json").write_text(saved.to_json())
    (out / "inputs.json").unlink()


@pytest.mark.parametrize("moved", ["run folder", "data folder", "teacher",
                                   "nothing, earlier version"])
def test_interrupted_compression_resumes_after_a_move_bitwise(tmp_path, inputs, monkeypatch,
                                                               moved):
    teacher, data = inputs
    reference = tmp_path / "reference"
    compress(_config(teacher, data), reference, stages=["supernet"], log=lambda _: None)

    out = tmp_path / "first" / "out"
    _interrupted(monkeypatch, _config(teacher, data), out, at_step=3)  # checkpoint 2 kept
    recorded = json.loads((out / "supernet" / "config.json").read_text())
    assert recorded["data"]["exclude_list"] == "../held_out.txt"
    if moved == "run folder":
        shutil.move(str(out), str(tmp_path / "elsewhere"))
        out = tmp_path / "elsewhere"
    elif moved == "data folder":
        data = Path(shutil.move(str(data), str(tmp_path / "data-moved")))
    elif moved == "teacher":
        teacher = Path(shutil.move(str(teacher), str(tmp_path / "teacher-moved.pth")))
    else:
        _as_earlier_version(out)
        assert json.loads((out / "supernet" / "config.json").read_text())["data"][
            "exclude_list"] == str((out / "held_out.txt").resolve())
    compress(_config(teacher, data), out, stages=["supernet"], log=lambda _: None)
    assert any(e["event"] == "resume" and e["step"] == 2 for e in _events(out / "supernet"))
    compare_runs(reference / "supernet", out / "supernet")


def test_a_moved_teacher_with_other_content_is_refused_naming_it(tmp_path, inputs,
                                                                  monkeypatch):
    teacher, data = inputs
    out = tmp_path / "out"
    _interrupted(monkeypatch, _config(teacher, data), out, at_step=1)
    other = tmp_path / "other.pth"
    other.write_bytes(teacher.read_bytes() + b"\0")  # not the same file any more
    teacher.unlink()
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(UserError, match=r"compress.teacher: moved or changed: the run used "
                                        r".*teacher.pth \(no longer there\), given .*other.pth "
                                        r"with other content"):
        compress(_config(other, data), out, stages=["supernet"], log=lambda _: None)
    assert sorted(p.name for p in out.rglob("*")) == before


def test_run_folder_of_an_earlier_version_with_absolute_paths_still_resumes(tmp_path):
    held = tmp_path / "held.txt"
    held.write_text("0.png\n")
    cfg = tiny_config(make_pairs(tmp_path / "data"), "pix2pix", "train.max_steps=2",
                      f"data.exclude_list={held}")
    run = tmp_path / "run"
    train(cfg, run)
    saved = json.loads((run / "config.json").read_text())
    assert saved["data"]["exclude_list"] == str(held.resolve())  # outside the run: absolute
    (run / "inputs.json").unlink()  # earlier versions wrote none
    result = train(tiny_config(tmp_path / "data", "pix2pix", "train.max_steps=3",
                               f"data.exclude_list={held}"), run, resume=True)
    assert result["steps"] == 3


def test_paths_into_the_run_are_relative_and_resolved_on_read(tmp_path):
    from gancompress.config import apply_overrides
    from gancompress.training.run import load_run_config, portable_config

    run = tmp_path / "run"
    run.mkdir()
    cfg = apply_overrides(tiny_config(tmp_path / "data"),
                          [f"data.file_list={run / 'keep.txt'}",
                           f"compress.teacher={tmp_path / 'teacher.pth'}"])
    portable = portable_config(cfg, run)
    assert portable.data.file_list == "keep.txt"
    assert portable.compress.teacher == str((tmp_path / "teacher.pth").resolve())
    (run / "config.json").write_text(portable.to_json())
    moved = Path(shutil.move(str(run), str(tmp_path / "moved")))
    assert load_run_config(moved).data.file_list == str((moved / "keep.txt").resolve())


def test_resume_below_the_steps_done_is_refused_and_changes_nothing(tmp_path):
    cfg = tiny_config(make_pairs(tmp_path / "data"), "pix2pix", "train.max_steps=4")
    run = tmp_path / "run"
    train(cfg, run)
    before = {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with pytest.raises(UserError, match=r"train.max_steps=2: it has done 4 steps already"):
        train(tiny_config(tmp_path / "data", "pix2pix", "train.max_steps=2"), run, resume=True)
    assert {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
