"""Benchmark: evolution search time at tight budgets, by rejection-sampling attempts per candidate.

    .venv/bin/python bench/bench_search.py [--repeats 3] [--budgets 1/20,1/40] [--tries 500,20]

The demo teacher's architecture (ResNet ngf 24, 6 blocks, 64 px) with the separable student
space 16,12,8,6,4 that bench_quality.py searches; MACs as the cost (search.MacCost, ~4 ms per
new config) and a synthetic score (the MACs used: the search's own work is what is timed, not
a scorer). For each budget and `max_tries`, the same seeds are searched side by side (population
50, 12 parents, 25 mutants, 25 crossovers, 3 generations, as `bench_quality.py --quick`):
median wall time and min..max over the repeats, the ratio, and the best config's share of the
budget (both must find configs that use it).
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time

import torch

from gancompress.compress.budget import MacCost
from gancompress.compress.search import EvolutionSettings, evolution_search
from gancompress.compress.space import SearchSpace
from gancompress.metrics.cost import count_macs
from gancompress.models.resnet import ResnetGenerator


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--budgets", default="1/20,1/40")
    p.add_argument("--tries", default="500,20", help="max_tries values, the old one first")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    teacher = ResnetGenerator(ngf=24, n_blocks=6)
    student = ResnetGenerator(ngf=24, n_blocks=6, conv="separable")
    space = SearchSpace.for_model(student, "16,12,8,6,4")
    size = (1, 3, 64, 64)
    teacher_macs = count_macs(teacher, size)
    tries = [int(t) for t in args.tries.split(",")]
    narrowest = MacCost(student, space, size)(space.smallest())
    print(f"space {space.size} configs; the narrowest is 1/{teacher_macs / narrowest:.1f} of "
          f"the teacher; {args.repeats} repeats (seeds 0..{args.repeats - 1})")
    print(f"{'budget':7s} {'max_tries':>9s} {'median s':>9s} {'min..max s':>14s} "
          f"{'best/budget':>11s}")
    for text in args.budgets.split(","):
        num, _, den = text.partition("/")
        budget = teacher_macs * float(num) / float(den)
        medians = []
        for t in tries:
            times, shares = [], []
            for seed in range(args.repeats):
                cost = MacCost(student, space, size)  # a fresh cache: every run pays for its own
                settings = dataclasses.replace(EvolutionSettings(), population=50, parents=12,
                                               mutants=25, crossovers=25, generations=3,
                                               max_tries=t)
                start = time.perf_counter()
                best, _ = evolution_search(space, cost, lambda c: -cost(c), budget, settings,
                                           seed=seed)
                times.append(time.perf_counter() - start)
                shares.append(cost(best) / budget)
            medians.append(statistics.median(times))
            print(f"{text:7s} {t:9d} {medians[-1]:9.1f} {min(times):6.1f}..{max(times):<6.1f} "
                  f"{statistics.fmean(shares):11.3f}")
        print(f"{text:7s} speed-up max_tries {tries[0]} -> {tries[-1]}: "
              f"{medians[0] / medians[-1]:.1f}x (median over {args.repeats} seeds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
