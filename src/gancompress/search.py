"""Sub-network search under a budget: budgets, cost functions, scorers, evolution, exhaustive.

GAN Compression sec. 3.4 searches the trained once-for-all supernet for the sub-network with the
best quality under a compute budget (brute force); Fast GAN Compression replaces brute force by
evolution (REFERENCE.md sec. 3: population 100, top 25 parents, 50 mutants, 50 crossovers, every
candidate rejection-sampled until it fits the budget, scores cached by config string, candidates
scored on a held-out slice of the training data).

Pieces, each usable alone:
    parse_budget("3G" | "3e9" | "1/20" | "5%" | "30ms") -> Budget    (.resolve(teacher_macs))
    MacCost / LatencyCost                 config -> cost (MACs or predicted ms), cached
    ReconstructionScorer                  config -> L1 / PSNR to ground truth or to the teacher
    DistributionScorer                    config -> FID / KID against reference statistics
    evolution_search / exhaustive_search  pure functions of (space, cost, score, budget)
    SearchRun                             an output folder: identity check, results.jsonl cache
                                          (resume after a kill), best.json, pareto.png
Scores are "lower is better" internally; a scorer with higher_is_better (PSNR) is negated only
for ranking, and stored as measured.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from gancompress.elastic import ElasticGenerator, recalibrate_bn, using_widths
from gancompress.errors import UserError
from gancompress.imaging import atomic_path, atomic_write_text
from gancompress.metrics.cost import count_macs, format_count
from gancompress.space import Config, SearchSpace

# ----------------------------------------------------------------------------------------------
# Budgets

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
_NUMBER = r"(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"


@dataclass(frozen=True)
class Budget:
    """A compute budget. kind: 'macs' (absolute), 'fraction' (of the teacher's MACs) or 'latency'
    (milliseconds, predicted by the latency model)."""

    kind: str
    value: float
    text: str

    def resolve(self, teacher_macs: int | None) -> Budget:
        """A fraction becomes absolute MACs of the teacher; other kinds are returned unchanged."""
        if self.kind != "fraction":
            return self
        if not teacher_macs:
            raise UserError(f"budget {self.text!r} is a fraction of the teacher's MACs; give the "
                            f"teacher (--teacher) or an absolute budget such as 3G")
        return Budget("macs", self.value * teacher_macs, self.text)

    @property
    def unit(self) -> str:
        return "ms" if self.kind == "latency" else "MACs"

    def describe(self) -> str:
        if self.kind == "latency":
            return f"{self.value:g} ms"
        if self.kind == "fraction":
            return f"{self.value:.4g} of the teacher's MACs"
        return f"{format_count(self.value)} MACs"


def parse_budget(text: str | float | int) -> Budget:
    """'3e9', '3G', '2.5GMACs' -> MACs; '1/20', '5%' -> fraction of the teacher; '30ms', '0.03s'
    -> latency. A plain number is absolute MACs, so it must be >= 1."""
    raw = str(text).strip()
    s = raw.replace(" ", "").replace("_", "")
    how = ("write MACs as 3e9 or 3G, a fraction of the teacher as 1/20 or 5%, or a latency "
           "as 30ms")
    if not s:
        raise UserError(f"empty budget; {how}")
    if m := re.fullmatch(_NUMBER + r"/" + _NUMBER, s):
        num, den = float(m.group(1)), float(m.group(2))
        if den == 0 or num <= 0 or num > den:
            raise UserError(f"budget {raw!r}: a fraction must be in (0, 1]; {how}")
        return Budget("fraction", num / den, raw)
    if m := re.fullmatch(_NUMBER + r"%", s):
        value = float(m.group(1)) / 100
        if not 0 < value <= 1:
            raise UserError(f"budget {raw!r}: a percentage must be in (0, 100]; {how}")
        return Budget("fraction", value, raw)
    if m := re.fullmatch(_NUMBER + r"(ms|s)", s, flags=re.IGNORECASE):
        value = float(m.group(1)) * (1.0 if m.group(2).lower() == "ms" else 1000.0)
        if value <= 0:
            raise UserError(f"budget {raw!r}: a latency must be positive; {how}")
        return Budget("latency", value, raw)
    if m := re.fullmatch(_NUMBER + r"([kKmMgGtT]?)(?:MACs?|macs?|MAC|mac)?", s):
        value = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
        if value < 1:
            raise UserError(f"budget {raw!r}: a plain number is absolute MACs and must be >= 1; "
                            f"for a fraction of the teacher write 1/20 or 5%")
        return Budget("macs", value, raw)
    raise UserError(f"cannot read budget {raw!r}; {how}")


# ----------------------------------------------------------------------------------------------
# Costs (config -> number to keep under the budget)

class MacCost:
    """MACs (published convention, REFERENCE.md sec. 5) of the sub-network at `input_size`.

    Counting hooks run a forward pass; to keep evolution's rejection sampling cheap the pass runs
    on an input k times smaller per side and the count is multiplied by k^2, which is exact for
    convolutional generators (every count is proportional to an output's H*W). The scaling is
    verified once on the widest network and skipped where it does not hold.
    """

    unit = "MACs"
    kind = "macs"

    def __init__(self, model: ElasticGenerator, space: SearchSpace,
                 input_size: Sequence[int] = (1, 3, 256, 256)):
        self.model, self.space = model, space
        self.input_size = tuple(int(v) for v in input_size)
        self.cache: dict[str, float] = {}
        self.scale, self.small_size = 1, self.input_size
        b, c, h, w = self.input_size
        for k in (32, 16, 8, 4, 2):
            if h % (4 * k) == 0 and w % (4 * k) == 0 and h // k >= 8 and w // k >= 8:
                small = (1, c, h // k, w // k)
                with using_widths(model, None):
                    full = count_macs(model, (1, c, h, w))
                    reduced = count_macs(model, small)
                if reduced * k * k == full:
                    self.scale, self.small_size = k * k, small
                    self.cache[space.encode(space.largest())] = float(full) * b
                break
        self.batch = b

    def macs(self, config: Sequence[int]) -> int:
        return int(self(config))

    def __call__(self, config: Sequence[int]) -> float:
        key = self.space.encode(config)
        if key not in self.cache:
            with using_widths(self.model, self.space.widths(config)):
                self.cache[key] = float(count_macs(self.model, self.small_size) * self.scale
                                        * self.batch)
        return self.cache[key]

    def cheapest(self) -> tuple[Config, float]:
        """Smallest reachable cost: MACs grow with every width, so the narrowest config."""
        config = self.space.smallest()
        return config, self(config)


class LatencyCost:
    """Predicted latency in ms from `gancompress.deploy.latency.LatencyModel` (imported lazily).

    LatencyModel API: load_or_build(model, space, input_size, device, backend, cache_dir),
    .predict(config) -> ms, .measure(config) -> ms, .fastest() -> (config, ms).
    """

    unit = "ms"
    kind = "latency"

    def __init__(self, model: ElasticGenerator, space: SearchSpace,
                 input_size: Sequence[int] = (1, 3, 256, 256), device: str = "cpu",
                 backend: str = "torch", cache_dir: str | Path | None = None):
        try:
            from gancompress.deploy.latency import LatencyModel
        except ImportError as err:
            raise UserError(f"latency budgets need gancompress.deploy.latency, which cannot be "
                            f"imported here ({err}); give the budget in MACs (e.g. 3G or 1/20)"
                            ) from None
        self.space = space
        self.latency = LatencyModel.load_or_build(model, space, input_size=tuple(input_size),
                                                  device=device, backend=backend,
                                                  cache_dir=cache_dir)
        self.cache: dict[str, float] = {}

    def __call__(self, config: Sequence[int]) -> float:
        key = self.space.encode(config)
        if key not in self.cache:
            self.cache[key] = float(self.latency.predict(list(config)))
        return self.cache[key]

    def cheapest(self) -> tuple[Config, float]:
        config, ms = self.latency.fastest()
        return list(config), float(ms)


def check_budget(budget: Budget, cost: MacCost | LatencyCost, space: SearchSpace,
                 teacher_cost: float | None = None) -> None:
    """Fail at once, with the numbers, on a budget that no sub-network meets or that does not
    compress the teacher."""
    config, cheapest = cost.cheapest()
    shown = (lambda v: f"{v:.3g} ms") if budget.kind == "latency" else \
        (lambda v: f"{format_count(v)} MACs" + (f" ({int(v):,})" if v >= 1000 else ""))
    if budget.value < cheapest:
        raise UserError(f"budget {budget.text!r} ({shown(budget.value)}) is below the smallest "
                        f"sub-network of search space {space.name}: {space.encode(config)} needs "
                        f"{shown(cheapest)}; raise the budget to at least that")
    if teacher_cost is not None and budget.value >= teacher_cost:
        raise UserError(f"budget {budget.text!r} ({shown(budget.value)}) is not below the "
                        f"teacher's {shown(teacher_cost)}: nothing to compress; choose a smaller "
                        f"budget, e.g. 1/10")


# ----------------------------------------------------------------------------------------------
# Scorers (config -> quality number)

def _psnr(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of images in [-1, 1] (peak 1 on the [0, 1] scale)."""
    mse = (((fake - real) / 2) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return -10 * torch.log10(mse)


class ReconstructionScorer:
    """Error of a sub-network on a fixed held-out set of (source, reference) batches.

    metric 'l1' (mean absolute error in [-1, 1] units, lower is better) or 'psnr' (dB, higher is
    better). The reference is the ground truth on paired data, or the teacher's output on unpaired
    data (distance to the teacher). BatchNorm generators are re-calibrated per sub-network on
    `calibration` batches first (REFERENCE.md sec. 4).
    """

    def __init__(self, model: ElasticGenerator, space: SearchSpace,
                 batches: Sequence[tuple[torch.Tensor, torch.Tensor]], metric: str = "l1",
                 reference: str = "target", calibration: Sequence[torch.Tensor] | None = None,
                 device: str | torch.device = "cpu"):
        if metric not in ("l1", "psnr"):
            raise UserError(f"unknown reconstruction metric {metric!r}; use l1 or psnr")
        if not batches:
            raise UserError("the held-out set for scoring is empty; use more training images or "
                            "a larger held-out fraction")
        self.model, self.space, self.metric, self.reference = model, space, metric, reference
        self.device = torch.device(device)
        self.batches = [(s.to(self.device), r.to(self.device)) for s, r in batches]
        self.calibration = [c.to(self.device) for c in calibration] if calibration else None
        self.name = f"{metric}-to-{reference}"
        self.higher_is_better = metric == "psnr"

    def identity(self) -> dict[str, Any]:
        digest = hashlib.sha256()
        for s, r in self.batches:
            digest.update(s.detach().cpu().numpy().tobytes())
            digest.update(r.detach().cpu().numpy().tobytes())
        return {"metric": self.name, "held_out": sum(len(s) for s, _ in self.batches),
                "held_out_sha256": digest.hexdigest()[:16]}

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module) -> float:
        """Score any generator (teacher, compact model) on the same held-out set."""
        was_training = model.training
        model.eval()
        total, count = 0.0, 0
        try:
            for source, ref in self.batches:
                fake = model(source)
                if self.metric == "l1":
                    total += (fake - ref).abs().flatten(1).mean(1).sum().item()
                else:
                    total += _psnr(fake, ref).sum().item()
                count += len(source)
        finally:
            model.train(was_training)
        return total / count

    def __call__(self, config: Sequence[int]) -> float:
        widths = self.space.widths(config)
        if self.calibration is not None:
            recalibrate_bn(self.model, self.calibration, widths)
        with using_widths(self.model, widths):
            return self.evaluate(self.model)


class DistributionScorer:
    """FID or KID of a sub-network's outputs on the held-out sources, through the metrics
    helper's scorers (`gancompress.metrics.fid.FIDScorer`, `gancompress.metrics.kid.KIDScorer`:
    `.score(iterable of (B, C, H, W) images in [-1, 1]) -> float`, `.protocol() -> dict`).
    Lower is better. `reference_name` identifies the reference statistics for resume checks.
    """

    higher_is_better = False

    def __init__(self, model: ElasticGenerator, space: SearchSpace, sources: Sequence[torch.Tensor],
                 metric_scorer: Any, name: str = "fid", reference_name: str = "reference",
                 device: str | torch.device = "cpu"):
        self.model, self.space, self.metric_scorer, self.name = model, space, metric_scorer, name
        self.device = torch.device(device)
        self.sources = [s.to(self.device) for s in sources]
        self.reference_name = reference_name

    @classmethod
    def from_statistics(cls, model: ElasticGenerator, space: SearchSpace,
                        sources: Sequence[torch.Tensor], statistics: str | Path, kind: str = "fid",
                        device: str | torch.device = "cpu", **weights) -> DistributionScorer:
        """FID / KID against a reference statistics file (`gancompress stats`)."""
        if kind == "kid":
            from gancompress.metrics.kid import KIDScorer as Metric
        else:
            from gancompress.metrics.fid import FIDScorer as Metric
        return cls(model, space, sources, Metric(str(statistics), device=device, **weights),
                   kind, reference_name=f"{Path(statistics).name}:{file_fingerprint(statistics)}",
                   device=device)

    def identity(self) -> dict[str, Any]:
        return {"metric": self.name, "reference": self.reference_name,
                "held_out": sum(len(s) for s in self.sources)}

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module) -> float:
        was_training = model.training
        model.eval()
        try:
            fakes = [model(s) for s in self.sources]
        finally:
            model.train(was_training)
        return float(self.metric_scorer.score(fakes))

    def __call__(self, config: Sequence[int]) -> float:
        with using_widths(self.model, self.space.widths(config)):
            return self.evaluate(self.model)


# ----------------------------------------------------------------------------------------------
# Search algorithms

@dataclass
class EvolutionSettings:
    """Published defaults (Fast GAN Compression; REFERENCE.md sec. 3) except `generations`."""

    population: int = 100
    parents: int = 25
    mutants: int = 50
    crossovers: int = 50
    mutate_prob: float = 0.2
    generations: int = 500
    max_tries: int = 500  # rejection-sampling attempts before shrinking a candidate to fit

    def check(self) -> EvolutionSettings:
        if self.population < 1 or self.generations < 1:
            raise UserError("evolution needs population >= 1 and generations >= 1")
        if not 1 <= self.parents <= self.population:
            raise UserError(f"evolution parents must be in 1..population ({self.population}), "
                            f"got {self.parents}")
        if self.mutants < 0 or self.crossovers < 0 or not 0 <= self.mutate_prob <= 1:
            raise UserError("evolution mutants/crossovers must be >= 0 and mutate_prob in [0, 1]")
        return self


@dataclass
class Candidate:
    """One evaluated sub-network."""

    config: str
    cost: float
    score: float
    macs: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class _Fitter:
    """Draws configs that fit the budget: rejection sampling, then a guaranteed fallback."""

    def __init__(self, space: SearchSpace, cost: Callable[[Sequence[int]], float], budget: float,
                 rng: random.Random, max_tries: int):
        self.space, self.cost, self.budget = space, cost, budget
        self.rng, self.max_tries = rng, max_tries

    def fits(self, config: Sequence[int]) -> bool:
        return self.cost(config) <= self.budget

    def draw(self, propose: Callable[[], Config]) -> Config:
        for _ in range(self.max_tries):
            config = propose()
            if self.fits(config):
                return config
        return self.shrink(propose())

    def shrink(self, config: Config) -> Config:
        """Narrow random positions one step at a time until the config fits (the narrowest config
        fits, as check_budget ensured, so this ends)."""
        config = list(config)
        while not self.fits(config):
            wider = [i for i, c in enumerate(config) if c != min(self.space.choices[i])]
            if not wider:
                raise UserError("no sub-network fits the budget")  # check_budget prevents this
            i = self.rng.choice(wider)
            smaller = [v for v in self.space.choices[i] if v < config[i]]
            config[i] = max(smaller)
        return config


def _rank_key(score: float, higher_is_better: bool) -> float:
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return math.inf
    return -score if higher_is_better else score


def evolution_search(space: SearchSpace, cost: Callable[[Sequence[int]], float],
                     score: Callable[[Sequence[int]], float], budget: float,
                     settings: EvolutionSettings | None = None, seed: int = 0,
                     higher_is_better: bool = False,
                     on_generation: Callable[[int, Config, float], None] | None = None
                     ) -> tuple[Config, float]:
    """Evolutionary search (Fast GAN Compression): returns (best config, its score).

    Deterministic for a given seed and deterministic `score`, which is what makes resume exact:
    a restarted search replays the same generations and finds every earlier score in the cache.
    """
    s = (settings or EvolutionSettings()).check()
    rng = random.Random(seed)
    fitter = _Fitter(space, cost, budget, rng, s.max_tries)

    def key(config: Config) -> tuple:
        return (_rank_key(score(config), higher_is_better), cost(config), space.encode(config))

    def mutate(parent: Config) -> Config:
        return [rng.choice(space.choices[i]) if rng.random() < s.mutate_prob else v
                for i, v in enumerate(parent)]

    def crossover(a: Config, b: Config) -> Config:
        return [rng.choice((x, y)) for x, y in zip(a, b)]

    population = [fitter.draw(lambda: space.sample(rng)) for _ in range(s.population)]
    best: Config = population[0]
    for generation in range(s.generations):
        ranked = sorted(population, key=key)
        parents = ranked[: s.parents]
        best = parents[0]
        if on_generation is not None:
            on_generation(generation, best, score(best))
        if generation == s.generations - 1:
            break
        mutants = [fitter.draw(lambda: mutate(rng.choice(parents))) for _ in range(s.mutants)]
        crossed = [fitter.draw(lambda: crossover(rng.choice(parents), rng.choice(parents)))
                   for _ in range(s.crossovers)]
        population = parents + mutants + crossed
    return best, score(best)


def exhaustive_search(space: SearchSpace, cost: Callable[[Sequence[int]], float],
                      score: Callable[[Sequence[int]], float], budget: float,
                      higher_is_better: bool = False, max_size: int = 20000
                      ) -> tuple[Config, float]:
    """Score every config under the budget (GAN Compression's brute force); small spaces only."""
    if space.size > max_size:
        raise UserError(f"search space {space.name} has {space.size:,} configs, too many for "
                        f"exhaustive search (limit {max_size:,}); use the evolutionary search")
    fitting = [c for c in space.all() if cost(c) <= budget]
    if not fitting:
        raise UserError("no sub-network fits the budget")
    best = min(fitting, key=lambda c: (_rank_key(score(c), higher_is_better), cost(c),
                                       space.encode(c)))
    return best, score(best)


def pareto_front(points: Iterable[Candidate], higher_is_better: bool = False) -> list[Candidate]:
    """Candidates not beaten in both cost and score by another, sorted by cost."""
    front: list[Candidate] = []
    best = math.inf
    for c in sorted(points, key=lambda c: (c.cost, _rank_key(c.score, higher_is_better))):
        k = _rank_key(c.score, higher_is_better)
        if k < best:
            front.append(c)
            best = k
    return front


# ----------------------------------------------------------------------------------------------
# A search folder: identity, cache and resume, outputs

SEARCH_FORMAT = "gancompress-search"


def file_fingerprint(path: str | Path) -> str:
    """SHA-256 (first 16 hex digits) of a file: which supernet a search folder belongs to."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


class SearchRun:
    """The output folder of one search: `search.json` (what was searched), `results.jsonl` (one
    line per scored sub-network, appended as it is scored: the cache that makes a killed search
    resumable), `best.json`, `pareto.json` and `pareto.png`.

    `identity` must describe everything the scores depend on (supernet file, space, metric,
    held-out set, cost model). A folder written for another identity is refused, never mixed.
    """

    def __init__(self, out_dir: str | Path, identity: Mapping[str, Any]):
        self.dir = Path(out_dir)
        self.identity = json.loads(json.dumps(dict(identity), default=str))
        self.results_path = self.dir / "results.jsonl"
        self.header_path = self.dir / "search.json"
        self.records: dict[str, Candidate] = {}
        if self.dir.exists() and not self.dir.is_dir():
            raise UserError(f"search output {self.dir} exists and is not a folder")
        if self.header_path.exists():
            try:
                header = json.loads(self.header_path.read_text())
            except (OSError, json.JSONDecodeError) as err:
                raise UserError(f"{self.header_path} is not readable JSON ({err}); it is not a "
                                f"gancompress search folder, choose another output folder"
                                ) from None
            if header.get("format") != SEARCH_FORMAT:
                raise UserError(f"{self.dir} is not a gancompress search folder; choose another "
                                f"output folder")
            old = header.get("identity", {})
            if old != self.identity:
                diff = [k for k in sorted(set(old) | set(self.identity))
                        if old.get(k) != self.identity.get(k)]
                details = "; ".join(f"{k}: {old.get(k)!r} there, {self.identity.get(k)!r} now"
                                    for k in diff[:3])
                raise UserError(f"{self.dir} holds a search of a different supernet or setting "
                                f"({details}); its cached scores do not apply. Choose another "
                                f"output folder (nothing was changed)")
        elif self.dir.exists() and any(self.dir.iterdir()):
            raise UserError(f"search output folder {self.dir} is not empty and holds no "
                            f"search.json; choose a new or empty folder (nothing was changed)")
        self._load()

    def _load(self) -> None:
        if not self.results_path.exists():
            return
        with open(self.results_path) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                    cand = Candidate(rec["config"], float(rec["cost"]), float(rec["score"]),
                                     rec.get("macs"), rec.get("extra", {}))
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue  # a line cut short by a kill: that config is simply scored again
                self.records[cand.config] = cand

    def start(self, info: Mapping[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.header_path.exists():
            atomic_write_text(self.header_path, json.dumps(
                {"format": SEARCH_FORMAT, "version": 1, "identity": self.identity, **info},
                indent=2, default=str) + "\n")

    def append(self, cand: Candidate) -> None:
        """Record a freshly scored config; flushed and fsynced so a kill loses at most one line."""
        self.records[cand.config] = cand
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.results_path, "a") as f:
            f.write(json.dumps(asdict(cand), default=float) + "\n")
            f.flush()
            os.fsync(f.fileno())


@dataclass
class SearchOutcome:
    best: str
    score: float
    cost: float
    macs: float | None
    evaluated: int  # configs scored in this run
    cached: int  # configs whose score came from the cache
    seconds: float
    front: list[Candidate]


def run_search(space: SearchSpace, cost: MacCost | LatencyCost, scorer: Any, budget: Budget,
               out_dir: str | Path, identity: Mapping[str, Any], method: str = "evolution",
               settings: EvolutionSettings | None = None, seed: int = 0,
               max_evaluations: int | None = None, macs: MacCost | None = None,
               teacher: Mapping[str, float] | None = None,
               log: Callable[[str], None] = print) -> SearchOutcome:
    """Search `space` under `budget` in folder `out_dir`, reusing its cached scores.

    `max_evaluations` stops after that many new scores (raises `SearchInterrupted`): a stand-in
    for a kill, used by tests. `teacher` = {"score": ..., "cost": ...} is drawn on the plot.
    """
    if method not in ("evolution", "exhaustive"):
        raise UserError(f"unknown search method {method!r}; use evolution or exhaustive")
    if budget.kind == "fraction":
        raise UserError("resolve a fractional budget against the teacher first (Budget.resolve)")
    check_budget(budget, cost, space)  # before anything is written
    run = SearchRun(out_dir, {**identity, "cost": cost.kind})
    run.start({"space": {"name": space.name, "choices": [list(c) for c in space.choices]},
               "higher_is_better": bool(getattr(scorer, "higher_is_better", False))})
    higher = bool(getattr(scorer, "higher_is_better", False))
    stats = {"new": 0, "cached": 0}
    started = time.perf_counter()

    def score(config: Sequence[int]) -> float:
        key = space.encode(config)
        if key in run.records:
            if key not in seen:
                stats["cached"] += 1
                seen.add(key)
            return run.records[key].score
        if max_evaluations is not None and stats["new"] >= max_evaluations:
            raise SearchInterrupted(stats["new"])
        t0 = time.perf_counter()
        value = float(scorer(config))
        seen.add(key)
        stats["new"] += 1
        run.append(Candidate(key, cost(config), value,
                             None if macs is None else macs(config),
                             {"seconds": round(time.perf_counter() - t0, 4)}))
        return value

    seen: set[str] = set()

    def on_generation(gen: int, best: Config, value: float) -> None:
        log(f"generation {gen + 1}/{settings_used.generations}: best {space.encode(best)} "
            f"{scorer.name} {value:.5g} at {_fmt_cost(cost(best), cost.unit)} "
            f"({stats['new']} scored, {stats['cached']} from cache)")

    settings_used = (settings or EvolutionSettings()).check()
    if method == "evolution":
        best, value = evolution_search(space, cost, score, budget.value, settings_used, seed,
                                       higher, on_generation)
    else:
        best, value = exhaustive_search(space, cost, score, budget.value, higher)
    key = space.encode(best)
    in_budget = [c for c in run.records.values() if c.config in seen]
    front = pareto_front(in_budget if in_budget else run.records.values(), higher)
    outcome = SearchOutcome(key, value, cost(best), None if macs is None else macs(best),
                            stats["new"], stats["cached"], time.perf_counter() - started, front)
    result = {"best": key, "widths": space.widths(best), "score": value, "metric": scorer.name,
              "higher_is_better": higher, "cost": outcome.cost, "cost_unit": cost.unit,
              "macs": outcome.macs, "budget": {"text": budget.text, "kind": budget.kind,
                                               "value": budget.value},
              "method": method, "seed": seed,
              "settings": asdict(settings_used) if method == "evolution" else None,
              "evaluated": outcome.evaluated, "from_cache": outcome.cached,
              "seconds": round(outcome.seconds, 2),
              "pareto": [asdict(c) for c in front], "teacher": dict(teacher) if teacher else None}
    atomic_write_text(run.dir / "best.json", json.dumps(result, indent=2, default=float) + "\n")
    save_pareto_plot(list(run.records.values()), front, run.dir / "pareto.png",
                     metric=scorer.name, unit=cost.unit, budget=budget.value, best=key,
                     teacher=teacher)
    log(f"best {key}: {scorer.name} {value:.5g} at {_fmt_cost(outcome.cost, cost.unit)} "
        f"(budget {budget.describe()}); {outcome.evaluated} scored, {outcome.cached} from cache")
    return outcome


class SearchInterrupted(Exception):
    """Raised by run_search when max_evaluations new scores were made (a simulated kill)."""


def _fmt_cost(value: float, unit: str) -> str:
    return f"{value:.3g} ms" if unit == "ms" else f"{format_count(value)} MACs"


def save_pareto_plot(points: Sequence[Candidate], front: Sequence[Candidate], path: str | Path,
                     metric: str, unit: str = "MACs", budget: float | None = None,
                     best: str | None = None, teacher: Mapping[str, float] | None = None) -> None:
    """Scatter of every scored sub-network (cost vs score), the Pareto front, the budget line,
    the chosen config and the teacher; PNG, written atomically (matplotlib Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    biggest = max([p.cost for p in points] + [budget or 0.0])
    if unit == "ms":
        scale, xlabel = 1.0, "latency (ms)"
    else:  # MACs in the papers' units, or MMACs for small images
        scale, xlabel = (1e9, "GMACs") if biggest >= 1e9 else (1e6, "MMACs")
    if points:
        ax.scatter([p.cost / scale for p in points], [p.score for p in points], s=10,
                   color="0.65", label=f"sub-networks ({len(points)})")
    if front:
        ax.plot([p.cost / scale for p in front], [p.score for p in front], "o-", color="C0",
                ms=4, label="Pareto front")
    if budget is not None:
        ax.axvline(budget / scale, color="C3", ls="--", lw=1, label="budget")
    chosen = [p for p in points if p.config == best]
    if chosen:
        ax.scatter([chosen[0].cost / scale], [chosen[0].score], marker="*", s=160, color="C1",
                   zorder=5, label=f"chosen {best}")
    if teacher and teacher.get("score") is not None:
        ax.axhline(teacher["score"], color="C2", ls=":", lw=1, label="teacher")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
