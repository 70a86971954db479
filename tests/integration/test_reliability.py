"""One test per reliability class (RELIABILITY-FINDINGS.md, issue 16), parametrized over the
commands or writers each class applies to:

1. output ownership: folder locks (a real second process), no-clobber publish, stale temps, fsync
2. input validation: every numeric config key and CLI option, budgets, duplicated overrides
3. image decoding: 16-bit PNGs scaled, float images refused, batch inputs checked up front
4. OS errors: full disk and read-only outputs end in one line, before the expensive work
5. stages and runs: markers last, absolute paths, resume refuses other data, torn JSONL lines
6-7. compress does not inherit the teacher run's stage settings; eval/generate use the size
   the model was trained at
8. evaluation weights checked against their published SHA-256
plus Ctrl-C (saves at the next step boundary, exit 130), non-finite losses, malformed
checkpoints, and error lines never glued to a progress bar.
"""
from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from helpers import make_domains, make_pairs, tiny_config

from gancompress import files
from gancompress.cli import build_parser, main, report_error
from gancompress.config import (
    Config,
    apply_overrides,
    field_info,
    keys,
    preset,
    unique_overrides,
    validate,
)
from gancompress.errors import UserError
from gancompress.imaging import check_images, open_image, save_image
from gancompress.models import build_generator
from gancompress.models.checkpoint import (
    atomic_torch_save,
    evaluation_size,
    load_generator,
    safe_load,
    save_generator,
)
from gancompress.compress.tasks import TASKS
from gancompress.compress.tasks import train
from gancompress.training.loop import Task



def tiny_generator(tmp_path: Path, crop: int | None = 32) -> Path:
    model = build_generator("resnet", ngf=4, n_blocks=3)
    meta = {"config": {"data": {"crop_size": crop}}} if crop else {}
    path = tmp_path / "g.pth"
    save_generator(model, path, meta=meta)
    return path


def cli(*argv: str) -> int:
    try:
        return main(list(argv))
    except SystemExit as exit_:  # argparse errors
        return int(exit_.code)


# ----------------------------------------------------------------------------------------------
# 1. Output ownership


# The other process takes the lock by the protocol itself (flock on FOLDER/.lock), without
# importing gancompress (and torch), so the test costs no second start-up.
HOLD = textwrap.dedent("""
    import fcntl, os, sys, time
    os.makedirs(sys.argv[1], exist_ok=True)
    fd = os.open(os.path.join(sys.argv[1], ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, f"pid {os.getpid()}, test holder".encode())
    print("held", flush=True)
    time.sleep(60)
""")


@pytest.fixture
def held_folder(tmp_path):
    """A folder locked by another (real) process for the duration of the test."""
    folder = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield folder
    finally:
        proc.kill()
        proc.wait()


def _race_args(tmp_path: Path, command: str, out: Path) -> list[str]:
    data = make_pairs(tmp_path / "data")
    if command == "train":
        return ["train", "--preset", "demo", "--data", str(data), "--out", str(out),
                "train.max_steps=1"]
    if command == "generate":
        return ["generate", str(tiny_generator(tmp_path)), "--input", str(data / "test"),
                "--out", str(out)]
    if command == "compress":
        return ["compress", "--teacher", str(tiny_generator(tmp_path)), "--data", str(data),
                "--budget", "1/2", "--out", str(out), "compress.space=4,2",
                "compress.held_out=2"]
    raise AssertionError(command)


@pytest.mark.parametrize("command", ["train", "generate", "compress"])
def test_second_process_on_one_output_folder_is_refused(held_folder, tmp_path, command, capsys):
    before = sorted(p.name for p in held_folder.iterdir())
    assert before == [".lock"]
    assert cli(*_race_args(tmp_path, command, held_folder)) == 2
    err = capsys.readouterr().err
    assert "in use by another gancompress process" in err and "test holder" in err
    assert sorted(p.name for p in held_folder.iterdir()) == before  # nothing written


