"""Helpers shared by test modules (tests never import each other): repository paths, tiny
deterministic configs and datasets, random evaluation-network weights in the published layouts,
the SIGKILL / resume driver. `pythonpath = ["tests"]` (pyproject.toml) makes this importable from
every folder under tests/ as `from helpers import ...`; fixtures live in conftest.py."""
from __future__ import annotations

import atexit
import functools
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gancompress.compress.space import SearchSpace
from gancompress.config import Config, apply_overrides, preset
from gancompress.models.checkpoint import safe_load
from gancompress.models.resnet import decode_config
from gancompress.weights import DRN_D_105_CITYSCAPES, INCEPTION_FID

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"  # inside the repository: a clone needs nothing beside it
OFFICIAL = FIXTURES / "official"


# -- tiny configs and datasets ------------------------------------------------------------------

def tiny_config(root: Path, task: str = "pix2pix", *extra: str) -> Config:
    """ngf 4, 3 blocks, 32 px crops; 8 train images at batch 2 -> 4 steps per epoch."""
    # (train() restores the caller's torch thread count when it returns)
    base = preset("cyclegan-horse2zebra" if task == "cyclegan" else "demo")
    return apply_overrides(base, [
        f"data.root={root}", "data.load_size=36", "data.crop_size=32", "data.num_workers=0",
        "model.ngf=4", "model.n_blocks=3", "model.ndf=8", "model.disc_layers=2",
        "train.batch_size=2", "train.epochs=2", "train.epochs_decay=2", "train.log_every=2",
        "train.eval_every=8", "train.checkpoint_every=4", "train.n_samples=2",
        "train.progress=false", "train.lr_update=epoch", "loss.pool_size=3",
        "train.threads=1", *extra])  # one thread: tiny tensors, and robust on a busy CPU


def make_pairs(root: Path, n: int = 8) -> Path:
    """Aligned A | B images: B is a smooth function of A, learnable in a few steps."""
    for phase, count in (("train", n), ("test", 2)):
        (root / phase).mkdir(parents=True)
        for i in range(count):
            rng = np.random.default_rng(i + 100 * len(phase))
            a = np.kron(rng.integers(0, 256, (5, 5, 3)), np.ones((8, 8, 1))).astype(np.uint8)
            Image.fromarray(np.concatenate([a, a[:, :, ::-1]], 1)).save(root / phase / f"{i}.png")
    return root


def make_inverted_pairs(root: Path, n: int = 12) -> Path:
    """n aligned 32 px pairs (+ 2 test pairs) whose target is the inverted source."""
    rng = np.random.default_rng(0)
    for split, count in (("train", n), ("test", 2)):
        (root / split).mkdir(parents=True)
        for i in range(count):
            a = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(np.concatenate([a, 255 - a], 1)).save(root / split / f"{i}.png")
    return root


def write_cityscapes_with_val(root: Path, n: int = 5) -> Path:
    """write_cityscapes(root, n) plus a val split (the layout's test phase) of 2 of its maps."""
    write_cityscapes(root, n=n)
    for top in ("gtFine", "leftImg8bit"):
        (root / top / "val" / "aachen").mkdir(parents=True)
        for f in sorted((root / top / "train" / "aachen").iterdir())[:2 * (1 + (top == "gtFine"))]:
            shutil.copy(f, root / top / "val" / "aachen" / f.name)
    return root


