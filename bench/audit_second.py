"""The second audit's cases (issue 26), for bench/audit_sweep.py: a moved or copied unfinished
run folder (and a moved data folder / teacher) resumed; keys the program records given as
overrides; --arch constructor arguments out of range; resume below the steps done;
decompression bombs through every command that reads images; files named for what they are not;
torchrun pairs (the environment torchrun sets, two real processes); the demo server.

Not a script: `python bench/audit_sweep.py` runs these with the first audit's cases.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from gancompress.config import preset  # noqa: E402
from gancompress.models import build_generator  # noqa: E402
from gancompress.models.checkpoint import save_generator  # noqa: E402


def bomb_png(path: Path, side: int = 50000) -> None:
    """A small PNG whose header declares side x side pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    row = b"\0" + b"\0" * side  # one filter byte + one grey byte per pixel, a few rows only
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8,
                                                                         0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(row * 4)) + chunk(b"IEND", b""))


def issue26_fixtures(root: Path, f: dict[str, Path], model: torch.nn.Module) -> None:
    """Bombs, files of other kinds, a MUNIT and a SPADE generator (issue 26's classes)."""
    f["bomb"] = root / "bomb.png"
    bomb_png(f["bomb"])
    f["bomb_images"] = root / "bomb_images"
    f["bomb_images"].mkdir()
    shutil.copy(f["bomb"], f["bomb_images"] / "big.png")
    f["bomb_data"] = root / "bomb_data"
    shutil.copytree(f["data"], f["bomb_data"])
    shutil.copy(f["bomb"], f["bomb_data"] / "train" / "7.png")  # train reads the train split,
    shutil.copy(f["bomb"], f["bomb_data"] / "test" / "1.png")   # eval the test split
    f["png_model"] = root / "photo.png"
    shutil.copy(f["images"] / "0.png", f["png_model"])
    f["text_labels"] = root / "text_labels"
    f["text_labels"].mkdir()
    (f["text_labels"] / "label.png").write_text("road: 7\nsky: 23\n")
    f["folder"] = root / "existing_folder.onnx"  # a folder named like the file export writes
    f["folder"].mkdir()
    (f["folder"] / "keep.txt").write_text("keep")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    f["torchscript"] = root / "g_script.pt"
    with torch.no_grad():
        torch.jit.trace(model.eval(), x).save(str(f["torchscript"]))
    f["onnx"] = root / "g.onnx"
    torch.onnx.export(model.eval(), (x,), str(f["onnx"]), opset_version=17,
                      input_names=["input"], output_names=["output"], dynamo=False)
    cfg = preset("demo").to_dict()
    cfg["data"]["crop_size"] = 32
    f["munit"] = root / "munit.pth"
    save_generator(build_generator("munit", ngf=4, style_dim=2, mlp_dim=8, n_res=2), f["munit"],
                   meta={"config": cfg})
    f["spade"] = root / "spade.pth"
    save_generator(build_generator("spade", ngf=4), f["spade"])


