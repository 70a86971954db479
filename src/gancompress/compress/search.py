"""Sub-network search under a budget: budgets, cost functions, scorers, evolution, exhaustive.

GAN Compression sec. 3.4 searches the trained once-for-all supernet for the sub-network with the
best quality under a compute budget (brute force); Fast GAN Compression replaces brute force by
evolution (docs/reference.md sec. 3: population 100, top 25 parents, 50 mutants, 50 crossovers, every
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
    ParallelScoring                       scores a generation's new candidates at once: across
                                          torchrun ranks, or N local processes (workers=N)
Parallel scoring changes where a score is computed, never which configs are scored: the search
is a pure function of the seed, so every rank (or the parent of the workers) replays the same
generations; a generation's unscored candidates are split over the processes in rounds of one
per process, and each round's scores are appended to results.jsonl (by rank 0) before the next,
so a killed parallel search resumes without rescoring what was saved.
Scores are "lower is better" internally; a scorer with higher_is_better (PSNR) is negated only
for ranking, and stored as measured.
"""
from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gancompress.compress.budget import Budget, LatencyCost, MacCost, check_budget
from gancompress.compress.space import Config, SearchSpace
from gancompress.errors import UserError
from gancompress.files import append_line, atomic_path, atomic_write_text, folder_is_empty
from gancompress.metrics.cost import format_count
from gancompress import distributed

# ----------------------------------------------------------------------------------------------
# Search algorithms