def make_domains(root: Path) -> Path:
    for name, n in (("trainA", 8), ("trainB", 6), ("testA", 2), ("testB", 2)):
        (root / name).mkdir(parents=True)
        for i in range(n):
            rng = np.random.default_rng(i + 7 * len(name) + ord(name[-1]))
            pixels = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def write_cityscapes(root: Path, n: int = 2, size=(64, 128)) -> Path:
    """A tiny Cityscapes layout: label ids, 16-bit instance ids, photos."""
    rng = np.random.default_rng(0)
    for i in range(n):
        city = root / "gtFine" / "train" / "aachen"
        city.mkdir(parents=True, exist_ok=True)
        img_dir = root / "leftImg8bit" / "train" / "aachen"
        img_dir.mkdir(parents=True, exist_ok=True)
        stem = f"aachen_{i:06d}_000019"
        label = rng.integers(0, 34, size=(size[0] // 8, size[1] // 8)).repeat(8, 0).repeat(8, 1)
        Image.fromarray(label.astype(np.uint8)).save(city / f"{stem}_gtFine_labelIds.png")
        inst = (label * 1000 + (label >= 24)).astype(np.uint16)  # 16-bit PNG, as Cityscapes
        Image.fromarray(inst).save(city / f"{stem}_gtFine_instanceIds.png")
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(
            img_dir / f"{stem}_leftImg8bit.png")
    return root


def tiny_gaugan(root, run_steps=4):
    return apply_overrides(preset("gaugan-demo"), [
        f"data.root={root}", "data.label_layout=cityscapes", "data.label_nc=0", "data.crop_size=64",
        "model.generator_args.ngf=2", "model.disc_args.ndf=4", "model.disc_args.n_layers=2",
        "train.batch_size=2",
        f"train.max_steps={run_steps}", "train.checkpoint_every=2", "train.eval_every=100",
        "train.log_every=1", "train.threads=1", "train.progress=false", "train.n_samples=2"])


def tiny_munit(root, *extra):
    """ngf 4, mlp 8, 2 blocks, 32 px; 8 train images at batch 2 -> 4 steps per epoch."""
    return apply_overrides(preset("munit-demo"), [
        f"data.root={root}", "data.load_size=36", "data.crop_size=32", "data.num_workers=0",
        "model.generator_args.ngf=4", "model.disc_args.ndf=4", "model.disc_args.n_layers=2",
        "model.generator_args.mlp_dim=8", "model.generator_args.n_res=2",
        "model.disc_args.num_scales=2", "munit.lr_step=3", "train.batch_size=2", "train.epochs=3",
        "train.log_every=1", "train.eval_every=8", "train.checkpoint_every=4",
        "train.n_samples=2", "train.progress=false", "train.threads=1", *extra])


# -- compression ------------------------------------------------------------------------------

# a search space of an ngf-8 ResNet generator: 256 configs
SPACE = SearchSpace("tiny", ((8, 4),) * 8, decode_config)

TINY = ["compress.space=8,4", "compress.held_out=4", "compress.supernet_epochs=1",
        "compress.supernet_epochs_decay=0", "compress.finetune_epochs=1",
        "compress.finetune_epochs_decay=0", "compress.mobile_epochs=1",
        "compress.mobile_epochs_decay=0", "compress.distill_epochs=1",
        "compress.distill_epochs_decay=0", "compress.generations=2", "compress.population=6",
        "compress.parents=2", "compress.mutants=2", "compress.crossovers=2",
        "train.progress=false", "train.batch_size=4", "train.max_steps=2", "model.ndf=8",
        "model.disc_layers=2", "data.load_size=36", "data.crop_size=32", "data.num_workers=0",
        "train.n_samples=2", "train.device=cpu"]


def compress_test_config(ws: Path, *extra: str, budget: str = "1/3") -> Config:
    """The tiny compression settings (TINY) for the `workspace` fixture's teacher and data."""
    from gancompress.compress.pipeline import compress_config
    return compress_config(teacher=str(ws / "teacher.pth"), data=str(ws / "data"), budget=budget,
                           overrides=TINY + list(extra))


# -- random evaluation-network weights (built once per test process) ---------------------------

def _randomise(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """He-normal convs, unit BN (so activations keep their scale through 100 layers)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and m.weight.requires_grad:
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    return model.eval()


@functools.lru_cache(maxsize=None)
def _weights_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="gancompress-test-weights-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


@functools.lru_cache(maxsize=None)
def random_inception_file() -> Path:
    """pt_inception-2015-12-05-6726825d.pth with random weights in the published layout."""
    from gancompress.metrics.inception import FIDInceptionV3
    path = _weights_folder() / INCEPTION_FID.name
    torch.save(_randomise(FIDInceptionV3(), 1).state_dict(), path)
    return path


@functools.lru_cache(maxsize=None)
def random_drn_file() -> Path:
    """drn-d-105_ms_cityscapes.pth with random weights, keys prefixed `module.` as published."""
    from gancompress.metrics.drn import DRNSegD105
    path = _weights_folder() / DRN_D_105_CITYSCAPES.name
    state = _randomise(DRNSegD105(), 2).state_dict()
    torch.save({f"module.{k}": v for k, v in state.items()}, path)
    return path


# -- exact resume after SIGKILL ---------------------------------------------------------------

# Runs training in a child process that kills itself with SIGKILL at a chosen moment:
#   "optimize:N"   inside the N-th optimiser update (0-based), i.e. half-way through a step
#   "save:S"       while the checkpoint of step S is being written (temp file present, not renamed)
DRIVER = textwrap.dedent("""
    import json, os, signal, sys
    import torch
    torch.set_num_threads(1)
    import gancompress.training.loop as loop
    from gancompress.compress.tasks import train
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
    train(cfg, out, resume=resume)
    sys.exit(3)  # not reached when the kill fires
""")


def killed_run(tmp_path: Path, cfg, run: Path, kill: str, resume: bool) -> None:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    proc = subprocess.run([sys.executable, str(script), json.dumps(cfg.to_dict()), str(run), kill,
                           "resume" if resume else "new"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


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


def compare_runs(reference: Path, resumed: Path) -> None:
    ref, res = safe_load(reference / "checkpoint.pt"), safe_load(resumed / "checkpoint.pt")
    assert ref["step"] == res["step"]
    _assert_same_state(ref["task"], res["task"], "task")  # models, Adam moments, image pools
    _assert_same_state(ref["rng"], res["rng"], "rng")
    assert _losses(reference) == _losses(resumed)  # the redone steps were logged once, identically
    for name in (p.name for p in reference.glob("generator*.pth")):
        _assert_same_state(safe_load(reference / name)["state_dict"],
                           safe_load(resumed / name)["state_dict"], name)


@torch.no_grad()
def trained_batchnorm(model, weight: bool = False, bias: bool = False):
    """Give every BatchNorm with running statistics non-trivial ones (as after training), and
    optionally a non-trivial affine weight / bias; returns the model."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            if weight and m.weight is not None:
                m.weight.uniform_(0.5, 1.5)
            if bias and m.bias is not None:
                m.bias.uniform_(-0.5, 0.5)
    return model


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height, with a few bytes of pixel data (a
    decompression bomb in a hundred bytes)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def tiny_generator(tmp_path: Path, crop: int | None = 32) -> Path:
    """A 4-channel 3-block ResNet checkpoint, trained size `crop` recorded (None: not recorded)."""
    from gancompress.models import build_generator
    from gancompress.models.checkpoint import save_generator

    model = build_generator("resnet", ngf=4, n_blocks=3)
    meta = {"config": {"data": {"crop_size": crop}}} if crop else {}
    path = tmp_path / "g.pth"
    save_generator(model, path, meta=meta)
    return path


def cli(*argv: str) -> int:
    """`gancompress ARGV...` in-process: its exit status (argparse errors included)."""
    from gancompress.cli import main
    try:
        return main(list(argv))
    except SystemExit as exit_:
        return int(exit_.code)


def quiet(_: str) -> None:
    """A log callback that prints nothing (demo and server tests)."""
