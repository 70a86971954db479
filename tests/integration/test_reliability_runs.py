"""Reliability classes 5-8 (issue 16), continued from test_reliability.py: stages and runs
(markers last, resume from any directory, other data refused, torn JSONL lines), Ctrl-C and
non-finite losses, compress not inheriting the teacher run's stage settings, evaluation weights
checked against their published SHA-256, malformed checkpoints."""
from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from helpers import cli, make_domains, make_pairs, tiny_config, tiny_generator

from gancompress import files
from gancompress.config import (
    Config,
    apply_overrides,
    preset,
)
from gancompress.errors import UserError
from gancompress.imaging import open_image
from gancompress.models import build_generator
from gancompress.models.checkpoint import (
    evaluation_size,
    load_generator,
    safe_load,
    save_generator,
)
from gancompress.compress.tasks import TASKS
from gancompress.compress.tasks import train
from gancompress.training.loop import Task




# ----------------------------------------------------------------------------------------------
# 5. Stages and runs


def test_stage_is_done_only_when_all_its_files_exist(tmp_path):
    from gancompress.compress.pipeline import Pipeline
    pipe = Pipeline(Config(), tmp_path)
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "best.json").write_text("{}")
    assert not pipe.done("search")  # a kill before pareto.png: redone, not skipped
    (tmp_path / "search" / "pareto.png").write_bytes(b"png")
    assert pipe.done("search")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.json").write_text("{}")
    assert not pipe.done("report")


def test_markers_are_written_last(tmp_path, monkeypatch):
    """A kill between two output files of a stage leaves the stage not done."""
    from gancompress.compress import report as report_module
    from gancompress.compress import search as search_module
    written = []
    real = files.atomic_write_text

    def kill_at_marker(path, text, overwrite=True):
        if Path(path).name in ("report.json", "best.json"):
            raise KeyboardInterrupt  # the kill, after the other files
        written.append(Path(path).name)
        return real(path, text, overwrite)

    monkeypatch.setattr(report_module, "atomic_write_text", kill_at_marker)
    report = {"models": {}, "input_size": [1, 3, 8, 8]}
    monkeypatch.setattr(report_module, "markdown", lambda r: "# report\n")
    with pytest.raises(KeyboardInterrupt):
        report_module.write_report(report, torch.zeros(3, 8, 8), tmp_path / "report")
    assert (tmp_path / "report" / "report.md").is_file()
    assert (tmp_path / "report" / "grid.png").is_file()
    assert not (tmp_path / "report" / "report.json").exists()
    source = Path(search_module.__file__).read_text()
    assert source.index('"pareto.png"') < source.index('"best.json", json.dumps')


def test_torn_results_line_does_not_swallow_the_next_record(tmp_path):
    from gancompress.compress.search import Candidate, SearchRun
    run = SearchRun(tmp_path / "s", {"id": 1})
    run.start({})
    run.append(Candidate("4_4", 1.0, 0.5))
    with open(run.results_path, "a") as f:
        f.write('{"config": "8_4", "co')  # torn by a kill
    SearchRun(tmp_path / "s", {"id": 1}).append(Candidate("8_8", 3.0, 0.25))
    again = SearchRun(tmp_path / "s", {"id": 1})
    assert sorted(again.records) == ["4_4", "8_8"]