@dataclass
class EvolutionSettings:
    """Published defaults (Fast GAN Compression; docs/reference.md sec. 3) except `generations`."""

    population: int = 100
    parents: int = 25
    mutants: int = 50
    crossovers: int = 50
    mutate_prob: float = 0.2
    generations: int = 500
    # Rejection-sampling attempts before a candidate is narrowed until it fits. Each attempt
    # costs a cost evaluation (~4 ms for MACs); near the narrowest config almost nothing random
    # fits (1/40 of the demo teacher in a 16..4 space: none of 300 draws), and 500 attempts per
    # candidate made the search 13x slower there than 20 (bench: 90 s -> 7 s for 3
    # generations), with the same best config at 1/20 and 1/40.
    max_tries: int = 20

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
                     on_generation: Callable[[int, Config, float], None] | None = None,
                     prefetch: Callable[[list[Config]], None] | None = None
                     ) -> tuple[Config, float]:
    """Evolutionary search (Fast GAN Compression): returns (best config, its score).

    Deterministic for a given seed and deterministic `score`, which is what makes resume exact:
    a restarted search replays the same generations and finds every earlier score in the cache.
    `prefetch(population)` is called before each generation is ranked (parallel scoring fills
    the cache there; `score` then only reads it).
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
        if prefetch is not None:
            prefetch(population)
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
                      higher_is_better: bool = False, max_size: int = 20000,
                      prefetch: Callable[[list[Config]], None] | None = None
                      ) -> tuple[Config, float]:
    """Score every config under the budget (GAN Compression's brute force); small spaces only."""
    if space.size > max_size:
        raise UserError(f"search space {space.name} has {space.size:,} configs, too many for "
                        f"exhaustive search (limit {max_size:,}); use the evolutionary search")
    fitting = [c for c in space.all() if cost(c) <= budget]
    if not fitting:
        raise UserError("no sub-network fits the budget")
    if prefetch is not None:
        prefetch(fitting)
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


class SearchRun:
    """The output folder of one search: `search.json` (what was searched), `results.jsonl` (one
    line per scored sub-network, appended as it is scored: the cache that makes a killed search
    resumable), `best.json`, `pareto.json` and `pareto.png`.

    `identity` must describe everything the scores depend on (supernet file, space, metric,
    held-out set, cost model). A folder written for another identity is refused, never mixed.
    """

    def __init__(self, out_dir: str | Path, identity: Mapping[str, Any], writer: bool = True):
        """writer=False: an in-memory mirror (the ranks other than 0 of a parallel search: rank 0
        checks and writes the folder; its records are broadcast to the mirrors)."""
        self.dir = Path(out_dir)
        self.identity = json.loads(json.dumps(dict(identity), default=str))
        self.results_path = self.dir / "results.jsonl"
        self.header_path = self.dir / "search.json"
        self.records: dict[str, Candidate] = {}
        self.writer = writer
        if not writer:
            return
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
        elif self.dir.exists() and not folder_is_empty(self.dir):
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
        if not self.writer:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.header_path.exists():
            atomic_write_text(self.header_path, json.dumps(
                {"format": SEARCH_FORMAT, "version": 1, "identity": self.identity, **info},
                indent=2, default=str) + "\n")

    def append(self, cand: Candidate) -> None:
        """Record a freshly scored config; flushed and fsynced so a kill loses at most one line."""
        self.records[cand.config] = cand
        if not self.writer:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        # a line torn by a kill gets its newline first, so it never swallows this record
        append_line(self.results_path, json.dumps(asdict(cand), default=float), sync=True)


class ParallelScoring:
    """config -> (score, seconds) for lists of configs, on several processes at once.

    Under torchrun every rank holds the scorer and scores the configs i with i % world == rank,
    then the results are exchanged (all_gather), so every rank ends with every score. Otherwise,
    with workers > 1, a pool of `workers` local processes (spawned once, each receiving the
    scorer once, with cpu_threads / workers torch threads each) scores them. `width` is how many
    configs one round scores at once.
    """

    def __init__(self, scorer: Callable[[Sequence[int]], float], workers: int = 1):
        self.scorer = scorer
        self.ranks = distributed.active()
        self.width = distributed.world_size() if self.ranks else max(1, int(workers))
        self.pool = None
        if not self.ranks and self.width > 1:
            import torch
            import torch.multiprocessing as mp  # registers shared-memory pickling of tensors

            threads = max(1, torch.get_num_threads() // self.width)
            self.pool = mp.get_context("spawn").Pool(self.width, initializer=_worker_init,
                                                     initargs=(scorer, threads))

    def map(self, configs: Sequence[Config]) -> list[tuple[float, float]]:
        if self.pool is not None:
            return self.pool.map(_worker_score, [list(c) for c in configs], chunksize=1)
        if not self.ranks:
            return [_timed(self.scorer, c) for c in configs]
        rank, world = distributed.rank(), distributed.world_size()
        mine = {i: _timed(self.scorer, c) for i, c in enumerate(configs) if i % world == rank}
        merged: dict[int, tuple[float, float]] = {}
        for part in distributed.all_gather(mine):
            merged.update(part)
        return [merged[i] for i in range(len(configs))]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None


def _timed(scorer: Callable[[Sequence[int]], float], config: Sequence[int]) -> tuple[float, float]:
    t0 = time.perf_counter()
    value = float(scorer(config))
    return value, time.perf_counter() - t0


_WORKER_SCORER: Callable[[Sequence[int]], float] | None = None


def _worker_init(scorer: Callable[[Sequence[int]], float], threads: int) -> None:
    global _WORKER_SCORER
    import torch

    torch.set_num_threads(threads)
    _WORKER_SCORER = scorer


def _worker_score(config: Config) -> tuple[float, float]:
    assert _WORKER_SCORER is not None
    return _timed(_WORKER_SCORER, config)


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
               log: Callable[[str], None] = print, workers: int = 1) -> SearchOutcome:
    """Search `space` under `budget` in folder `out_dir`, reusing its cached scores.

    `max_evaluations` stops after that many new scores (raises `SearchInterrupted`): a stand-in
    for a kill, used by tests. `teacher` = {"score": ..., "cost": ...} is drawn on the plot.
    `workers` > 1 scores each generation's new candidates in that many local processes; under
    torchrun all ranks score (every rank must call run_search; rank 0 writes the folder).
    """
    if method not in ("evolution", "exhaustive"):
        raise UserError(f"unknown search method {method!r}; use evolution or exhaustive")
    if budget.kind == "fraction":
        raise UserError("resolve a fractional budget against the teacher first (Budget.resolve)")
    check_budget(budget, cost, space)  # before anything is written
    main = distributed.is_main()
    if not main:
        log = _silent
    higher = bool(getattr(scorer, "higher_is_better", False))
    run = SearchRun(out_dir, {**identity, "cost": cost.kind}, writer=main)
    run.start({"space": {"name": space.name, "choices": [list(c) for c in space.choices]},
               "higher_is_better": higher})
    run.records = distributed.broadcast(run.records)  # rank 0 read the cache
    stats = {"new": 0, "cached": 0}
    started = time.perf_counter()
    seen: set[str] = set()

    def record(config: Sequence[int], value: float, seconds: float) -> None:
        key = space.encode(config)
        seen.add(key)
        stats["new"] += 1
        run.append(Candidate(key, cost(config), value, None if macs is None else macs(config),
                             {"seconds": round(seconds, 4)}))

    def score(config: Sequence[int]) -> float:
        key = space.encode(config)
        if key in run.records:
            if key not in seen:
                stats["cached"] += 1
                seen.add(key)
            return run.records[key].score
        if max_evaluations is not None and stats["new"] >= max_evaluations:
            raise SearchInterrupted(stats["new"])
        value, seconds = _timed(scorer, config)
        record(config, value, seconds)
        return value

    parallel = ParallelScoring(scorer, workers)

    def prefetch(configs: list[Config]) -> None:
        todo: dict[str, Config] = {}
        for c in configs:
            key = space.encode(c)
            if key not in run.records and key not in todo:
                todo[key] = list(c)
        pending = list(todo.values())
        while pending:
            n = parallel.width
            if max_evaluations is not None:
                n = min(n, max_evaluations - stats["new"])
                if n <= 0:
                    raise SearchInterrupted(stats["new"])
            chunk, pending = pending[:n], pending[n:]
            for config, (value, seconds) in zip(chunk, parallel.map(chunk)):
                record(config, value, seconds)

    def on_generation(gen: int, best: Config, value: float) -> None:
        log(f"generation {gen + 1}/{settings_used.generations}: best {space.encode(best)} "
            f"{scorer.name} {value:.5g} at {_fmt_cost(cost(best), cost.unit)} "
            f"({stats['new']} scored, {stats['cached']} from cache)")

    settings_used = (settings or EvolutionSettings()).check()
    hook = prefetch if parallel.width > 1 else None  # one process: score lazily, as always
    try:
        if method == "evolution":
            best, value = evolution_search(space, cost, score, budget.value, settings_used, seed,
                                           higher, on_generation, prefetch=hook)
        else:
            best, value = exhaustive_search(space, cost, score, budget.value, higher,
                                            prefetch=hook)
    finally:
        parallel.close()
    key = space.encode(best)
    in_budget = [c for c in run.records.values() if c.config in seen]
    front = pareto_front(in_budget if in_budget else run.records.values(), higher)
    outcome = SearchOutcome(key, value, cost(best), None if macs is None else macs(best),
                            stats["new"], stats["cached"], time.perf_counter() - started, front)
    result = {"best": key, "widths": space.widths(best), "score": value, "metric": scorer.name,
              "higher_is_better": higher, "cost": outcome.cost, "cost_unit": cost.unit,
              "cost_info": dict(getattr(cost, "info", {})),  # runtime + precision of the ms
              "macs": outcome.macs, "budget": {"text": budget.text, "kind": budget.kind,
                                               "value": budget.value},
              "method": method, "seed": seed,
              "settings": asdict(settings_used) if method == "evolution" else None,
              "evaluated": outcome.evaluated, "from_cache": outcome.cached,
              "seconds": round(outcome.seconds, 2), "processes": parallel.width,
              "pareto": [asdict(c) for c in front], "teacher": dict(teacher) if teacher else None}
    if main:
        save_pareto_plot(list(run.records.values()), front, run.dir / "pareto.png",
                         metric=scorer.name, unit=cost.unit, budget=budget.value, best=key,
                         teacher=teacher, runtime=getattr(cost, "info", {}).get("runtime"))
        # best.json marks the search done, so it is written last (a kill before it reruns the
        # plot from the cache; a kill after it leaves every file in place)
        atomic_write_text(run.dir / "best.json", json.dumps(result, indent=2, default=float) + "\n")
    log(f"best {key}: {scorer.name} {value:.5g} at {_fmt_cost(outcome.cost, cost.unit)} "
        f"(budget {budget.describe()}); {outcome.evaluated} scored, {outcome.cached} from cache"
        + (f" ({parallel.width} processes)" if parallel.width > 1 else ""))
    distributed.barrier()  # best.json exists for every rank
    return outcome


def _silent(message: str) -> None:
    pass


class SearchInterrupted(Exception):
    """Raised by run_search when max_evaluations new scores were made (a simulated kill)."""


def _fmt_cost(value: float, unit: str) -> str:
    return f"{value:.3g} ms" if unit == "ms" else f"{format_count(value)} MACs"


def save_pareto_plot(points: Sequence[Candidate], front: Sequence[Candidate], path: str | Path,
                     metric: str, unit: str = "MACs", budget: float | None = None,
                     best: str | None = None, teacher: Mapping[str, float] | None = None,
                     runtime: str | None = None) -> None:
    """Scatter of every scored sub-network (cost vs score), the Pareto front, the budget line,
    the chosen config and the teacher; PNG, written atomically (matplotlib Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    biggest = max([p.cost for p in points] + [budget or 0.0])
    if unit == "ms":
        scale, xlabel = 1.0, f"latency (ms{', ' + runtime if runtime else ''})"
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
