"""What the demo runs: models of a run folder or model files, one inference session each.

    demo = Demo.open(["runs/demo/compressed"])          # compact + teacher + report + Pareto front
    demo = Demo.open(["a.pth", "b.onnx"], size=(256, 256))
    out, ms = demo.models["compact"].run(batch)           # (1, C, H, W) in [-1, 1]

Inference path per model, fastest first (`backend="auto"`): OpenVINO through
gancompress.deploy.openvino when that module exists, onnxruntime on a verified ONNX export
(gancompress.deploy.export_onnx; the file is cached in RUN/demo-cache, or in the cache root's demo/
folder for model files and read-only runs, keyed by the checkpoint's SHA-256 and the input size), PyTorch as the
fallback. Each session has its own intra-op thread count; a per-model lock keeps one inference
per model at a time, so a measured time is that model's own.

Models come only from the command line: a request can pick a sub-network of the run's own Pareto
front (extracted on demand from the run's supernet and cached), never name a file.

Label-map models (as SPADE's): the palette and the input tensor are serve/labels.py's.
"""
from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gancompress.errors import UserError
from gancompress.files import file_fingerprint
# CITYSCAPES and instance_edges re-exported: the demo's tests and page code import them from here
from gancompress.serve.labels import CITYSCAPES, LabelSpec, instance_edges, label_spec  # noqa: F401
from gancompress.serve.runs import RunInfo, resolve_recorded

Log = Callable[[str], None]
BACKENDS = ("auto", "openvino", "onnx", "torch")
DEFAULT_SIZE = (256, 256)
MAX_SIDE = 2048


# ----------------------------------------------------------------------------------------------
# Inference sessions


class Unavailable(Exception):
    """A backend that cannot run this model (e.g. the model does not export)."""


class NotInstalled(Unavailable):
    """A backend that is not installed here (skipped silently by backend="auto")."""


@dataclass
class Session:
    """What a pane runs: an inference session of gancompress.deploy (deploy/session.py, directly
    or through a runner of deploy/runtime.py) and the labels the page shows next to it. `fn`
    maps (B, C, H, W) float in [-1, 1] to the output."""

    backend: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    threads: int
    note: str = ""

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return self.fn(batch)


def _cache_name(source: Path, cache_dir: Path, input_size: tuple[int, int, int, int],
                suffix: str) -> Path:
    """Export file of checkpoint `source` at `input_size`: a new checkpoint or size, a new file."""
    return cache_dir / f"{source.stem}-{file_fingerprint(source)}-{input_size[2]}x" \
                       f"{input_size[3]}{suffix}"


def _onnx_file(model: torch.nn.Module, source: Path, cache_dir: Path,
               input_size: tuple[int, int, int, int], log: Log) -> Path:
    """The verified ONNX export of `model` at `input_size`, made once per checkpoint and size."""
    from gancompress.deploy import export_onnx

    path = _cache_name(source, cache_dir, input_size, ".onnx")
    if not path.is_file():
        log(f"exporting {source.name} to ONNX at {input_size[2]}x{input_size[3]} "
            f"(once; cached in {cache_dir}) ...")
        try:
            export_onnx(model, path, input_size)
        except UserError as err:
            raise Unavailable(str(err)) from None
    return path


def _torch_session(model: torch.nn.Module, threads: int, **_: Any) -> Session:
    from gancompress.deploy.session import open_session

    # PyTorch's intra-op pool is per process: the session sets it for each call (sessions take
    # turns under their locks).
    session = open_session("torch", model.eval(), threads, set_threads=True)
    return Session("pytorch", lambda batch: session(batch).float(), threads,
                   "eager PyTorch (fallback)")


def _onnx_session(model: torch.nn.Module, threads: int, source: Path, cache_dir: Path,
                  input_size: tuple[int, int, int, int], log: Log) -> Session:
    from gancompress.deploy.runtime import OnnxRunner

    # No busy-waiting threads: the demo's sessions (and the browser) share the cores.
    runner = OnnxRunner(_onnx_file(model, source, cache_dir, input_size, log), threads=threads,
                        spinning=False)
    return Session("onnxruntime", runner, threads, "onnxruntime fp32, verified export")


