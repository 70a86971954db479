"""Budgets, cost functions, evolution / exhaustive search, resume and outputs (search.py)."""
from __future__ import annotations

import json
import pickle
import random
import sys
import types

import pytest
import torch

from gancompress.compress.budget import Budget, LatencyCost, MacCost, check_budget, parse_budget
from gancompress.compress.scoring import ReconstructionScorer
from gancompress.compress.search import (
    Candidate,
    EvolutionSettings,
    SearchInterrupted,
    evolution_search,
    exhaustive_search,
    pareto_front,
    run_search,
)
from gancompress.compress.space import SearchSpace
from gancompress.errors import UserError
from gancompress.metrics.cost import count_macs
from gancompress.models.resnet import ResnetGenerator, decode_config

SPACE = SearchSpace("tiny", ((8, 4),) * 8, decode_config)  # 256 configs of an ngf-8 generator


@pytest.fixture(scope="module")
def supernet():
    torch.manual_seed(0)
    return ResnetGenerator(ngf=8, n_blocks=3, conv="separable").eval()


@pytest.fixture(scope="module")
def macs(supernet):
    return MacCost(supernet, SPACE, (1, 3, 64, 64))


class SyntheticScore:
    """Deterministic score of a config (lower is better): wider is better, with a bumpy term."""

    name = "synthetic"
    higher_is_better = False

    def __init__(self):
        self.calls = 0

    def __call__(self, config):
        self.calls += 1
        bump = random.Random("_".join(map(str, config))).random() * 0.3
        return sum(1.0 / c * w for c, w in zip(config, (3, 1, 4, 1, 5, 9, 2, 6))) + bump


@pytest.mark.parametrize("text,kind,value", [
    ("3e9", "macs", 3e9), ("3G", "macs", 3e9), ("2.5GMACs", "macs", 2.5e9), ("750M", "macs", 7.5e8),
    ("1/20", "fraction", 0.05), ("5%", "fraction", 0.05), ("30ms", "latency", 30.0),
    ("0.5s", "latency", 500.0), (" 4.9e9 ", "macs", 4.9e9)])
def test_parse_budget(text, kind, value):
    budget = parse_budget(text)
    assert budget.kind == kind and budget.value == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "abc", "3X", "0.05", "2/1", "0%", "150%", "-3G", "1/0",
                                  "0ms"])
def test_parse_budget_invalid(text):
    with pytest.raises(UserError):
        parse_budget(text)


def test_fraction_resolves_against_teacher():
    assert parse_budget("1/20").resolve(56_831_770_624).value == pytest.approx(2_841_588_531.2)
    with pytest.raises(UserError, match="teacher"):
        parse_budget("5%").resolve(None)


def test_mac_cost_is_exact(supernet, macs):
    from gancompress.models.elastic import using_widths
    assert macs.scale > 1  # the fast path (smaller input, scaled count) is in use
    rng = random.Random(1)
    for config in [SPACE.largest(), SPACE.smallest()] + [SPACE.sample(rng) for _ in range(3)]:
        with using_widths(supernet, SPACE.widths(config)):
            assert macs(config) == count_macs(supernet, (1, 3, 64, 64))


def test_impossible_budget_names_smallest(macs):
    smallest = int(macs(SPACE.smallest()))
    with pytest.raises(UserError, match=f"{smallest:,}") as err:
        check_budget(Budget("macs", smallest - 1, "tiny"), macs, SPACE)
    assert "4_4_4_4_4_4_4_4" in str(err.value)
    check_budget(Budget("macs", smallest, "ok"), macs, SPACE)  # exactly the smallest is fine
    with pytest.raises(UserError, match="not below the teacher"):
        check_budget(Budget("macs", 2 * smallest, "x"), macs, SPACE, teacher_cost=smallest * 1.5)


def test_evolution_respects_budget_and_matches_exhaustive(macs):
    budget = 0.5 * (macs(SPACE.largest()) + macs(SPACE.smallest()))
    score = SyntheticScore()
    seen = []

    def cost(c):
        return macs(c)

    def recording_score(c):
        seen.append(list(c))
        return score(c)

    settings = EvolutionSettings(population=20, parents=5, mutants=10, crossovers=10,
                                 generations=25, mutate_prob=0.3)
    best, value = evolution_search(SPACE, cost, recording_score, budget, settings, seed=3)
    assert all(macs(c) <= budget for c in seen)  # rejection sampling: nothing over budget scored
    ex_best, ex_value = exhaustive_search(SPACE, cost, score, budget)
    assert best == ex_best and value == ex_value
    assert any(macs(c) > budget for c in SPACE.all())  # the budget does bind