def test_lock_is_released_and_removed(tmp_path):
    with files.output_lock(tmp_path / "run"):
        with files.output_lock(tmp_path / "run"):  # re-entrant within one process
            assert (tmp_path / "run" / files.LOCK_NAME).exists()
    assert not (tmp_path / "run" / files.LOCK_NAME).exists()
    with pytest.raises(RuntimeError):
        with files.output_lock(tmp_path / "new"):
            raise RuntimeError("fails before writing")
    assert not (tmp_path / "new").exists()  # a folder it created and left empty is removed


WRITERS = {
    "text": lambda p, ow: files.atomic_write_text(p, "x", overwrite=ow),
    "image": lambda p, ow: save_image(torch.zeros(3, 8, 8), p, overwrite=ow),
    "torch": lambda p, ow: atomic_torch_save({"a": torch.ones(2)}, p, overwrite=ow),
    "generator": lambda p, ow: save_generator(build_generator("resnet", ngf=4, n_blocks=3), p,
                                              overwrite=ow),
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_no_clobber_publish_never_replaces_a_file_that_appeared_meanwhile(tmp_path, writer,
                                                                          monkeypatch):
    target = tmp_path / "out.png"
    real_publish = files.publish

    def racing_publish(tmp, path, overwrite=True):  # another process publishes first
        path.write_text("theirs")
        return real_publish(tmp, path, overwrite)

    monkeypatch.setattr(files, "publish", racing_publish)
    with pytest.raises(UserError, match="exists"):
        WRITERS[writer](target, False)
    assert target.read_text() == "theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temp file left


def test_stale_temps_of_killed_writers_are_removed_by_the_next_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = run / f".checkpoint.pt.{dead}.abc123.tmp"
    stale.write_bytes(b"x" * 100)
    stale_dir = run / f".data.{dead}.xyz.tmpdir"
    stale_dir.mkdir()
    live = run / f".checkpoint.pt.{os.getpid()}.abc123.tmp"  # this process: still writing
    live.write_bytes(b"x")
    (run / "keep.txt").write_text("user file")
    with files.output_lock(run):
        pass
    assert sorted(p.name for p in run.iterdir()) == sorted([live.name, "keep.txt"])


def test_atomic_write_fsyncs_before_publishing(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b)))
    atomic_torch_save({"x": torch.ones(3)}, tmp_path / "c.pt")
    assert events.index("fsync") < events.index("replace")


# ----------------------------------------------------------------------------------------------
# 2. Input validation

NUMERIC_KEYS = [k for k in keys() if isinstance(Config().get(k), (int, float))
                and not isinstance(Config().get(k), bool)]


@pytest.mark.parametrize("key", NUMERIC_KEYS)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e20"])
def test_every_numeric_config_key_refuses_non_finite_and_absurd_values(key, value):
    cfg = Config()
    try:
        cfg = apply_overrides(cfg, [f"{key}={value}"])
    except UserError as err:  # refused at conversion (an integer key given inf / nan)
        assert f"config key {key}: expected an integer" in str(err)
        return
    with pytest.raises(UserError, match=f"{key} = .* (out of range: allowed|is not one of)"):
        validate(cfg)


def test_every_numeric_key_declares_a_range():
    for key in NUMERIC_KEYS:
        meta = field_info(key).metadata
        assert meta.get("minimum") is not None or meta.get("choices"), key


def _numeric_options():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, type(parser._subparsers._group_actions[0])))
    for name, command in sub.choices.items():
        for action in command._actions:
            if action.type in (int, float) or getattr(action.type, "bounded", False):
                yield name, action


def test_no_cli_option_takes_an_unbounded_number():
    unbounded = [f"{name} {action.option_strings}" for name, action in _numeric_options()
                 if action.type in (int, float)]
    assert not unbounded, unbounded
    assert len(list(_numeric_options())) >= 20