def _openvino_session(model: torch.nn.Module, threads: int, source: Path, cache_dir: Path,
                      input_size: tuple[int, int, int, int], log: Log) -> Session:
    try:  # another part of gancompress; used only where it and OpenVINO are installed
        from gancompress.deploy import openvino as ov_deploy

        ov_deploy.require_openvino()
    except (ImportError, UserError):
        raise NotInstalled("gancompress.deploy.openvino / openvino is not installed") from None
    export = getattr(ov_deploy, "export_openvino", None)
    runner_class = getattr(ov_deploy, "OpenVinoRunner", None)
    if export is None or runner_class is None:
        raise NotInstalled("gancompress.deploy.openvino has no export_openvino / OpenVinoRunner")
    path = _cache_name(source, cache_dir, input_size, ".xml")
    if not path.is_file():
        log(f"exporting {source.name} to OpenVINO at {input_size[2]}x{input_size[3]} "
            f"(once; cached in {cache_dir}) ...")
        try:
            export(model, path, input_size, threads=threads)
        except UserError as err:
            raise Unavailable(str(err)) from None
    runner = runner_class(path, threads=threads)
    runner(torch.zeros(input_size))  # compile now, not on the first request
    return Session("openvino", runner, threads, "OpenVINO CPU fp32, verified export")


_MAKERS = {"openvino": _openvino_session, "onnx": _onnx_session, "torch": _torch_session}


def make_session(model: torch.nn.Module, source: Path, input_size: tuple[int, int, int, int],
                 backend: str = "auto", cache_dir: Path | None = None, threads: int | None = None,
                 log: Log = print) -> Session:
    """The fastest available session for `model` (saved at `source`), or the one asked for."""
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    threads = threads or max(1, torch.get_num_threads())
    order = ["openvino", "onnx", "torch"] if backend == "auto" else [backend]
    reasons = []
    for name in order:
        try:
            return _MAKERS[name](model, threads=threads, source=source,
                                 cache_dir=cache_dir or Path(tempfile.mkdtemp()),
                                 input_size=input_size, log=log)
        except Unavailable as err:
            if backend != "auto":
                raise UserError(f"backend {name} cannot run {source.name}: {err}") from None
            if not isinstance(err, NotInstalled):
                log(f"{source.name}: {name} cannot run it ({err}); using the next path")
            reasons.append(f"{name}: {err}")
    raise UserError(f"no backend can run {source.name}: {'; '.join(reasons)}")


# ----------------------------------------------------------------------------------------------
# Models of the demo


@dataclass
class DemoModel:
    """One pane of the page: a generator, its session and the figures shown next to it."""

    key: str
    label: str
    path: Path
    session: Session
    in_channels: int
    out_channels: int
    macs: int | None = None
    params: int | None = None
    quality: dict[str, Any] = field(default_factory=dict)
    config: str | None = None
    spec: LabelSpec | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # incremental inference (eager PyTorch, fast mode) for strokes; None for ONNX files
    incremental: Any = None
    dense_ms: float | None = None

    def run(self, batch: torch.Tensor) -> tuple[torch.Tensor, float]:
        """(output, milliseconds of this model's own inference)."""
        with self.lock:
            start = time.perf_counter()
            out = self.session(batch)
            self.dense_ms = (time.perf_counter() - start) * 1e3
            return out, self.dense_ms

    def run_incremental(self, batch: torch.Tensor) -> tuple[torch.Tensor, float, dict[str, Any]]:
        """(output, ms, what ran): only what changed since this model's last incremental input
        is recomputed (a preview while a stroke is drawn); a dense run without a session."""
        if self.incremental is None:
            out, ms = self.run(batch)
            return out, ms, {"incremental": False, "changed": None}
        with self.lock:
            start = time.perf_counter()
            out = self.incremental(batch.to(next(self.incremental.model.parameters()).device))
            ms = (time.perf_counter() - start) * 1e3
        stats = self.incremental.stats
        return out, ms, {"incremental": not stats["dense"], "changed": stats["changed_fraction"]}

    def info(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "file": self.path.name,
                "backend": self.session.backend, "backend_note": self.session.note,
                "threads": self.session.threads, "macs": self.macs, "params": self.params,
                "quality": self.quality, "config": self.config,
                "in_channels": self.in_channels, "out_channels": self.out_channels,
                "incremental": self.incremental is not None}