def cli(argv: list[str], cwd: Path) -> None:
    """Run a setup command; it must succeed."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "gancompress", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"setup {' '.join(argv)} failed: {proc.stderr[-500:]}")


def issue26_cases(f: dict[str, Path], tmp: Path, Case: Any) -> list[Any]:
    """The cases run like the first audit's (`Case` is audit_sweep's class)."""
    m, d = str(f["model"]), str(f["data"])
    o = lambda name: str(tmp / "outs" / name)
    tiny = ["data.load_size=36", "data.crop_size=32", "model.ngf=4", "model.n_blocks=3",
            "model.ndf=8", "train.progress=false", "train.n_samples=1"]
    stage = ["compress.space=4,2", "compress.held_out=2", "train.progress=false",
             "train.checkpoint_every=1", "data.num_workers=0"]
    moved = tmp / "moved"

    def unfinished(out: Path, teacher: str, data: str) -> None:
        """A supernet stage stopped after its first checkpoint, before its file: the state a
        kill leaves (the stage resumes from checkpoint.pt)."""
        cli(["supernet", "--teacher", teacher, "--data", data, "--out", str(out), *stage,
             "train.max_steps=1"], tmp)
        (out / "supernet" / "supernet.pth").unlink()

    def copied_run() -> None:
        unfinished(moved / "run", m, d)
        shutil.copytree(moved / "run", moved / "run-copy")
        shutil.rmtree(moved / "run")  # moved, not only copied: nothing of the old place is left

    def moved_data() -> None:
        shutil.copytree(f["data"], moved / "data-a")
        unfinished(moved / "run-d", m, str(moved / "data-a"))
        shutil.move(str(moved / "data-a"), str(moved / "data-b"))

    def moved_teacher() -> None:
        moved.mkdir(exist_ok=True)
        shutil.copy(f["model"], moved / "teacher-a.pth")
        unfinished(moved / "run-t", str(moved / "teacher-a.pth"), d)
        shutil.move(str(moved / "teacher-a.pth"), str(moved / "teacher-b.pth"))

    def finished_run() -> None:
        cli(["train", "--preset", "demo", "--data", d, "--out", o("steps_done"), *tiny,
             "train.max_steps=3"], tmp)

    bomb = "bomb|pixels|too large|decompression"
    k = "file-kind confusion"
    return [
        # a moved or copied unfinished run resumes where it is now
        Case("compress: unfinished stage moved, resumed", ["supernet", "--teacher", m, "--data", d, "--out", str(moved / "run-copy"), *stage, "train.max_steps=2"], good=True, klass="moved run folder", setup=copied_run),
        Case("compress: data folder moved, resumed", ["supernet", "--teacher", m, "--data", str(moved / "data-b"), "--out", str(moved / "run-d"), *stage, "train.max_steps=2"], good=True, klass="moved run folder", setup=moved_data),
        Case("compress: teacher moved, resumed", ["supernet", "--teacher", str(moved / "teacher-b.pth"), "--data", d, "--out", str(moved / "run-t"), *stage, "train.max_steps=2"], good=True, klass="moved run folder", setup=moved_teacher),
        # keys the program records (or each stage sets) given as overrides
        Case("train: train.global_batch_size=3", ["train", "--preset", "demo", "--data", d, "--out", o("rk1"), *tiny, "train.global_batch_size=3"], out=o("rk1"), klass="recorded-only key", says="train.batch_size"),
        Case("compress: train.epochs (set by each stage)", ["compress", "--teacher", m, "--data", d, "--budget", "1/2", "--out", o("rk2"), "train.epochs=3"], out=o("rk2"), klass="recorded-only key", says="compress.epochs"),
        # ranges of the --arch constructor arguments
        Case("profile: --arch resnet --ngf 0", ["profile", "--arch", "resnet", "--ngf", "0"], klass="arch argument range"),
        Case("profile: --arch munit --style-dim 0", ["profile", "--arch", "munit", "--style-dim", "0"], klass="arch argument range"),
        Case("profile: --arch resnet --in-channels 0", ["profile", "--arch", "resnet", "--in-channels", "0"], klass="arch argument range"),
        # resume below the steps done
        Case("train: --resume train.max_steps=1 after 3", ["train", "--out", o("steps_done"), "--resume", "train.max_steps=1"], out=o("steps_done"), klass="resume below steps done", setup=finished_run, says="max_steps"),
        # decompression bombs through each command that reads images
        Case("generate: bomb among the inputs", ["generate", m, "--input", str(f["bomb_images"]), "--out", o("b1")], out=o("b1"), klass="decompression bomb", says=bomb),
        Case("train: bomb in the data", ["train", "--preset", "demo", "--data", str(f["bomb_data"]), "--out", o("b2"), *tiny, "train.max_steps=1"], out=o("b2"), klass="decompression bomb", says=bomb),
        Case("eval: bomb in the data", ["eval", "--model", m, "--data", str(f["bomb_data"]), "--metrics", "psnr"], klass="decompression bomb", says=bomb),
        Case("export: bomb in --calib", ["export", m, "--out", o("b4.onnx"), "--int8", "--calib", str(f["bomb_images"])], out=o("b4.onnx"), klass="decompression bomb", says=bomb),
        Case("generate: bomb as --style", ["generate", str(f["munit"]), "--input", str(f["images"]), "--style", str(f["bomb"]), "--out", o("b5")], out=o("b5"), klass="decompression bomb", says=bomb),
        # files named for what they are not
        Case("eval: an .onnx file as --model", ["eval", "--model", str(f["onnx"]), "--metrics", "macs"], klass=k, accept=True, says="(?i)onnx", not_says="pickle"),
        Case("generate: a PNG as MODEL", ["generate", str(f["png_model"]), "--input", str(f["images"]), "--out", o("k2")], out=o("k2"), klass=k, says="(?i)png|image", not_says="pickle"),
        Case("export: a TorchScript file as MODEL", ["export", str(f["torchscript"]), "--out", o("k3.onnx")], klass=k, accept=True, says="(?i)torchscript", not_says="RuntimeError"),
        Case("generate: a text file as a label map", ["generate", str(f["spade"]), "--input", str(f["text_labels"]), "--out", o("k4")], out=o("k4"), klass=k, says="(?i)text|not an image|image file", not_says="check the path and the device"),
        Case("export: --out an existing folder", ["export", m, "--out", str(f["folder"])], out=str(f["folder"]), klass=k, not_says="--overwrite"),
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun_pair(name: str, argv: list[str], cwd: Path, out: str | None
                  ) -> tuple[str, str, str]:
    """Two processes with the environment torchrun gives ranks 0 and 1 of 2 (started together,
    so a command that does join the process group finds its peer). Promised: both exit 2, one
    error line for the job (rank 0's), nothing written."""
    port = str(free_port())
    procs = []
    for rank in (0, 1):
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1",
               "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank),
               "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
        procs.append(subprocess.Popen([sys.executable, "-m", "gancompress", *argv], cwd=cwd,
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    results = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        results.append((p.returncode, err.strip()))
    codes = [rc for rc, _ in results]
    lines = [line for _, err in results for line in err.splitlines() if ": error: " in line]
    if any("Traceback" in err for _, err in results):
        return name, "traceback", ""
    if 0 in codes:
        return name, "silent", f"exit codes {codes}"
    if codes != [2, 2]:
        return name, "traceback", f"exit codes {codes}"
    if out is not None and os.path.exists(out):
        return name, "partial", f"{out} written"
    if len(lines) != 1 or results[1][1]:
        return name, "misnamed", f"{len(lines)} error lines (one per rank)"
    return name, "handled", lines[0][:200]


def torchrun_cases(f: dict[str, Path], tmp: Path) -> list[tuple[str, list[str], str | None]]:
    m, d = str(f["model"]), str(f["data"])
    o = lambda name: str(tmp / "outs" / name)
    return [("torchrun: generate (one-process command)",
             ["generate", m, "--input", str(f["images"]), "--out", o("tr1")], o("tr1")),
            ("torchrun: eval (one-process command)", ["eval", "--model", m, "--metrics", "macs"],
             None),
            ("torchrun: export (one-process command)", ["export", m, "--out", o("tr3.onnx")],
             o("tr3.onnx")),
            ("torchrun: profile (one-process command)", ["profile", m], None),
            ("torchrun: train.global_batch_size=3, 2 processes",
             ["train", "--preset", "demo", "--data", d, "--out", o("tr5"), "data.load_size=36",
              "data.crop_size=32", "model.ngf=4", "model.n_blocks=3", "train.max_steps=1",
              "train.progress=false", "train.device=cpu", "train.global_batch_size=3"], o("tr5")),
            ("torchrun: train on a missing data folder (one line)",
             ["train", "--preset", "demo", "--data", o("nothing"), "--out", o("tr6"),
              "train.device=cpu"], o("tr6"))]


def demo_cases(f: dict[str, Path], tmp: Path) -> list[tuple[str, str, str]]:
    """The demo server (its own process, 127.0.0.1): a decompression bomb is 413 with JSON, a
    text file uploaded as a photo is named as such (no Python object repr)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-u", "-m", "gancompress", "demo", str(f["model"]),
                             "--size", "32", "32", "--backend", "torch", "--threads", "1",
                             "--cache", str(tmp / "demo-cache")], cwd=tmp, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    port, deadline, seen = None, time.time() + 300, []
    for line in proc.stdout:
        seen.append(line)
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if found:
            port = int(found.group(1))
            break
        if time.time() > deadline:
            break
    results = []
    try:
        if port is None:
            tail = "".join(seen)[-200:].replace("\n", " ")
            return [("demo: server start", "broken", tail)]

        def post(body: bytes) -> tuple[int, str]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.request("POST", "/api/upload", body=body,
                         headers={"Content-Type": "application/octet-stream"})
            answer = conn.getresponse()
            return answer.status, answer.read().decode("utf-8", "replace")

        status, text = post(f["bomb"].read_bytes())
        try:
            json.loads(text)
            is_json = True
        except ValueError:
            is_json = False
        verdict = "handled" if status == 413 and is_json else (
            "misnamed" if 400 <= status < 500 else "traceback")
        results.append(("demo: decompression bomb upload -> 413", verdict,
                        f"{status} {text[:150]}"))
        status, text = post(b"just some text, not a photo\n")
        verdict = ("handled" if 400 <= status < 500 and "<_io." not in text
                   else "misnamed" if 400 <= status < 500 else "traceback")
        results.append(("demo: text file uploaded as a photo", verdict, f"{status} {text[:150]}"))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/api/info")
        alive = conn.getresponse().status == 200
        results.append(("demo: still answers afterwards", "ok" if alive else "broken", ""))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return results