@pytest.mark.slow
def test_run_resumes_from_any_working_directory(tmp_path, monkeypatch):
    make_pairs(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    assert cli("train", "--preset", "demo", "--data", "data", "--out", "run", "data.load_size=36",
               "data.crop_size=32", "model.ngf=4", "model.n_blocks=3", "model.ndf=8",
               "train.max_steps=2", "train.progress=false", "train.n_samples=1",
               "train.threads=1") == 0
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["data"]["root"]
    assert recorded == str(tmp_path / "data")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli("train", "--out", str(tmp_path / "run"), "--resume", "train.max_steps=3") == 0


def test_resume_refuses_a_different_dataset(tmp_path):
    train(tiny_config(make_pairs(tmp_path / "a"), "pix2pix", "train.max_steps=2"), tmp_path / "r")
    other = make_pairs(tmp_path / "b", n=6)
    with pytest.raises(UserError, match="trained on 8 images.*holds 6 images"):
        train(tiny_config(other, "pix2pix", "train.max_steps=4"), tmp_path / "r", resume=True)


def test_pix2pix_refuses_unpaired_data(tmp_path):
    cfg = apply_overrides(tiny_config(make_domains(tmp_path / "u")), ["data.mode=unaligned"])
    with pytest.raises(UserError, match="pix2pix needs aligned data.*cyclegan"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------------------------
# Training stops: non-finite losses, Ctrl-C

class _ScriptedTask(Task):
    """A one-parameter task: loss NaN at `nan_at`, or a SIGINT to itself at `sigint_at`."""

    name = "scripted"
    nan_at: int | None = None
    sigint_at: int | None = None

    def __init__(self, config, device):
        super().__init__(config, device)
        self.weight = self.add_model("w", torch.nn.Linear(1, 1))
        self.add_optimizer("w", self.weight.parameters())

    def step(self, batch, step):
        loss = self.weight(torch.ones(1, 1)).pow(2).sum()
        self.optimize("w", loss)
        if self.sigint_at is not None and step + 1 == self.sigint_at:
            os.kill(os.getpid(), signal.SIGINT)  # lands inside the step
        value = math.nan if self.nan_at is not None and step + 1 >= self.nan_at else loss.item()
        return {"G_recon": value}

    def sample(self, batch):
        return [[batch["source"][0]]]


@pytest.fixture
def scripted(monkeypatch):
    monkeypatch.setitem(TASKS, "scripted", _ScriptedTask)
    yield _ScriptedTask
    _ScriptedTask.nan_at = _ScriptedTask.sigint_at = None


def test_non_finite_loss_stops_with_the_last_good_checkpoint(tmp_path, scripted):
    scripted.nan_at = 6
    cfg = tiny_config(make_pairs(tmp_path / "d"), "pix2pix", "train.task=scripted")
    with pytest.raises(UserError, match="loss G_recon became nan at step 6.*last good "
                                        "checkpoint is step 4"):
        train(cfg, tmp_path / "run")
    assert safe_load(tmp_path / "run" / "checkpoint.pt")["step"] == 4
    for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines():
        json.loads(line)  # strict JSON, no bare NaN tokens
    assert not (tmp_path / "run" / "generator.pth").exists()


def test_ctrl_c_saves_at_the_next_step_boundary_and_exits_130(tmp_path, scripted, capsys):
    scripted.sigint_at = 3  # between checkpoints (every 4 steps)
    data = make_pairs(tmp_path / "d")
    code = cli("train", "--preset", "demo", "--data", str(data), "--out", str(tmp_path / "run"),
               "train.task=scripted", "data.load_size=36", "data.crop_size=32",
               "train.progress=false", "train.checkpoint_every=100", "train.n_samples=1")
    assert code == 130
    assert safe_load(tmp_path / "run" / "checkpoint.pt")["step"] == 3
    events = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert {"event": "interrupted", "step": 3, "saved": True} in events


# ----------------------------------------------------------------------------------------------
# 6-7. Stage settings from the recipe; evaluation at the trained size


def test_compress_does_not_inherit_the_teacher_runs_stage_settings(tmp_path):
    from gancompress.compress.pipeline import compress_config, inherited_from_teacher
    teacher_cfg = apply_overrides(preset("demo"), ["train.max_steps=200", "train.lr=1e-4",
                                                   "train.checkpoint_every=7"])
    path = tmp_path / "t.pth"
    save_generator(build_generator("resnet", ngf=4, n_blocks=3), path,
                   meta={"config": teacher_cfg.to_dict()})
    cfg = compress_config(teacher=str(path), preset_name="demo")
    assert cfg.train.max_steps == 0 and cfg.train.checkpoint_every == 500
    assert cfg.train.lr == 1e-4 and cfg.data.crop_size == 64  # inherited
    assert "data.crop_size=64" in inherited_from_teacher(str(path))


def test_generate_and_eval_use_the_trained_size(tmp_path, capsys):
    path = tiny_generator(tmp_path, crop=32)
    model = load_generator(path)
    assert evaluation_size(model) == ((32, 32), "the size the model was trained at (from its "
                                                "checkpoint)")
    assert evaluation_size(load_generator(tiny_generator(tmp_path / "n", crop=None)))[0] == \
        (256, 256)
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.zeros((48, 48, 3), np.uint8)).save(folder / "a.png")
    assert cli("generate", str(path), "--input", str(folder), "--out", str(tmp_path / "o")) == 0
    assert Image.open(tmp_path / "o" / "a.png").size == (32, 32)
    assert "trained at" in capsys.readouterr().out
    assert cli("eval", "--model", str(path), "--metrics", "macs", "--json") == 0
    captured = capsys.readouterr()
    assert "resized to 32x32" in captured.err
    assert json.loads(captured.out)["metrics"]["macs"]["protocol"].count("1x3x32x32") == 1


# ----------------------------------------------------------------------------------------------
# 8. Evaluation weights: published SHA-256


def test_weights_are_checked_against_the_published_hash(tmp_path, monkeypatch):
    from gancompress.weights import ALLOW_ENV, PublishedWeights, load_published
    model = torch.nn.Linear(2, 2)
    path = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), path)
    digest = files.sha256_file(path)
    wrong = PublishedWeights("tiny.pth", "https://example.org/tiny.pth", "a test net",
                             "--tiny", sha256="00000000")
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    with pytest.raises(UserError, match="not its published contents.*--allow-unverified"):
        load_published(torch.nn.Linear(2, 2), wrong, explicit=path)
    monkeypatch.setenv(ALLOW_ENV, "1")
    with pytest.warns(UserWarning, match="marked unverified"):
        assert load_published(torch.nn.Linear(2, 2), wrong, explicit=path).verified is False
    right = PublishedWeights("tiny.pth", "", "a test net", "--tiny", sha256=digest[:8])
    assert load_published(torch.nn.Linear(2, 2), right, explicit=path).verified is True
    unknown = PublishedWeights("tiny.pth", "", "a test net", "--tiny")
    assert load_published(torch.nn.Linear(2, 2), unknown, explicit=path).as_dict()[
        "verified"] is None


