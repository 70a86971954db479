"""Bad-input sweep over every command (a rerun of the RELIABILITY-FINDINGS.md audit's kind).

    PYTHONPATH=src python bench/audit_sweep.py [--jobs 2] [--only train,eval,race] [--keep DIR]

Builds tiny fixtures (8 aligned 32 px pairs, a 4-wide generator with its training size in the
metadata, a discriminator state dict, a zero-byte and a pickled-list "checkpoint", a truncated
.npz, a 16-bit PNG, random Inception-layout weights), then runs each case as a real
`python -m gancompress ...` subprocess and classifies the outcome:

    handled     exit 2, one `gancompress CMD: error: ...` (or argparse) line, no traceback,
                and the output named by the case not created / left unchanged
    traceback   any other non-zero exit, or a Python traceback on stderr
    silent      exit 0 although the input is bad (a silent wrong result)
    partial     exit 2 but the case's output was created or changed (a half-written result)
    ok          exit 0 for a case that is expected to work (e.g. a 16-bit PNG input)
    broken      a good input that failed

    misnamed    exit 2 with one line, but the line does not say what the case requires (what
                a file is, the key to use instead) or says what it must not (advice that
                cannot help)

Then three races: two processes started together on one output folder / file (generate, export,
train); promised is one success and one clean refusal.

Issue 26's classes (the second audit's defects) come after the first audit's bad inputs: a
moved or copied unfinished run folder (and a moved data folder / teacher) resumed; keys the
program records given as overrides; --arch constructor arguments out of range; resume with
train.max_steps below the steps done; decompression bombs through every command that reads
images; files named for what they are not; torchrun (two processes with the environment torchrun
sets: a one-process command is refused once, an error is printed by rank 0 only); the demo
server (a bomb is 413, a text upload is named as such).

Prints one line per case, handled/total by class, and the totals: inputs tried / handled as
promised / defects left. Timings are not measured (each case pays the ~2 s start-up of torch).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from gancompress.config import preset
from gancompress.models import build_generator
from gancompress.models.checkpoint import save_generator

from audit_second import (  # noqa: E402 - issue 26's cases, beside this file
    demo_cases,
    issue26_cases,
    issue26_fixtures,
    torchrun_cases,
    torchrun_pair,
)


FIRST = "first audit: bad inputs"


@dataclass
class Case:
    name: str
    argv: list[str]
    good: bool = False  # True: the input is fine and the command must succeed
    out: str | None = None  # a path that must not be created / changed by a refused run
    env: dict[str, str] = field(default_factory=dict)
    klass: str = FIRST  # the class of defect the case probes (handled/total is printed per class)
    says: str | None = None  # regex the error line must match (else "misnamed")
    not_says: str | None = None  # regex stderr must not match (else "misnamed")
    accept: bool = False  # exit 0 is also as promised (a command that takes the file)
    setup: Callable[[], None] | None = None  # run first (in the worker): builds the case's state


def fixtures(root: Path) -> dict[str, Path]:
    f: dict[str, Path] = {}
    data = root / "data"
    for phase, n in (("train", 8), ("test", 2)):
        (data / phase).mkdir(parents=True)
        for i in range(n):
            a = np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(np.concatenate([a, 255 - a], 1)).save(data / phase / f"{i}.png")
    f["data"] = data
    bad = root / "bad_data"
    shutil.copytree(data, bad)
    (bad / "train" / "7.png").write_text("not an image")
    f["bad_data"] = bad
    unaligned = root / "unaligned"
    for name in ("trainA", "trainB", "testA", "testB"):
        (unaligned / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(unaligned / name / f"{i}.png")
    f["unaligned"] = unaligned
    images = root / "images"
    images.mkdir()
    for i in range(3):
        Image.fromarray(np.full((32, 32, 3), 60 * i, np.uint8)).save(images / f"{i}.png")
    f["images"] = images
    mixed = root / "mixed"
    shutil.copytree(images, mixed)
    (mixed / "text.png").write_text("text")
    good = (images / "0.png").read_bytes()
    (mixed / "cut.png").write_bytes(good[: len(good) // 2])
    f["mixed"] = mixed
    deep = root / "deep16"
    deep.mkdir()
    Image.fromarray(np.full((32, 32), 30000, np.uint16)).save(deep / "d.png")
    f["deep16"] = deep
    cfg = preset("demo").to_dict()
    cfg["data"]["crop_size"] = 32
    model = build_generator("resnet", ngf=4, n_blocks=3)
    f["model"] = root / "g.pth"
    save_generator(model, f["model"], meta={"config": cfg})
    f["empty"] = root / "empty.pth"
    f["empty"].write_bytes(b"")
    f["listpickle"] = root / "list.pth"
    torch.save([1, 2, 3], f["listpickle"])
    f["disc"] = root / "disc.pth"
    torch.save({"model.0.weight": torch.zeros(8, 6, 4, 4), "model.0.bias": torch.zeros(8)},
               f["disc"])
    f["bare"] = root / "bare.pth"
    torch.save(model.state_dict(), f["bare"])
    f["noarch"] = root / "noarch.pth"
    torch.save({"format": "gancompress-generator", "version": 1, "state_dict": {}}, f["noarch"])
    np.savez(root / "s.npz", mu=np.zeros(4), sigma=np.eye(4))
    raw = (root / "s.npz").read_bytes()
    f["cut_npz"] = root / "cut.npz"
    f["cut_npz"].write_bytes(raw[: len(raw) // 2])
    f["file"] = root / "a_file.txt"
    f["file"].write_text("x")
    f["existing"] = root / "existing.onnx"
    f["existing"].write_bytes(b"keep me")
    from gancompress.metrics.inception import FIDInceptionV3  # the published layout, random
    with torch.no_grad():
        net = FIDInceptionV3()
    f["inception"] = root / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(net.state_dict(), f["inception"])
    issue26_fixtures(root, f, model)
    return f


def cases(f: dict[str, Path], tmp: Path) -> list[Case]:
    m, d = str(f["model"]), str(f["data"])
    o = lambda name: str(tmp / "outs" / name)
    ro = str(f["file"] / "sub")  # a folder under a file: cannot be created (ENOTDIR)
    tiny = ["data.load_size=36", "data.crop_size=32", "model.ngf=4", "model.n_blocks=3",
            "model.ndf=8", "train.max_steps=2", "train.progress=false", "train.n_samples=1"]
    c = [
        # train
        Case("train: data folder missing", ["train", "--preset", "demo", "--data", "nope", "--out", o("t1")], out=o("t1")),
        Case("train: unreadable file deep in the data", ["train", "--preset", "demo", "--data", str(f["bad_data"]), "--out", o("t2"), *tiny], out=o("t2")),
        Case("train: loss weight inf", ["train", "--preset", "demo", "--data", d, "--out", o("t3"), "loss.lambda_recon=inf"], out=o("t3")),
        Case("train: lr nan", ["train", "--preset", "demo", "--data", d, "--out", o("t4"), "train.lr=nan"], out=o("t4")),
        Case("train: batch 1e20", ["train", "--preset", "demo", "--data", d, "--out", o("t5"), "train.batch_size=1e20"], out=o("t5")),
        Case("train: duplicated key", ["train", "--preset", "demo", "--data", d, "--out", o("t6"), "train.lr=1e-4", "train.lr=2e-4"], out=o("t6")),
        Case("train: --out is a file", ["train", "--preset", "demo", "--data", d, "--out", str(f["file"])]),
        Case("train: --out cannot be created", ["train", "--preset", "demo", "--data", d, "--out", ro]),
        Case("train: resume of nothing", ["train", "--out", o("t9"), "--resume"], out=o("t9")),
        Case("train: pix2pix on unpaired data", ["train", "--preset", "demo", "--data", str(f["unaligned"]), "--out", o("t10"), "data.mode=unaligned", *tiny], out=o("t10")),
        Case("train: cyclegan on unpaired data works", ["train", "--preset", "cyclegan-horse2zebra", "--data", str(f["unaligned"]), "--out", o("t11"), *tiny, "loss.pool_size=2"], good=True),
        # generate
        Case("generate: missing model", ["generate", "nope.pth", "--input", str(f["images"]), "--out", o("g1")], out=o("g1")),
        Case("generate: zero-byte model", ["generate", str(f["empty"]), "--input", str(f["images"]), "--out", o("g2")], out=o("g2")),
        Case("generate: discriminator as model", ["generate", str(f["disc"]), "--input", str(f["images"]), "--out", o("g3")], out=o("g3")),
        Case("generate: bad inputs among good", ["generate", m, "--input", str(f["mixed"]), "--out", o("g4")], out=o("g4")),
        Case("generate: --size 0 0", ["generate", m, "--input", str(f["images"]), "--out", o("g5"), "--size", "0", "0"], out=o("g5")),
        Case("generate: --batch-size 0", ["generate", m, "--input", str(f["images"]), "--out", o("g6"), "--batch-size", "0"], out=o("g6")),
        Case("generate: --device cuda (CPU torch)", ["generate", m, "--input", str(f["images"]), "--out", o("g7"), "--device", "cuda"], out=o("g7")),
        Case("generate: --out is a file", ["generate", m, "--input", str(f["images"]), "--out", str(f["file"])]),
        Case("generate: 16-bit input", ["generate", m, "--input", str(f["deep16"]), "--out", o("g9")], good=True),
        Case("generate: --out cannot be created", ["generate", m, "--input", str(f["images"]), "--out", ro]),
        # export
        Case("export: --calib-count 0", ["export", m, "--out", o("e1.onnx"), "--int8", "--calib", str(f["images"]), "--calib-count", "0"], out=o("e1.onnx")),
        Case("export: --opset 0", ["export", m, "--out", o("e2.onnx"), "--opset", "0"], out=o("e2.onnx")),
        Case("export: --tolerance nan", ["export", m, "--out", o("e3.onnx"), "--tolerance", "nan"], out=o("e3.onnx")),
        Case("export: --size 3 5", ["export", m, "--out", o("e4.onnx"), "--size", "3", "5"], out=o("e4.onnx")),
        Case("export: existing --out", ["export", m, "--out", str(f["existing"])], out=str(f["existing"])),
        Case("export: --out cannot be created", ["export", m, "--out", ro + "/m.onnx"]),
        Case("export: --int8 without --calib", ["export", m, "--out", o("e7.onnx"), "--int8"], out=o("e7.onnx")),
        # eval
        Case("eval: --kid-subsets 0", ["eval", "--model", m, "--data", d, "--metrics", "kid", "--kid-subsets", "0"]),
        Case("eval: --latency-runs 0", ["eval", "--model", m, "--metrics", "latency", "--latency-runs", "0"]),
        Case("eval: --limit 0", ["eval", "--model", m, "--data", d, "--metrics", "psnr", "--limit", "0"]),
        Case("eval: --limit -3", ["eval", "--model", m, "--data", d, "--metrics", "psnr", "--limit", "-3"]),
        Case("eval: --device cuda", ["eval", "--model", m, "--device", "cuda"]),
        Case("eval: zero-byte model", ["eval", "--model", str(f["empty"]), "--metrics", "macs"]),
        Case("eval: unknown metric", ["eval", "--model", m, "--metrics", "ssim"]),
        Case("eval: truncated statistics file", ["eval", "--model", m, "--data", d, "--metrics", "fid", "--ref-stats", str(f["cut_npz"]), "--inception-weights", str(f["inception"])], env={"GANCOMPRESS_ALLOW_UNVERIFIED_WEIGHTS": "1"}),
        Case("eval: unverified Inception weights", ["eval", "--model", m, "--data", d, "--metrics", "fid", "--inception-weights", str(f["inception"])]),
        Case("eval: --out cannot be created", ["eval", "--model", m, "--metrics", "macs", "--out", ro + "/e.json"]),
        Case("eval: psnr at the trained size", ["eval", "--model", m, "--data", d, "--metrics", "psnr,macs"], good=True),
        # stats
        Case("stats: --out not .npz", ["stats", "--data", str(f["images"]), "--out", o("s1.txt")], out=o("s1.txt")),
        Case("stats: --batch-size 0", ["stats", "--data", str(f["images"]), "--out", o("s2.npz"), "--batch-size", "0"], out=o("s2.npz")),
        Case("stats: data missing", ["stats", "--data", "nope", "--out", o("s3.npz")], out=o("s3.npz")),
        Case("stats: unverified weights", ["stats", "--data", str(f["images"]), "--out", o("s4.npz"), "--inception-weights", str(f["inception"])], out=o("s4.npz")),
        Case("stats: --load-size 6", ["stats", "--data", str(f["images"]), "--out", o("s5.npz"), "--load-size", "6"], out=o("s5.npz")),
        # profile
        Case("profile: --size 0 0", ["profile", m, "--size", "0", "0"]),
        Case("profile: --size 3 5", ["profile", m, "--size", "3", "5"]),
        Case("profile: --runs 0", ["profile", m, "--latency", "--runs", "0"]),
        Case("profile: --device cuda", ["profile", m, "--device", "cuda"]),
        Case("profile: a folder as model", ["profile", str(f["data"])]),
        Case("profile: bare state_dict of ours", ["profile", str(f["bare"])]),
        # convert
        Case("convert: folder as input", ["convert", str(f["data"]), "--out", o("c1.pth")], out=o("c1.pth")),
        Case("convert: zero-byte input", ["convert", str(f["empty"]), "--out", o("c2.pth")], out=o("c2.pth")),
        Case("convert: checkpoint without arch", ["convert", str(f["noarch"]), "--out", o("c3.pth")], out=o("c3.pth")),
        Case("convert: existing --out", ["convert", m, "--out", str(f["existing"])], out=str(f["existing"])),
        Case("convert: --out cannot be created", ["convert", m, "--out", ro + "/c.pth"]),
        # extract
        Case("extract: missing supernet", ["extract", "nope.pth", "--config", "4_4", "--out", o("x1.pth")], out=o("x1.pth")),
        Case("extract: a plain generator", ["extract", m, "--config", "4_4_4_4_4_4_4_4", "--out", o("x2.pth")], out=o("x2.pth")),
        # compress and its stages
        Case("compress: NaN budget (dry run)", ["compress", "--teacher", m, "--data", d, "--budget", "1e999/1e999", "--out", o("p1"), "--dry-run"], out=o("p1")),
        Case("compress: empty budget", ["compress", "--teacher", m, "--data", d, "--budget", "", "--out", o("p2")], out=o("p2")),
        Case("compress: missing teacher", ["compress", "--teacher", "nope.pth", "--data", d, "--budget", "1/2", "--out", o("p3")], out=o("p3")),
        Case("compress: zero-byte teacher", ["compress", "--teacher", str(f["empty"]), "--data", d, "--budget", "1/2", "--out", o("p4")], out=o("p4")),
        Case("compress: population nan", ["compress", "--teacher", m, "--data", d, "--budget", "1/2", "--out", o("p5"), "compress.population=nan"], out=o("p5")),
        Case("compress: duplicated key", ["compress", "--teacher", m, "--data", d, "--budget", "1/2", "--out", o("p6"), "compress.held_out=2", "compress.held_out=3"], out=o("p6")),
        Case("compress: --out is a file", ["compress", "--teacher", m, "--data", d, "--budget", "1/2", "--out", str(f["file"])]),
        Case("compress: dry run checks pass", ["compress", "--teacher", m, "--data", d, "--budget", "1/2", "--out", o("p8"), "--dry-run", "compress.space=4,2", "compress.held_out=2"], good=True),
        Case("distill: missing teacher", ["distill", "--teacher", "nope.pth", "--data", d, "--out", o("p9")], out=o("p9")),
        Case("supernet: lambda_distill -1", ["supernet", "--teacher", m, "--data", d, "--out", o("p10"), "compress.lambda_distill=-1"], out=o("p10")),
        Case("finetune: no search result", ["finetune", "--teacher", m, "--data", d, "--out", o("p11"), "compress.space=4,2", "compress.held_out=2", "--budget", "1/2"]),
        # search
        Case("search: missing supernet", ["search", "--supernet", "nope.pth", "--budget", "1/2", "--out", o("q1")], out=o("q1")),
        Case("search: plain generator as supernet", ["search", "--supernet", m, "--budget", "1/2", "--out", o("q2")], out=o("q2")),
        Case("search: not a compression folder", ["search", "--out", o("q3")], out=o("q3")),
        # report
        Case("report: not a compression folder", ["report", "--out", o("r1")], out=o("r1")),
        Case("report: list pickle as model", ["report", "--teacher", m, "--model", str(f["listpickle"]), "--data", d, "--out", o("r2"), "--held-out", str(f["file"])], out=o("r2")),
        # demo-data
        Case("demo-data: --size 1e9", ["demo-data", "--out", o("d1"), "--size", "1e9"], out=o("d1")),
        Case("demo-data: --size 3", ["demo-data", "--out", o("d2"), "--size", "3"], out=o("d2")),
        Case("demo-data: --out is a file", ["demo-data", "--out", str(f["file"])]),
        Case("demo-data: --train 0", ["demo-data", "--out", o("d4"), "--train", "0"], out=o("d4")),
        Case("demo-data: --out cannot be created", ["demo-data", "--out", ro]),
    ]
    return c + issue26_cases(f, tmp, Case)


def _state(path: str | None) -> str | None:
    if path is None or not os.path.exists(path):
        return None
    p = Path(path)
    if p.is_file():
        return hashlib.sha256(p.read_bytes()).hexdigest()
    # names and contents: a refused resume must leave every file's bytes as they were
    def digest(x: Path) -> str:
        return hashlib.sha256(x.read_bytes()).hexdigest()[:12] if x.is_file() else ""
    return "dir:" + ",".join(sorted(f"{x.relative_to(p)}:{digest(x)}" for x in p.rglob("*")
                                    if x.name != ".lock"))


def run_case(case: Case, cwd: Path) -> tuple[Case, str, str]:
    if case.setup is not None:
        try:
            case.setup()
        except Exception as err:  # noqa: BLE001 - a failed setup is reported, not raised
            return case, "broken", f"setup: {err}"[:200]
    before = _state(case.out)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1",
           **case.env}
    if "GANCOMPRESS_ALLOW_UNVERIFIED_WEIGHTS" not in case.env:
        env.pop("GANCOMPRESS_ALLOW_UNVERIFIED_WEIGHTS", None)
    proc = subprocess.run([sys.executable, "-m", "gancompress", *case.argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    err = proc.stderr.strip()
    last = err.splitlines()[-1] if err else ""
    if "Traceback" in err or proc.returncode not in (0, 2):
        verdict = "broken" if case.good else "traceback"
    elif proc.returncode == 0:
        verdict = "ok" if case.good or case.accept else "silent"
    elif case.good:
        verdict = "broken"
    elif _state(case.out) != before:
        verdict = "partial"
    elif last.startswith("gancompress") and ": error: " in last:
        verdict = "handled"
        if (case.says and not re.search(case.says, last)) or (
                case.not_says and re.search(case.not_says, err)):
            verdict = "misnamed"
    else:
        verdict = "traceback"
    return case, verdict, last[:200]


def race(name: str, argv: list[str], cwd: Path) -> tuple[str, str, str]:
    """Two processes started together on one output (the audit's T41 / G14 / E17): promised is
    one success and one clean refusal, never two successes over each other's files."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "gancompress", *argv], cwd=cwd, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    codes = sorted(rc for rc, _ in results)
    errors = [err.strip().splitlines()[-1] for rc, err in results if rc == 2 and err.strip()]
    if any("Traceback" in err for _, err in results):
        return name, "traceback", ""
    if codes == [0, 2] and errors and (": error: " in errors[0]):
        return name, "handled", errors[0][:200]
    return name, "silent" if codes == [0, 0] else "traceback", f"exit codes {codes}"


def races(f: dict[str, Path], tmp: Path) -> list[tuple[str, list[str]]]:
    m, d = str(f["model"]), str(f["data"])
    out = tmp / "outs"
    return [("race: two generate into one folder",
             ["generate", m, "--input", str(f["images"]), "--out", str(out / "race_g")]),
            ("race: two export to one file",
             ["export", m, "--out", str(out / "race.pt"), "--size", "32", "32"]),
            ("race: two train into one new --out",
             ["train", "--preset", "demo", "--data", d, "--out", str(out / "race_t"),
              "data.load_size=36", "data.crop_size=32", "model.ngf=4", "model.n_blocks=3",
              "model.ndf=8", "train.max_steps=3", "train.progress=false",
              "train.n_samples=1"])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", help="comma-separated commands to run")
    parser.add_argument("--keep", help="build the fixtures here and keep them")
    args = parser.parse_args()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gancompress-audit-"))
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(tmp / "outs", ignore_errors=True)  # a kept folder: every case starts afresh
    shutil.rmtree(tmp / "moved", ignore_errors=True)
    (tmp / "outs").mkdir()
    f = fixtures(tmp / "fx") if not (tmp / "fx").exists() else fixtures_again(tmp / "fx")
    todo = cases(f, tmp)
    if args.only:  # commands (train, eval, ...), or race / torchrun / demo, or a class name
        wanted = set(args.only.split(","))
        todo = [c for c in todo if c.argv[0] in wanted or c.klass in wanted]
    counts: dict[str, int] = {}
    by_class: dict[str, list[int]] = {}  # class -> [as promised, total]

    def record(klass: str, name: str, verdict: str, last: str) -> None:
        counts[verdict] = counts.get(verdict, 0) + 1
        tally = by_class.setdefault(klass, [0, 0])
        tally[0] += verdict in ("handled", "ok")
        tally[1] += 1
        print(f"{verdict:9s} {name:48s} {last}", flush=True)

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for case, verdict, last in pool.map(lambda c: run_case(c, tmp), todo):
            record(case.klass, case.name, verdict, last)
    if not args.only or "race" in args.only:
        for name, argv in races(f, tmp):
            name, verdict, last = race(name, argv, tmp)
            todo.append(Case(name, argv, klass="races"))
            record("races", name, verdict, last)
    if not args.only or "torchrun" in args.only:
        for name, argv, out in torchrun_cases(f, tmp):
            name, verdict, last = torchrun_pair(name, argv, tmp, out)
            todo.append(Case(name, argv, klass="torchrun"))
            record("torchrun", name, verdict, last)
    if not args.only or "demo" in args.only:
        for name, verdict, last in demo_cases(f, tmp):
            todo.append(Case(name, [], klass="demo server", good=verdict in ("ok", "broken")))
            record("demo server", name, verdict, last)
    good = sum(1 for c in todo if c.good)
    bad_inputs = len(todo) - good
    defects = sum(counts.get(k, 0) for k in ("traceback", "silent", "partial", "broken",
                                             "misnamed"))
    print("\nhandled/total by class:")
    for klass, (promised, total) in by_class.items():
        print(f"  {klass:32s} {promised}/{total}")
    print(f"\ninputs tried: {len(todo)} ({bad_inputs} bad, {good} good); handled as promised: "
          f"{counts.get('handled', 0) + counts.get('ok', 0)}; defects left: {defects} "
          f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if defects else 0


def fixtures_again(root: Path) -> dict[str, Path]:
    shutil.rmtree(root)
    return fixtures(root)


if __name__ == "__main__":
    raise SystemExit(main())
