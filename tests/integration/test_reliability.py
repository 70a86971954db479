"""One test per reliability class (RELIABILITY-FINDINGS.md, issue 16), parametrized over the
commands or writers each class applies to (classes 5-8 and the rest are in
test_reliability_runs.py):

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
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from helpers import cli, make_pairs, tiny_config, tiny_generator

from gancompress import files
from gancompress.cli import build_parser, report_error
from gancompress.config import (
    Config,
    apply_overrides,
    field_info,
    keys,
    unique_overrides,
    validate,
)
from gancompress.errors import UserError
from gancompress.imaging import check_images, open_image, save_image
from gancompress.models import build_generator
from gancompress.models.checkpoint import (
    atomic_torch_save,
    save_generator,
)
from gancompress.compress.tasks import train




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
