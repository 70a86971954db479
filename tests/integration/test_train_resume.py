"""Exact resume, for real: a training process is SIGKILLed (mid-step, and mid-checkpoint-write),
resumed, and must end with bitwise the same weights, optimiser state and logged losses as an
uninterrupted run (CPU, one thread in every process)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from conftest import make_domains, make_pairs, tiny_config

from gancompress.models.checkpoint import safe_load
from gancompress.training.loop import train

REPO = Path(__file__).resolve().parents[1]

# Runs training in a child process that kills itself with SIGKILL at a chosen moment:
#   "optimize:N"   inside the N-th optimiser update (0-based), i.e. half-way through a step
#   "save:S"       while the checkpoint of step S is being written (temp file present, not renamed)
DRIVER = textwrap.dedent("""
    import json, os, signal, sys
    import torch
    torch.set_num_threads(1)
    import gancompress.training.loop as loop
    from gancompress.config import Config
    from gancompress.files import atomic_path

    cfg = Config.from_dict(json.loads(sys.argv[1]))  # train.threads=1 as well
    out, kill, resume = sys.argv[2], sys.argv[3], sys.argv[4] == "resume"
    what, at = kill.split(":")
    at = int(at)

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if what == "optimize":
        calls = [0]
        original = loop.Task.optimize
        def optimize(self, name, loss):
            if calls[0] == at:
                die()
            calls[0] += 1
            return original(self, name, loss)
        loop.Task.optimize = optimize
    else:
        original_save = loop.atomic_torch_save
        def save(obj, path):
            if obj["step"] == at:
                with atomic_path(path) as tmp:
                    torch.save(obj, tmp)
                    die()
            return original_save(obj, path)
        loop.atomic_torch_save = save
    loop.train(cfg, out, resume=resume)
    sys.exit(3)  # not reached when the kill fires
""")


def _killed_run(tmp_path: Path, cfg, run: Path, kill: str, resume: bool) -> None:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    proc = subprocess.run([sys.executable, str(script), json.dumps(cfg.to_dict()), str(run), kill,
                           "resume" if resume else "new"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def _uninterrupted(cfg, run: Path) -> None:
    train(cfg, run)  # tiny_config sets train.threads=1, like the driver


def _losses(run: Path) -> list[tuple[int, dict]]:
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [(r["step"], r["losses"]) for r in records if "losses" in r]


def _assert_same_state(a: dict, b: dict, path: str = "") -> None:
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for key in a:
            _assert_same_state(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_state(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), path  # bitwise
    else:
        assert a == b, path


def _compare(reference: Path, resumed: Path) -> None:
    ref, res = safe_load(reference / "checkpoint.pt"), safe_load(resumed / "checkpoint.pt")
    assert ref["step"] == res["step"]
    _assert_same_state(ref["task"], res["task"], "task")  # models, Adam moments, image pools
    _assert_same_state(ref["rng"], res["rng"], "rng")
    assert _losses(reference) == _losses(resumed)  # the redone steps were logged once, identically
    for name in (p.name for p in reference.glob("generator*.pth")):
        _assert_same_state(safe_load(reference / name)["state_dict"],
                           safe_load(resumed / name)["state_dict"], name)


def test_pix2pix_sigkill_and_resume_is_bitwise_exact(tmp_path):
    # 8 images, batch 2 -> 4 steps/epoch, 4 epochs = 16 steps; checkpoints at 4, 8, 12, 16;
    # dropout on, so the torch RNG state matters too.
    cfg = tiny_config(make_pairs(tmp_path / "data"), "pix2pix", "model.dropout=0.5",
                      "train.lr_update=step", "train.log_every=1")
    _uninterrupted(cfg, tmp_path / "reference")
    run = tmp_path / "run"
    # Killed between the D and G updates of step 6 (optimize call 13): checkpoint 4 survives.
    _killed_run(tmp_path, cfg, run, "optimize:13", resume=False)
    assert safe_load(run / "checkpoint.pt")["step"] == 4
    # Resumed, then killed while writing checkpoint 12: a temp file is left, checkpoint 8 intact.
    _killed_run(tmp_path, cfg, run, "save:12", resume=True)
    assert safe_load(run / "checkpoint.pt")["step"] == 8
    assert list(run.glob(".checkpoint.pt.*.tmp"))
    train(cfg, run, resume=True)
    _compare(tmp_path / "reference", run)


def test_cyclegan_sigkill_and_resume_is_bitwise_exact(tmp_path):
    # The image pool (random swaps, stored fakes) must survive the kill as well.
    cfg = tiny_config(make_domains(tmp_path / "data"), "cyclegan", "train.epochs=2",
                      "train.epochs_decay=1", "train.log_every=1")
    _uninterrupted(cfg, tmp_path / "reference")
    run = tmp_path / "run"
    _killed_run(tmp_path, cfg, run, "optimize:17", resume=False)  # mid step 9 (2 updates/step)
    assert safe_load(run / "checkpoint.pt")["step"] == 8
    train(cfg, run, resume=True)
    _compare(tmp_path / "reference", run)