def _channels(model: torch.nn.Module, spec: LabelSpec | None) -> tuple[int, int]:
    """(input channels the server builds, output channels), from the family's own facts."""
    return (spec.channels if spec is not None else int(model.in_channels),
            int(model.out_channels))


def load_model(key: str, label: str, path: Path, size: tuple[int, int], backend: str,
               cache_dir: Path, threads: int | None, log: Log,
               quality: dict[str, Any] | None = None, config: str | None = None) -> DemoModel:
    """A checkpoint (any format load_generator reads) or an ONNX file, ready to serve."""
    from gancompress.deploy.runtime import OnnxRunner, file_kind
    from gancompress.metrics.cost import count_macs, count_params
    from gancompress.models.checkpoint import load_generator

    if file_kind(path) == "onnx":
        if backend not in ("auto", "onnx"):
            raise UserError(f"{path} is an ONNX file: it runs with onnxruntime (--backend onnx)")
        runner = OnnxRunner(path, threads=threads, spinning=False)
        if runner.input_size is not None and tuple(runner.input_size[2:]) != tuple(size):
            raise UserError(f"{path} was exported for {runner.input_size[2]}x"
                            f"{runner.input_size[3]} inputs; start the demo with --size "
                            f"{runner.input_size[2]} {runner.input_size[3]}")
        session = Session("onnxruntime", runner, threads or max(1, torch.get_num_threads()),
                          "onnxruntime, the given ONNX file")
        return DemoModel(key, label, path, session, runner.in_channels, 3,
                         quality=dict(quality or {}), config=runner.metadata.get("config"))
    model = load_generator(path)
    spec = label_spec(model)
    in_ch, out_ch = _channels(model, spec)
    h, w = model.check_size(size)  # the family's size rule (e.g. ResNet: multiples of 4)
    input_size = (1, in_ch, h, w)
    session = make_session(model, path, input_size, backend, cache_dir, threads, log)
    from gancompress.incremental import IncrementalSession
    return DemoModel(key, label, path, session, in_ch, out_ch, count_macs(model, input_size),
                     count_params(model), dict(quality or {}), config, spec,
                     incremental=IncrementalSession(model.eval(), mode="fast"))


def _writable_cache(run: Path | None, explicit: str | Path | None) -> Path:
    """--cache DIR, else RUN/demo-cache when the run folder is writable, else the one cache root
    (files.cache_root()/demo; names carry the checkpoint's SHA-256, so sharing is safe), else a
    temporary folder."""
    from gancompress.files import cache_root

    if explicit:
        candidates = [Path(explicit)]
    elif run is not None and os.access(run, os.W_OK):
        candidates = [run / "demo-cache"]
    else:
        candidates = [cache_root() / "demo"]
    try:
        candidates[0].mkdir(parents=True, exist_ok=True)
        return candidates[0]
    except OSError as err:
        if explicit:
            raise UserError(f"cannot create the demo cache folder {explicit}: {err.strerror}; "
                            f"pass another --cache DIR") from None
        return Path(tempfile.mkdtemp(prefix="gancompress-demo-"))


def median_spread(times_ms: Sequence[float]) -> dict[str, float]:
    from gancompress.metrics.cost import summarize_times

    summary = summarize_times(list(times_ms))
    return {k: summary[k] for k in ("median_ms", "min_ms", "p10_ms", "p90_ms", "spread", "runs")}