def test_inception_spec_carries_its_published_hash_prefix():
    from gancompress.weights import INCEPTION_FID
    assert INCEPTION_FID.name.endswith(f"-{INCEPTION_FID.sha256}.pth")


# ----------------------------------------------------------------------------------------------
# Malformed inputs that used to raise tracebacks


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    ({"format": "gancompress-generator", "version": 1, "state_dict": {}}, "damaged"),
    ({"model.0.weight": torch.zeros(8, 6, 4, 4), "model.0.bias": torch.zeros(8)},
     "discriminator"),
    ("ours", "save_generator"),
    ([1, 2, 3], "unrecognised checkpoint format"),
])
def test_malformed_checkpoints_are_one_line(tmp_path, content, message):
    path = tmp_path / "c.pth"
    if content == b"":
        path.write_bytes(b"")
    elif content == "ours":
        torch.save(build_generator("resnet", ngf=4, n_blocks=3).state_dict(), path)
    else:
        torch.save(content, path)
    with pytest.raises(UserError, match=message):
        load_generator(path)


def test_folder_given_as_checkpoint(tmp_path):
    with pytest.raises(UserError, match="is a folder"):
        load_generator(tmp_path)


def test_truncated_statistics_file(tmp_path):
    from gancompress.metrics.fid import load_statistics
    np.savez(tmp_path / "s.npz", mu=np.zeros(4), sigma=np.eye(4))
    data = (tmp_path / "s.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="cannot read statistics file"):
        load_statistics(tmp_path / "t.npz", dim=None)


def test_int8_calibration_uses_the_input_half_of_aligned_pairs(tmp_path):
    from gancompress.deploy.quantize import calibration_images
    root = make_pairs(tmp_path / "d")
    images = calibration_images(root / "train", (1, 3, 40, 40), limit=2)
    assert images.shape == (2, 3, 40, 40)
    left = open_image(sorted((root / "train").iterdir())[0]).crop((0, 0, 40, 40))
    expected = torch.from_numpy(np.asarray(left, np.float32)).permute(2, 0, 1) / 127.5 - 1
    assert torch.allclose(images[0], expected)