def test_tight_budget_narrows_candidates_instead_of_drawing_for_long(macs):
    # just above the narrowest config nothing random fits: each candidate is drawn a bounded
    # number of times, then narrowed until it fits (a few cost evaluations per position)
    budget = 1.02 * macs(SPACE.smallest())
    assert sum(macs(c) <= budget for c in SPACE.all()) == 1  # only the narrowest fits
    calls = []

    def cost(c):
        calls.append(list(c))
        return macs(c)

    settings = EvolutionSettings(population=10, parents=3, mutants=5, crossovers=5,
                                 generations=2)
    best, _ = evolution_search(SPACE, cost, SyntheticScore(), budget, settings, seed=0)
    assert best == SPACE.smallest()
    drawn = 10 + 2 * (5 + 5)  # candidates drawn over the search
    per_candidate = settings.max_tries + 1 + 8  # tries, the shrunk proposal, <= 8 narrowings
    assert len(calls) <= 3 * drawn * per_candidate  # (ranking also asks for costs)


def _identity():
    return {"supernet": "abc", "space": "tiny", "metric": "synthetic"}


def test_search_resumes_after_kill(tmp_path, macs):
    budget = Budget("macs", 0.6 * macs(SPACE.largest()), "60%")
    settings = EvolutionSettings(population=12, parents=4, mutants=6, crossovers=6, generations=6)
    full = SyntheticScore()
    reference = run_search(SPACE, macs, full, budget, tmp_path / "ref", _identity(),
                           settings=settings, seed=5, log=lambda s: None)

    first = SyntheticScore()
    with pytest.raises(SearchInterrupted):
        run_search(SPACE, macs, first, budget, tmp_path / "s", _identity(), settings=settings,
                   seed=5, max_evaluations=7, log=lambda s: None)
    lines = (tmp_path / "s" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 7 and first.calls == 7
    with open(tmp_path / "s" / "results.jsonl", "a") as f:
        f.write('{"config": "8_8_')  # a line cut short by the kill
    second = SyntheticScore()
    resumed = run_search(SPACE, macs, second, budget, tmp_path / "s", _identity(),
                         settings=settings, seed=5, log=lambda s: None)
    assert resumed.best == reference.best and resumed.score == reference.score
    assert resumed.cached == 7 and second.calls == full.calls - 7
    best = json.loads((tmp_path / "s" / "best.json").read_text())
    assert best["best"] == reference.best and best["cost"] <= budget.value
    assert (tmp_path / "s" / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for line in (tmp_path / "ref" / "results.jsonl").read_text().splitlines():
        assert json.loads(line)["cost"] <= budget.value


def test_search_folder_of_other_supernet_is_refused(tmp_path, macs):
    budget = Budget("macs", macs(SPACE.largest()), "all")
    settings = EvolutionSettings(population=4, parents=2, mutants=1, crossovers=1, generations=1)
    run_search(SPACE, macs, SyntheticScore(), budget, tmp_path, _identity(), settings=settings,
               log=lambda s: None)
    before = (tmp_path / "results.jsonl").read_text()
    with pytest.raises(UserError, match="different supernet"):
        run_search(SPACE, macs, SyntheticScore(), budget, tmp_path,
                   {**_identity(), "supernet": "x"}, settings=settings, log=lambda s: None)
    assert (tmp_path / "results.jsonl").read_text() == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        run_search(SPACE, macs, SyntheticScore(), budget, tmp_path / "other", _identity(),
                   settings=settings, log=lambda s: None)


def test_impossible_budget_writes_nothing(tmp_path, macs):
    with pytest.raises(UserError, match="below the smallest"):
        run_search(SPACE, macs, SyntheticScore(), Budget("macs", 10, "10"), tmp_path / "s",
                   _identity(), log=lambda s: None)
    assert not (tmp_path / "s").exists()


def test_pareto_front():
    pts = [Candidate("a", 1, 5), Candidate("b", 2, 3), Candidate("c", 3, 4), Candidate("d", 4, 1),
           Candidate("e", 2, 6)]
    assert [c.config for c in pareto_front(pts)] == ["a", "b", "d"]
    assert [c.config for c in pareto_front(pts, higher_is_better=True)] == ["a", "e"]


def test_reconstruction_scorer(supernet):
    source = torch.rand(2, 3, 32, 32) * 2 - 1
    config = [4, 8, 4, 8, 4, 8, 4, 8]
    from gancompress.models.elastic import compact
    small = compact(supernet, SPACE.widths(config)).eval()
    with torch.no_grad():
        target = small(source)
    l1 = ReconstructionScorer(supernet, SPACE, [(source, target)], "l1")
    assert l1(config) == pytest.approx(0.0, abs=1e-6)  # this sub-network made the target
    assert l1(SPACE.largest()) > 0.01
    psnr = ReconstructionScorer(supernet, SPACE, [(source, -target)], "psnr")
    expected = -10 * torch.log10((target ** 2).flatten(1).mean(1)).mean().item()  # ((t+t)/2)^2
    assert psnr.higher_is_better and psnr(config) == pytest.approx(expected, rel=1e-4)


def test_distribution_scorers_swd_and_colour(supernet):
    """compress.metric=swd / colour: the distance between the sub-network's outputs and the
    references as sets; zero for the sub-network that made the references, lower is better."""
    from gancompress.config import apply_overrides, preset
    from gancompress.metrics.colour import colour_distance
    from gancompress.metrics.swd import swd
    from gancompress.models.elastic import compact

    source = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    config = [4, 8, 4, 8, 4, 8, 4, 8]
    with torch.no_grad():
        target = compact(supernet, SPACE.widths(config)).eval()(source)
        largest = compact(supernet, SPACE.widths(SPACE.largest())).eval()(source)
    batches = [(source[:2], target[:2]), (source[2:], target[2:])]
    for metric, distance in (("swd", swd), ("colour", colour_distance)):
        scorer = ReconstructionScorer(supernet, SPACE, batches, metric)
        assert not scorer.higher_is_better and scorer.name == f"{metric}-to-target"
        assert scorer(config) == pytest.approx(0.0, abs=1e-6)
        assert scorer(SPACE.largest()) == pytest.approx(distance(largest, target), rel=1e-4)
        assert scorer(SPACE.largest()) > 0
        # search workers are spawned processes: the scorer travels pickled
        assert pickle.loads(pickle.dumps(scorer))(config) == pytest.approx(0.0, abs=1e-6)
    assert apply_overrides(preset("demo"), {"compress.metric": "swd"}).compress.metric == "swd"
    with pytest.raises(UserError, match="swd or colour"):
        ReconstructionScorer(supernet, SPACE, batches, "ssim")


def test_latency_budget_uses_latency_model(tmp_path, monkeypatch, supernet):
    calls = {}

    class FakeLatencyModel:
        @classmethod
        def load_or_build(cls, model, space, input_size, device, backend, cache_dir):
            calls["args"] = (space.name, input_size, device, backend)
            return cls()

        def predict(self, config):
            return float(sum(config))  # "ms"

        def fastest(self):
            return [4] * 8, 32.0

    module = types.ModuleType("gancompress.compress.latency")
    module.LatencyModel = FakeLatencyModel
    monkeypatch.setitem(sys.modules, "gancompress.compress.latency", module)
    cost = LatencyCost(supernet, SPACE, (1, 3, 64, 64))
    assert calls["args"] == ("tiny", (1, 3, 64, 64), "cpu", "torch")
    with pytest.raises(UserError, match="32 ms"):
        check_budget(parse_budget("20ms"), cost, SPACE)
    out = run_search(SPACE, cost, SyntheticScore(), parse_budget("40ms"), tmp_path, _identity(),
                     settings=EvolutionSettings(population=8, parents=3, mutants=3, crossovers=3,
                                                generations=3), log=lambda s: None)
    assert out.cost <= 40 and json.loads((tmp_path / "best.json").read_text())["cost_unit"] == "ms"