class Demo:
    """Everything the server serves: ordered models, input size, label spec, examples, front."""

    def __init__(self, models: list[DemoModel], size: tuple[int, int], spec: LabelSpec | None,
                 run: RunInfo | None, cache_dir: Path, backend: str, threads: int | None,
                 log: Log = print):
        self.models = {m.key: m for m in models}
        self.size = size
        self.spec = spec
        self.run = run
        self.cache_dir = cache_dir
        self.backend = backend
        self.threads = threads
        self.log = log
        self._subnets: dict[str, DemoModel] = {}
        self._select_lock = threading.Lock()
        self._examples: Any = None
        if run is not None and "compact" in self.models:
            self._subnets[self.models["compact"].config or ""] = self.models["compact"]

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def open(cls, paths: Sequence[str | Path], size: tuple[int, int] | None = None,
             backend: str = "auto", threads: int | None = None, cache: str | Path | None = None,
             teacher: str | Path | None = None, log: Log = print) -> Demo:
        """A run folder (compact + teacher; more model files may follow) or model files."""
        if not paths:
            raise UserError("give a compression run folder or one or more model files")
        paths = [Path(p) for p in paths]
        for p in paths:
            if not p.exists():
                raise UserError(f"{p} does not exist: give a compression run folder (written by "
                                f"`gancompress compress --out RUN`) or model files")
        run = RunInfo.read(paths[0], teacher) if paths[0].is_dir() else None
        if any(p.is_dir() for p in paths[1:]):
            raise UserError("give one run folder (first), then model files only")
        if teacher is not None and run is None:
            raise UserError("--teacher goes with a run folder; with model files list the teacher "
                            "among them")
        if size is None:
            size = (run.input_size() if run is not None else None) or DEFAULT_SIZE
        size = (int(size[0]), int(size[1]))
        if any(v < 1 or v > MAX_SIDE for v in size):
            raise UserError(f"--size {size[0]} {size[1]}: height and width must be between 1 "
                            f"and {MAX_SIDE}")
        cache_dir = _writable_cache(run.folder if run else None, cache)
        models = []
        if run is not None:
            models.append(load_model("compact", "compact", run.compact, size, backend, cache_dir,
                                     threads, log, run.quality("compact"), run.config))
            models.append(load_model("teacher", "teacher", run.teacher, size, backend, cache_dir,
                                     threads, log, run.quality("teacher")))
        for p in paths[1 if run else 0:]:
            key = _unique_key(p.stem, [m.key for m in models])
            models.append(load_model(key, p.name, p, size, backend, cache_dir, threads, log))
        specs = {m.spec for m in models}
        if len(specs) > 1:
            raise UserError("the models take different inputs (label maps of different classes, "
                            "or label maps and images); show them in separate demos")
        spec = specs.pop()
        if spec is None:
            odd = [m for m in models if m.in_channels not in (1, 3)]
            if odd:
                raise UserError(f"{odd[0].path.name} takes {odd[0].in_channels}-channel inputs; "
                                f"the demo draws grey (1) or colour (3) images, or label maps")
        return cls(models, size, spec, run, cache_dir, backend, threads, log)

    # -- requests -----------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        run = self.run
        return {"size": list(self.size), "mode": "label" if self.spec else "image",
                "palette": self.spec.palette() if self.spec else None,
                "edges": bool(self.spec and self.spec.instance),
                "models": [m.info() for m in self.models.values()],
                "examples": self.example_count() > 0,
                "run": None if run is None else {
                    "folder": run.folder.name, "config": run.config,
                    "reference": run.report.get("reference"),
                    "budget": run.report.get("budget")},
                "pareto": self.pareto()}

    def pareto(self) -> list[dict[str, Any]]:
        """The run's searched front (cheapest first), each point marked if it can be shown."""
        run = self.run
        if run is None:
            return []
        out = []
        for p in run.pareto:
            chosen = p["config"] == run.config
            out.append({"config": p["config"], "macs": p.get("macs"), "cost": p.get("cost"),
                        "score": p.get("score"), "metric": run.metric, "chosen": chosen,
                        "available": chosen or run.supernet is not None})
        return out

    def select_subnet(self, config: str) -> DemoModel:
        """Show sub-network `config` of the run's front in the compact pane (extracted from
        RUN/supernet/supernet.pth once, then cached as a checkpoint and a session)."""
        from gancompress.compress.supernet import extract_file

        run = self.run
        if run is None:
            raise UserError("sub-networks come from a compression run folder; this demo shows "
                            "model files")
        points = {p["config"]: p for p in self.pareto()}
        if config not in points:
            raise UserError(f"{config!r} is not on this run's searched Pareto front")
        with self._select_lock:
            if config not in self._subnets:
                if run.supernet is None:
                    raise UserError(f"{run.folder} has no supernet/supernet.pth to extract "
                                    f"{config} from")
                path = self.cache_dir / f"subnet-{config}.pth"
                if not path.is_file():
                    self.log(f"extracting sub-network {config} ...")
                    extract_file(run.supernet, config, path)
                score = points[config].get("score")
                quality = {} if score is None else {
                    "values": {run.metric or "score": score},
                    "reference": "search score on the held-out slice (before fine-tuning)",
                    "images": len(run.held_out)}
                self._subnets[config] = load_model(
                    "compact", f"sub-network {config}", path, self.size, self.backend,
                    self.cache_dir, self.threads, self.log, quality, config)
            chosen = self._subnets[config]
            self.models["compact"] = chosen
            return chosen

    def benchmark(self, runs: int = 10, warmup: int = 3) -> dict[str, Any]:
        """Each model alone (every other model's lock held): warm-up, then median of `runs`."""
        from gancompress.deploy.verify import sample_inputs

        models = list(self.models.values())
        results: dict[str, Any] = {}
        for m in sorted(models, key=lambda m: m.key):
            m.lock.acquire()
        try:
            for m in models:
                if self.spec is not None:
                    h, w = self.size  # random 4x4-pixel blocks of labels: plenty of edges
                    labels = np.random.default_rng(0).integers(
                        0, self.spec.classes, (-(-h // 4), -(-w // 4)))
                    batch = self.spec.tensor(np.kron(labels, np.ones((4, 4), labels.dtype))[:h, :w])
                else:
                    batch = sample_inputs((1, m.in_channels, *self.size), count=1)
                times = []
                for i in range(warmup + runs):
                    start = time.perf_counter()
                    m.session(batch)
                    if i >= warmup:
                        times.append((time.perf_counter() - start) * 1e3)
                results[m.key] = {**median_spread(times), "macs": m.macs,
                                  "backend": m.session.backend}
        finally:
            for m in models:
                m.lock.release()
        ref = "teacher" if "teacher" in results else max(
            results, key=lambda k: (results[k]["macs"] or 0, results[k]["median_ms"]))
        for r in results.values():
            r["speedup"] = results[ref]["median_ms"] / r["median_ms"] if r["median_ms"] else None
            r["mac_ratio"] = (results[ref]["macs"] / r["macs"]) if r["macs"] and \
                results[ref]["macs"] else None
        return {"reference": ref, "runs": runs, "warmup": warmup, "models": results,
                "threads": {m.key: m.session.threads for m in models}}

    # -- examples -------------------------------------------------------------------------------
    def _example_dataset(self) -> Any:
        if self._examples is None:
            self._examples = False
            run = self.run
            data = run.data_config() if run is not None else None
            root = resolve_recorded(data.root, run.folder, folder=True) \
                if data is not None and data.root else None
            if root is not None:
                from dataclasses import replace

                from gancompress.data import label_dataset, open_dataset

                names = [Path(n).name for n in run.held_out] or None
                try:
                    if data.mode == "labels":
                        self._examples = label_dataset(replace(data, root=str(root)),
                                                       file_list=run.held_out or None)
                    else:
                        self._examples = open_dataset(
                            root, mode=data.mode, phase="train", direction=data.direction,
                            preprocess="resize_and_crop", load_size=self.size[0],
                            crop_size=self.size[0], flip=False, in_channels=3, out_channels=3,
                            augment=False, file_list=names)
                except UserError as err:
                    self.log(f"no examples: {err}")
        return self._examples

    def example_count(self) -> int:
        dataset = self._example_dataset()
        return len(dataset) if dataset else 0

    def example(self, index: int | None = None) -> torch.Tensor | np.ndarray:
        """An input of the run's held-out training slice (random by default): a (3, H, W)
        image, or for label-map models an (H, W) array of label ids."""
        dataset = self._example_dataset()
        if not dataset:
            raise UserError("this demo has no example inputs (give a run folder whose data "
                            "folder still exists)")
        if index is None:
            index = int(np.random.default_rng().integers(len(dataset)))
        item = dataset[index % len(dataset)]
        if self.spec is not None:
            ids = item["label"].reshape(1, 1, *item["label"].shape[-2:]).float()
            ids = torch.nn.functional.interpolate(ids, size=self.size, mode="nearest")
            return ids[0, 0].to(torch.uint8).numpy().clip(0, self.spec.classes - 1)
        image = item["source"]
        if tuple(image.shape[1:]) != tuple(self.size):
            image = torch.nn.functional.interpolate(image[None], size=self.size, mode="bicubic",
                                                    align_corners=False)[0].clamp(-1, 1)
        return image


def _unique_key(stem: str, taken: Sequence[str]) -> str:
    key = "".join(c if c.isalnum() or c in "-_" else "-" for c in stem) or "model"
    base, n = key, 2
    while key in taken:
        key, n = f"{base}-{n}", n + 1
    return key
