"""The compress pipeline's pre-flight: the teacher file is read once, the run is described once
(frozen) and handed to the stages; the public device function the stage commands use."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from helpers import make_pairs
from gancompress.cli import main
from gancompress.compress.pipeline import Pipeline, compress_config
from gancompress.compress.run import RunDescription, device_for
from gancompress.config import Config, apply_overrides, preset
from gancompress.models import build_generator
from gancompress.models.checkpoint import save_generator

SMALL = ["compress.space=4,2", "compress.held_out=2", "train.device=cpu",
         "data.num_workers=0"]


def _teacher(tmp_path: Path) -> Path:
    """A tiny teacher whose checkpoint records its training config (32 px, ngf 4)."""
    teacher_cfg = apply_overrides(preset("demo"), ["data.load_size=36", "data.crop_size=32",
                                                   "model.generator_args.ngf=4",
                                                   "model.generator_args.n_blocks=3"])
    path = tmp_path / "teacher.pth"
    save_generator(build_generator("resnet", ngf=4, n_blocks=3), path,
                   meta={"config": teacher_cfg.to_dict()})
    return path


def _count_reads(monkeypatch, path: Path) -> list[str]:
    """Every torch.load of `path` (what any checkpoint reader ends in) is recorded."""
    reads: list[str] = []
    real = torch.load

    def counting(f, *args, **kwargs):
        if Path(f).resolve() == path.resolve():
            reads.append(str(f))
        return real(f, *args, **kwargs)
    monkeypatch.setattr(torch, "load", counting)
    return reads


def test_compress_dry_run_reads_the_teacher_file_once(tmp_path, monkeypatch, capsys):
    teacher = _teacher(tmp_path)
    data = make_pairs(tmp_path / "data")
    reads = _count_reads(monkeypatch, teacher)
    assert main(["compress", "--teacher", str(teacher), "--data", str(data), "--budget", "1/2",
                 "--out", str(tmp_path / "out"), "--preset", "demo", "--dry-run", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "# checks passed" in out and "data.crop_size=32" in out  # inherited from the file
    assert len(reads) == 1, reads
    assert not (tmp_path / "out").exists()  # a dry run writes nothing
    # a rewritten teacher is a new file: read again, not served from memory
    save_generator(build_generator("resnet", ngf=4, n_blocks=3), teacher,
                   meta={"config": Config().to_dict()})
    compress_config(teacher=str(teacher), data=str(data), budget="1/2", overrides=SMALL)
    assert len(reads) == 2


def test_the_run_is_described_once_and_frozen(tmp_path):
    teacher = _teacher(tmp_path)
    data = make_pairs(tmp_path / "data")
    cfg = compress_config(teacher=str(teacher), data=str(data), budget="1/2",
                          preset_name="demo", overrides=SMALL)
    pipe = Pipeline(cfg, tmp_path / "out", log=lambda s: None)
    with pytest.raises(RuntimeError, match="check"):
        pipe.teacher  # nothing is described before the pre-flight check
    names = pipe.check()
    run = pipe.run_description
    assert isinstance(run, RunDescription) and list(run.held_out) == names and len(names) == 2
    assert run.input_size == (1, 3, 32, 32) and run.device == torch.device("cpu")
    assert run.teacher_config["data"]["crop_size"] == 32
    assert run.student is run.teacher  # same family: the teacher is the template
    assert run.budget is not None and run.budget.budget.kind == "macs"
    assert run.space.size > 1 and pipe.stages()[-2:] == ["extract", "report"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.held_out = ()  # type: ignore[misc]
    # the stages train the teacher's recipe with the run's epochs mapping
    supernet = pipe.stage_config("supernet")
    assert (supernet.train.epochs, supernet.train.epochs_decay) == tuple(
        cfg.compress.epochs["supernet"])
    pipe.prepare()  # writes compress.json and held_out.txt, keeps the description
    assert (tmp_path / "out" / "held_out.txt").read_text().split() == names
    assert pipe.held_out == names
    saved = json.loads((tmp_path / "out" / "compress.json").read_text())
    assert Config.from_dict(saved) == pipe.cfg


def test_a_folder_with_the_flat_epoch_keys_of_earlier_versions_resumes(tmp_path):
    """compress.json written before compress.epochs (8 flat keys) opens and matches."""
    teacher = _teacher(tmp_path)
    data = make_pairs(tmp_path / "data")
    cfg = compress_config(teacher=str(teacher), data=str(data), budget="1/2",
                          preset_name="demo", overrides=SMALL)
    old = cfg.to_dict()
    epochs = old["compress"].pop("epochs")
    for stage, (n, decay) in epochs.items():
        old["compress"][f"{stage}_epochs"], old["compress"][f"{stage}_epochs_decay"] = n, decay
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "compress.json").write_text(json.dumps(old))
    Pipeline(cfg, tmp_path / "out").check()  # same settings: no "other settings" refusal
    changed = apply_overrides(cfg, ["compress.supernet_epochs=1"])
    with pytest.raises(Exception, match="compress.epochs"):
        Pipeline(changed, tmp_path / "out").check()


def test_device_for_is_the_configured_device():
    assert device_for(Config()) == device_for(apply_overrides(Config(), ["train.device=auto"]))
    assert device_for(apply_overrides(Config(), ["train.device=cpu"])) == torch.device("cpu")