@pytest.mark.parametrize("argv", [
    ["eval", "--model", "m.pth", "--kid-subsets", "0"],
    ["eval", "--model", "m.pth", "--latency-runs", "0"],
    ["eval", "--model", "m.pth", "--limit", "-3"],
    ["profile", "--size", "0", "0"],
    ["profile", "--size", "3", "5"],
    ["profile", "--latency", "--runs", "0"],
    ["export", "m.pth", "--out", "x.onnx", "--calib-count", "0"],
    ["export", "m.pth", "--out", "x.onnx", "--tolerance", "nan"],
    ["export", "m.pth", "--out", "x.onnx", "--opset", "0"],
    ["generate", "m.pth", "--input", "i", "--out", "o", "--batch-size", "0"],
    ["stats", "--data", "d", "--out", "s.npz", "--batch-size", "-1"],
    ["demo-data", "--out", "d", "--size", "1e9"],
])
def test_bad_numeric_options_exit_2_with_the_allowed_range(argv, capsys):
    assert cli(*argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("out of range" in err or "not an integer" in err
                                       or "multiple of 4" in err)


@pytest.mark.parametrize("text", ["1e999/1e999", "1e999", "inf%", "nan", "1e999ms", "0/0"])
def test_non_finite_budgets_are_refused(text):
    from gancompress.compress.budget import parse_budget
    with pytest.raises(UserError):
        parse_budget(text)


def test_duplicated_override_keys_are_refused(tmp_path, capsys):
    with pytest.raises(UserError, match="given twice"):
        unique_overrides(["train.lr=1e-4", "train.lr=2e-4"])
    assert cli("train", "--preset", "demo", "--data", str(tmp_path), "--dry-run",
               "train.lr=1e-4", "train.lr=2e-4") == 2
    assert "given twice" in capsys.readouterr().err


def test_empty_budget_on_the_command_line_is_refused(tmp_path, capsys):
    assert cli("compress", "--teacher", str(tiny_generator(tmp_path)), "--budget", "",
               "--out", str(tmp_path / "c")) == 2
    assert "--budget is empty" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# 3. Image decoding


def _png16(path: Path, value: int = 30000) -> Path:
    array = np.full((16, 32), value, dtype=np.uint16)
    array[:, :16] = value // 2
    Image.fromarray(array).save(path)
    assert Image.open(path).mode.startswith("I")
    return path


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    img = open_image(_png16(tmp_path / "d.png"), channels=3)
    pixels = np.asarray(img)
    assert pixels[0, 0].tolist() == [round(15000 / 257)] * 3
    assert pixels[0, -1].tolist() == [round(30000 / 257)] * 3
    assert np.asarray(open_image(tmp_path / "d.png", channels=1)).max() == round(30000 / 257)


def test_float_images_are_refused(tmp_path):
    Image.fromarray(np.full((8, 8), 0.5, dtype=np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(UserError, match="floating-point"):
        open_image(tmp_path / "f.tif")


@pytest.mark.parametrize("reader", ["train", "generate"])
def test_16bit_inputs_reach_the_commands_scaled(tmp_path, reader):
    from gancompress.data import open_dataset
    root = tmp_path / "single"
    root.mkdir()
    _png16(root / "a.png")
    if reader == "train":
        item = open_dataset(root, mode="single", preprocess="none", augment=False)[0]
        assert abs(float(item["source"][:, 0, -1].mean()) - (117 / 127.5 - 1)) < 0.01
    else:
        assert cli("generate", str(tiny_generator(tmp_path)), "--input", str(root),
                   "--out", str(tmp_path / "o")) == 0
        assert (tmp_path / "o" / "a.png").is_file()


def test_batch_inputs_are_all_checked_before_anything_is_written(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(folder / f"good{i}.png")
    (folder / "text.png").write_text("not an image")
    good = (folder / "good0.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(UserError, match="2 of 5 input image"):
        check_images(sorted(folder.iterdir()))
    out = tmp_path / "out"
    assert cli("generate", str(tiny_generator(tmp_path)), "--input", str(folder),
               "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert "text.png" in err and "truncated.png" in err
    assert not out.exists()


def test_training_checks_every_dataset_file_up_front(tmp_path):
    root = make_pairs(tmp_path / "data")
    (root / "train" / "7.png").write_bytes(b"")  # deep in the list: found before step 1
    (root / "train" / "odd.png").write_bytes(b"junk")
    with pytest.raises(UserError, match="2 of 9 image") as info:
        train(tiny_config(root), tmp_path / "run")
    assert "7.png" in str(info.value) and "odd.png" in str(info.value)
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------------------------
# 4. OS errors


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_full_disk_is_one_line_and_leaves_nothing(tmp_path, writer, monkeypatch):
    if writer in ("torch", "generator"):
        # torch reports ENOSPC from its zip writer as a RuntimeError
        def full(*a, **k):
            raise RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos 1 vs 0")
        monkeypatch.setattr(torch, "save", full)
    elif writer == "image":
        monkeypatch.setattr(Image.Image, "save", _enospc)
    else:
        monkeypatch.setattr(Path, "write_text", _enospc)
    with pytest.raises(UserError, match="No space left on device; free some space"):
        WRITERS[writer](tmp_path / "f.out", True)
    assert list(tmp_path.iterdir()) == []


def test_full_disk_during_a_command_exits_2(tmp_path, monkeypatch, capsys):
    model = str(tiny_generator(tmp_path))
    monkeypatch.setattr(torch, "save", _enospc)
    assert cli("convert", model, "--out", str(tmp_path / "c.pth")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0]
    assert not (tmp_path / "c.pth").exists()


@pytest.mark.parametrize("command", ["train", "generate", "export", "convert", "stats", "eval",
                                     "extract", "demo-data"])
def test_read_only_output_fails_before_the_work(tmp_path, command, monkeypatch, capsys):
    data = make_pairs(tmp_path / "data")
    model = str(tiny_generator(tmp_path))
    ro = tmp_path / "ro"
    argv = {"train": ["train", "--preset", "demo", "--data", str(data), "--out", str(ro / "r")],
            "generate": ["generate", model, "--input", str(data / "test"), "--out", str(ro)],
            "export": ["export", model, "--out", str(ro / "m.onnx")],
            "convert": ["convert", model, "--out", str(ro / "m.pth")],
            "stats": ["stats", "--data", str(data / "test"), "--out", str(ro / "s.npz")],
            "eval": ["eval", "--model", model, "--metrics", "macs", "--out", str(ro / "e.json")],
            "extract": ["extract", model, "--config", "4_4_4_4_4_4_4_4", "--out",
                        str(ro / "x.pth")],
            "demo-data": ["demo-data", "--out", str(ro / "d")]}[command]

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(files.tempfile, "mkstemp", read_only)
    monkeypatch.setattr(files.tempfile, "mkdtemp", read_only)
    assert cli(*argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Read-only file system; choose a folder you can write to" in err[0]


def test_unreadable_folder_is_one_line(tmp_path, monkeypatch):
    from gancompress.imaging import list_images
    (tmp_path / "x").mkdir()
    real = Path.iterdir

    def denied(self):
        if self.name == "x":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", denied)
    with pytest.raises(UserError, match="cannot read .*x: Permission denied"):
        list_images(tmp_path / "x")


@pytest.mark.parametrize("command", ["generate", "profile", "eval"])
def test_missing_cuda_device_is_one_line(tmp_path, command, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without CUDA
    model = str(tiny_generator(tmp_path))
    argv = {"generate": ["generate", model, "--input", str(tmp_path), "--out", str(tmp_path / "o"),
                         "--device", "cuda"],
            "profile": ["profile", model, "--device", "cuda"],
            "eval": ["eval", "--model", model, "--device", "cuda"]}[command]
    assert cli(*argv) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_error_line_is_never_glued_to_a_progress_bar(capsys):
    from tqdm import tqdm
    bar = tqdm(total=10, file=sys.stderr, ncols=60)
    bar.update(3)
    report_error("eval", "something is wrong")
    err = capsys.readouterr().err
    assert "\ngancompress eval: error: something is wrong" in err or \
        err.startswith("gancompress eval: error")
    line = [ln for ln in err.replace("\r", "\n").splitlines() if "error:" in ln][0]
    assert line.startswith("gancompress eval: error")


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
