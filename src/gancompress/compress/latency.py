"""Latency model of the sub-networks of a search space on one device, for latency budgets.

The search asks "how long does config c take here?" thousands of times; measuring each is far
too slow, and MACs are a poor proxy on CPUs (memory-bound depthwise convs, norms and padding;
channel counts padded to the 16-wide SIMD blocks of oneDNN / onnxruntime NCHWc). The model is

    latency(c) = overhead + sum_g a_g * width_g(c) + b * MACs(c) + b16 * MACs16(c)

per width group g (stem, down1, trunk, res1..3, up1, up2 for the ResNet generator): a_g * width is
the memory-bound cost of the stage (activations it writes and reads, norms, pads), MACs the
compute, MACs16 the compute with every width rounded up to a multiple of 16 (what blocked conv
kernels really do). All coefficients are >= 0 (non-negative least squares, rows weighted by
1 / latency so that the relative error is minimised), so a wider network is never predicted
faster and the narrowest config is the fastest. They are fit to whole sub-networks measured on the device: a few dozen configs chosen so that every choice of every
position appears, timed round-robin (a change of load hits them alike); held-out configs give
the reported mean absolute % error. Compared by 8-fold cross-validation on 76 measured configs of
channels-64-cycleGAN at 256x256 (1 thread), this form had 3.3% (torch) / 7.4% (onnxruntime) mean
abs error, against 4.5% / 11.4% for a per-position lookup table (one coefficient per width each
position can take) + MACs fit by least squares, which needs 3x more coefficients.

MACs(c) come from an exact quadratic polynomial in the group widths (every layer costs
c * w_in * w_out, c * w or c), fit once from counted configs and checked on others, so that a
prediction never runs the model.

The measured sub-networks are the compact models the search exports (`compact`), run on the
deployment runtime the user names (`compress --runtime NAME`, config key
`compress.latency_backend`), in its precision, so that a budget of 8 ms means 8 ms there:

    torch          eager PyTorch fp32 (CPU or CUDA)
    onnx           deploy module (folded norms, fused pads, exact rewrites) exported with the
                   legacy ONNX exporter (~5x faster to export than dynamo, the same kernels),
                   onnxruntime fp32, optimisation level ALL ("onnxruntime": the old spelling)
    openvino       the same graph compiled by OpenVINO's CPU plugin, fp32
    openvino-bf16  the same in bf16 inference precision (CPUs with AVX-512 BF16 / AMX)
    openvino-int8  each measured sub-network quantized by NNCF (int8 weights and activations)
                   on two smooth random calibration images: latency does not depend on the
                   values, only on the graph NNCF makes, so no data and no quality search

A `timer` (configs -> ms) can replace the measurement (tests fit the model deterministically
with a fake one). The fit is cached as JSON under `cache_dir` (default $GANCOMPRESS_CACHE/latency
or ~/.cache/gancompress/latency), keyed by device, threads, runtime and precision, input size,
architecture and search space, and reused by later searches; its held-out error is recorded
(`holdout_mape`) and reported by `describe()`.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import platform
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import nnls

from gancompress.compress.space import SearchSpace
from gancompress.errors import UserError
from gancompress.files import atomic_write_text, cache_root
from gancompress.models.elastic import ElasticGenerator, compact, using_widths

VERSION = 4
SIMD_BLOCK = 16  # channel block of oneDNN / onnxruntime NCHWc kernels with AVX-512
# runtime name -> (deploy/backends.py backend, precision)
RUNTIMES = {"torch": ("torch", "fp32"), "onnx": ("onnx", "fp32"),
            "openvino": ("openvino", "fp32"), "openvino-bf16": ("openvino-bf16", "bf16"),
            "openvino-int8": ("openvino-int8", "int8")}
ALIASES = {"onnxruntime": "onnx", "openvino-fp32": "openvino", "onnx-fp32": "onnx"}
BACKEND_NAMES = (*RUNTIMES, *ALIASES)
Timer = Callable[[list[list[int]]], Sequence[float]]


def runtime_name(name: str) -> str:
    """The canonical runtime of `name` (old spellings accepted); UserError when unknown."""
    name = str(name).strip().lower()
    name = ALIASES.get(name, name)
    if name not in RUNTIMES:
        raise UserError(f"unknown latency runtime {name!r}: use {', '.join(RUNTIMES)} "
                        f"(unknown latency backend)")
    return name


def runtime_backend(name: str) -> str:
    """The deploy/backends.py name of runtime `name` (profile --backends spelling)."""
    return RUNTIMES[runtime_name(name)][0]


def runtime_precision(name: str) -> str:
    return RUNTIMES[runtime_name(name)][1]


def check_runtime(name: str, device: str = "cpu") -> str:
    """The canonical runtime of `name` after checking that it can run here: UserError (saying
    what to use instead) when its package is missing or the CPU lacks its precision."""
    name = runtime_name(name)
    if name != "torch" and torch.device(device).type != "cpu":
        raise UserError(f"the {name} runtime measures on the CPU; use --runtime torch for "
                        f"{torch.device(device).type} latency")
    if name.startswith("openvino"):
        from gancompress.deploy.session import require_openvino, supports_bf16, supports_int8

        require_openvino()
        if name == "openvino-bf16" and not supports_bf16():
            raise UserError("this CPU has no native bf16 (AVX-512 BF16 / AMX): OpenVINO bf16 "
                            "would run fp32 here; use --runtime openvino (or openvino-int8 if "
                            "the CPU has VNNI)")
        if name == "openvino-int8":
            from gancompress.deploy.openvino import require_nncf

            require_nncf()
            if not supports_int8():
                raise UserError("this CPU has no int8 dot-product units (AVX-512 VNNI, AVX-VNNI "
                                "or AMX): int8 would be emulated and slower than fp32; use "
                                "--runtime openvino (or openvino-bf16 where the CPU has bf16)")
    return name


def default_cache_dir() -> Path:
    return cache_root() / "latency"


def device_name(device: str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:  # the CPU model string is what makes two machines comparable
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return name


class LatencyModel:
    """Predicted latency (ms) of any config of `space` for `model` on one device / backend."""

    def __init__(self, model: ElasticGenerator, space: SearchSpace, input_size: Sequence[int],
                 device: str, backend: str, threads: int, fit: dict[str, Any]):
        self.model, self.space = model, space
        self.input_size = tuple(int(v) for v in input_size)
        self.device, self.backend, self.threads = device, backend, threads
        self.runtime = runtime_name(backend)
        self.precision = RUNTIMES[self.runtime][1]
        self.fit = fit
        self._macs: dict[str, float] = {}
        self._runners: dict[str, Any] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def load_or_build(cls, model: ElasticGenerator, space: SearchSpace,
                      input_size: Sequence[int] = (1, 3, 256, 256), device: str = "cpu",
                      backend: str = "torch", cache_dir: str | Path | None = None,
                      samples: int | None = None, runs: int = 9, seed: int = 0,
                      threads: int | None = None, timer: Timer | None = None) -> LatencyModel:
        """The cached model for these conditions, or a new one (measured now, then cached).

        backend: the runtime (RUNTIMES, or an old spelling such as onnxruntime).
        threads: CPU threads to measure with (default: torch's current setting); part of the key.
        samples: measured configs for the fit (default max(24, 2 x number of coefficients)),
        plus a fifth as many held out; runs: timed runs per config (median).
        timer: configs -> latency (ms) of each, instead of building and timing them (a fake
        device for tests, or an external measurement); its name is part of the cache key.
        """
        runtime = runtime_name(backend)
        if timer is None:
            check_runtime(runtime, device)
        elif runtime != "torch" and torch.device(device).type != "cpu":
            raise UserError(f"the {runtime} runtime measures on the CPU; use --runtime torch "
                            f"for GPU latency")
        if torch.device(device).type == "cuda" and not torch.cuda.is_available():
            raise UserError(f"device {device} is not available on this machine")
        space.validate(space.largest())
        with using_widths(model, space.widths(space.largest())):
            pass  # fails early, with the group names, if the space does not fit the model
        threads = int(threads or torch.get_num_threads())
        input_size = tuple(int(v) for v in input_size)
        key = cls._key(model, space, input_size, device, runtime, threads,
                       None if timer is None else getattr(timer, "__name__", "timer"))
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        path = cache / (f"latency-{runtime}-{torch.device(device).type}-t{threads}-"
                        f"{input_size[-2]}x{input_size[-1]}-{key[:16]}.json")
        if path.is_file():
            try:
                fit = json.loads(path.read_text())
                if fit.get("version") == VERSION and fit.get("key") == key:
                    return cls(model, space, input_size, device, backend, threads, fit)
            except (OSError, json.JSONDecodeError):
                pass  # a damaged cache file is rebuilt
        latency = cls(model, space, input_size, device, backend, threads, {"key": key})
        latency._build(samples, runs, seed, timer)
        try:
            atomic_write_text(path, json.dumps(latency.fit, indent=1))
            latency.fit["cache_file"] = str(path)
        except OSError:
            pass  # an unwritable cache only costs a rebuild next time
        return latency

    @staticmethod
    def _key(model, space, input_size, device, runtime, threads, timer=None) -> str:
        openvino = onnxruntime = nncf = None
        if timer is None and runtime == "onnx":
            import onnxruntime as ort
            onnxruntime = ort.__version__
        if timer is None and runtime.startswith("openvino"):
            from gancompress.deploy.session import require_openvino
            openvino = require_openvino().__version__
        if timer is None and runtime == "openvino-int8":
            from gancompress.deploy.openvino import require_nncf
            nncf = require_nncf().__version__
        conditions = {"arch_name": model.arch_name,
                      "arch": {k: v for k, v in model.arch.items()},
                      "space": [list(c) for c in space.choices], "input_size": list(input_size),
                      "device": device_name(device), "threads": threads, "runtime": runtime,
                      "precision": RUNTIMES[runtime][1], "timer": timer,
                      "torch": torch.__version__, "onnxruntime": onnxruntime,
                      "openvino": openvino, "nncf": nncf, "version": VERSION}
        return hashlib.sha256(json.dumps(conditions, sort_keys=True, default=str).encode()
                              ).hexdigest()

    def _design(self, count: int, rng: random.Random) -> list[list[int]]:
        """`count` distinct configs in which every choice of every position appears: the
        narrowest and widest configs, "choice k of every position" for each k, then random."""
        longest = max(len(c) for c in self.space.choices)
        candidates = [self.space.smallest(), self.space.largest()]
        candidates += [[c[k % len(c)] for c in self.space.choices] for k in range(longest)]
        configs, seen = [], set()
        for config in candidates:
            if self.space.encode(config) not in seen:
                seen.add(self.space.encode(config))
                configs.append(config)
        attempts = 0
        while len(configs) < min(count, self.space.size) and attempts < 50 * count:
            attempts += 1
            config = self.space.sample(rng)
            if self.space.encode(config) not in seen:
                seen.add(self.space.encode(config))
                configs.append(config)
        return configs

    def _build(self, samples: int | None, runs: int, seed: int,
               timer: Timer | None = None) -> None:
        rng = random.Random(seed)
        self._fit_macs(random.Random(seed + 1))
        n_features = 3 + len(self.space.widths(self.space.largest()))
        if samples is None:
            samples = max(24, 2 * n_features)
        holdout_count = max(4, samples // 5)
        configs = self._design(samples + holdout_count, rng)
        if len(configs) <= n_features:  # tiny space: measure everything, no hold-out
            holdout_count = 0
        train_configs = configs[:len(configs) - holdout_count]
        holdout = configs[len(configs) - holdout_count:]
        if timer is not None:
            ms = dict(zip((self.space.encode(c) for c in configs),
                          (float(v) for v in timer([list(c) for c in configs]))))
            statistic = f"timer {getattr(timer, '__name__', 'timer')}"
        else:
            ms, statistic = self._measure_all(configs, runs), "min of runs"
        x = self._features(train_configs)
        y = np.array([ms[self.space.encode(c)] for c in train_configs])
        # every coefficient >= 0: wider is never predicted faster; rows weighted by 1 / y so that
        # the fit minimises relative error (the % error it is judged by), not absolute ms
        coef, _ = nnls(x / y[:, None], np.ones_like(y))
        self.fit.update(version=VERSION, backend=self.backend, runtime=self.runtime,
                        precision=self.precision, device=self.device,
                        device_name=device_name(self.device), threads=self.threads,
                        input_size=list(self.input_size), space=self.space.name,
                        choices=[list(c) for c in self.space.choices],
                        coef=[float(v) for v in coef],
                        measured={self.space.encode(c): ms[self.space.encode(c)]
                                  for c in train_configs},
                        holdout={self.space.encode(c): ms[self.space.encode(c)] for c in holdout},
                        runs=runs, statistic=statistic, torch=torch.__version__)
        self.fit["train_mape"] = _mape(self.predict_many(train_configs), y)
        if holdout:
            predicted = self.predict_many(holdout)
            self.fit["holdout_mape"] = _mape(predicted, [ms[self.space.encode(c)] for c in holdout])

    def _measure_all(self, configs: Sequence[Sequence[int]], runs: int) -> dict[str, float]:
        """Fastest of `runs` runs (ms) of each config's sub-network on the runtime."""
        from gancompress.deploy.backends import measure_side_by_side

        calls = {self.space.encode(c): self._runner(c) for c in configs}
        with _threads(self.threads):
            # eager models share torch's thread pool: one run each in turn; onnxruntime and
            # OpenVINO each own spinning worker threads: short blocks per session (first run
            # untimed), the configs taking turns so that a burst of load from other jobs hits
            # one block of many configs rather than every run of one config
            eager = self.runtime == "torch"
            measured = measure_side_by_side(calls, warmup=1, runs=runs, device=self.device,
                                            block=1 if eager else max(2, runs // 3),
                                            settle=not eager)
        # The fit uses the fastest of the runs: on a machine shared with other jobs most runs
        # can be preempted (measured here at ngf 8, 64 px: 2.2-2.9 ms clean, ~7 ms in ~70% of
        # the runs), so medians of a few runs are bimodal; interference only ever adds time, so
        # the minimum estimates the device's own latency (on an idle machine it is within a few
        # % of the median).
        self._runners.clear()
        return {k: v["min_ms"] for k, v in measured.items()}

    # ------------------------------------------------------------------ features
    def _small_size(self) -> tuple[tuple[int, ...], int]:
        """MACs are counted on a small input and scaled by the area ratio (exact for convs and
        norms while the sizes stay multiples of the family's size_multiple)."""
        b, c, h, w = self.input_size
        m = getattr(self.model, "size_multiple", 4)
        factor = max(1, min(h, w) // 16)
        while factor > 1 and (h % (m * factor) or w % (m * factor)):
            factor -= 1
        return (b, c, h // factor, w // factor), factor * factor

    def _count_macs(self, config: Sequence[int]) -> float:
        from gancompress.metrics.cost import count_macs

        size, area = self._small_size()
        with using_widths(self.model, self.space.widths(config)):
            return float(count_macs(self.model, size, convention="true") * area)

    def _width_matrix(self, configs: Sequence[Sequence[int]]) -> np.ndarray:
        """(n, groups) channel widths of each config."""
        groups = sorted(self.space.widths(self.space.largest()))
        rows = []
        for config in configs:
            widths = self.space.widths(config)
            rows.append([widths[g] for g in groups])
        return np.array(rows, float)

    @staticmethod
    def _quadratic(widths: np.ndarray) -> np.ndarray:
        """[1, w_g, w_g * w_h (g <= h)]: every layer's MACs are c * w_in * w_out, c * w or c."""
        n, g = widths.shape
        rows, cols = np.triu_indices(g)
        return np.hstack([np.ones((n, 1)), widths, widths[:, rows] * widths[:, cols]])

    def _fit_macs(self, rng: random.Random) -> None:
        """MACs as an exact quadratic polynomial of the group widths, fit once from counted
        configs, so that predictions never run the model; checked on other configs (fallback:
        count every config)."""
        count = len(self._quadratic(np.zeros((1, len(self.space.widths(self.space.largest())))))[0])
        configs = [self.space.sample(rng) for _ in range(count + count // 2 + 8)]
        fit, check = configs[:-8], configs[-8:]
        with _threads(1):  # tiny inputs: threads only add synchronisation
            macs = np.array([self._count_macs(c) for c in configs])
        coef, *_ = np.linalg.lstsq(self._quadratic(self._width_matrix(fit)), macs[:-8], rcond=None)
        predicted = self._quadratic(self._width_matrix(check)) @ coef
        exact = bool(np.all(np.abs(predicted - macs[-8:]) <= 1e-6 * np.abs(macs[-8:]) + 1))
        self.fit["mac_poly"] = [float(v) for v in coef] if exact else None

    def macs(self, config: Sequence[int]) -> float:
        """True MACs of `config` at `input_size`."""
        return float(self._macs_many([list(config)])[0])

    def _macs_many(self, configs: Sequence[Sequence[int]]) -> np.ndarray:
        poly = self.fit.get("mac_poly")
        if poly is not None:
            return self._quadratic(self._width_matrix(configs)) @ np.array(poly)
        out = []
        for config in configs:
            key = self.space.encode(config)
            if key not in self._macs:
                self._macs[key] = self._count_macs(config)
            out.append(self._macs[key])
        return np.array(out)

    def _features(self, configs: Sequence[Sequence[int]]) -> np.ndarray:
        """(n, features): [1, width of each group / 100, GMACs, GMACs at 16-padded widths]."""
        widths = self._width_matrix(configs)
        macs = self._macs_many(configs) * 1e-9
        poly = self.fit.get("mac_poly")
        if poly is not None:
            ceiling = np.ceil(widths.max(axis=0) / SIMD_BLOCK) * SIMD_BLOCK
            padded = np.minimum(np.ceil(widths / SIMD_BLOCK) * SIMD_BLOCK, ceiling)
            padded_macs = self._quadratic(padded) @ np.array(poly) * 1e-9
        else:  # no polynomial: padded MACs unknown, the term duplicates MACs
            padded_macs = macs
        return np.column_stack([np.ones(len(configs)), widths / 100.0, macs, padded_macs])

    # ------------------------------------------------------------------ public API
    def predict(self, config: Sequence[int]) -> float:
        """Predicted latency (ms) of `config` (batch and size of `input_size`)."""
        config = self.space.validate(list(config))
        return float(self._features([config])[0] @ np.array(self.fit["coef"]))

    def predict_many(self, configs: Sequence[Sequence[int]]) -> np.ndarray:
        return self._features([self.space.validate(list(c)) for c in configs]) @ \
            np.array(self.fit["coef"])

    def _runner(self, config: Sequence[int]):
        """A zero-argument callable running the compact sub-network of `config` once, through
        the deploy backend of the same name (one inference session; the legacy ONNX exporter:
        ~5x faster to export than dynamo, the same kernels)."""
        from gancompress.deploy.backends import build_backend

        widths = self.space.widths(self.space.validate(list(config)))
        small = compact(self.model, widths).eval()
        # int8: NNCF calibrates on two random images and the quality check is skipped (the
        # graph, not the values, sets the latency); quantizing a sub-network then takes ~1 s
        call, _ = build_backend(runtime_backend(self.runtime), small, self.input_size,
                                threads=self.threads, device=self.device, exporter="legacy",
                                speed_only=True)
        return call

    def measure(self, config: Sequence[int], runs: int = 10, warmup: int = 3) -> float:
        """Measured latency (ms) of `config` now, not cached: the fastest of `runs` runs, the
        statistic the fit uses."""
        from gancompress.deploy.backends import measure_side_by_side

        key = self.space.encode(config)
        call = self._runner(config)
        with _threads(self.threads):
            return measure_side_by_side({key: call}, warmup=warmup, runs=runs,
                                        device=self.device)[key]["min_ms"]

    def fastest(self) -> tuple[list[int], float]:
        """The config with the lowest predicted latency, and that latency.

        Every coefficient is >= 0 and every feature grows with every width, so the narrowest
        config is the fastest; a greedy descent from it confirms that (and would move on if a
        future feature broke the monotonicity).
        """
        best = self.space.smallest()
        best_ms = self.predict(best)
        improved = True
        while improved:
            improved = False
            for pos, choices in enumerate(self.space.choices):
                for value in choices:
                    trial = list(best)
                    trial[pos] = value
                    ms = self.predict(trial)
                    if ms < best_ms - 1e-9:
                        best, best_ms, improved = trial, ms, True
        return best, best_ms

    def check_budget(self, budget_ms: float) -> None:
        """UserError when no config of the space is predicted to meet `budget_ms`."""
        config, ms = self.fastest()
        if budget_ms < ms:
            raise UserError(f"latency budget {budget_ms:g} ms is below the fastest sub-network "
                            f"of search space {self.space.name} on {self.fit.get('device_name')} "
                            f"({self.runtime}, {self.precision}, {self.threads} threads): "
                            f"{self.space.encode(config)} is predicted at {ms:.3g} ms; raise the "
                            f"budget to at least that")

    def summary(self) -> dict[str, Any]:
        keys = ("backend", "runtime", "precision", "device_name", "threads", "input_size",
                "space", "train_mape", "holdout_mape", "cache_file")
        out = {k: self.fit[k] for k in keys if k in self.fit}
        out.setdefault("runtime", self.runtime)
        out.setdefault("precision", self.precision)
        out["holdout_configs"] = len(self.fit.get("holdout", {}))
        return out

    def describe(self) -> str:
        """One line: what the model predicts and how well (held-out mean abs % error)."""
        held = self.fit.get("holdout_mape")
        error = (f"mean abs error {held:.1f}% on {len(self.fit.get('holdout', {}))} held-out "
                 f"sub-networks" if held is not None and not math.isnan(held)
                 else "no held-out sub-networks (space too small)")
        return (f"latency model: {self.runtime} ({self.precision}), {self.threads} thread(s), "
                f"{self.fit.get('device_name', self.device)}, "
                f"{self.input_size[-2]}x{self.input_size[-1]}; {error}")


@contextlib.contextmanager
def _threads(count: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _mape(predicted: Sequence[float], measured: Sequence[float]) -> float:
    pairs = [(p, m) for p, m in zip(predicted, measured) if m > 0]
    return 100.0 * sum(abs(p - m) / m for p, m in pairs) / max(1, len(pairs)) if pairs else math.nan
