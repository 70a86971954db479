"""Benchmark of the evaluation metrics, measured side by side in one run.

1. Inception feature throughput (images/s) of the FID Inception-v3, published preprocessing
   included (uint8 round trip, bilinear 299). The weights are RANDOM (same layout and compute as
   pt_inception-2015-12-05-6726825d.pth): speed does not depend on their values.
2. Frechet distance on 2048-d statistics from 2048 and 10,000 samples: statistics (mean +
   covariance), then Tr(sqrtm(S1 S2)) by
     sqrtm   scipy.linalg.sqrtm of the non-symmetric product (the published computation),
     eigh    sum sqrt(eig(S1^1/2 S2 S1^1/2)), two symmetric eigendecompositions (our default),
     scorer  FIDScorer's repeated-scoring path (reference root cached; n x n problem if n < D),
   with the values each gives, so agreement is visible next to the times.
Features are synthetic (ReLU of a random low-rank map plus noise, like pool3 activations: non-
negative, decaying spectrum), not real Inception outputs.

    .venv/bin/python bench/bench_metrics.py [--images 16] [--batch 8] [--device cpu]
                                            [--samples 2048,10000] [--skip-sqrtm]
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from gancompress.metrics.fid import FIDScorer, frechet_distance, inception_input, statistics
from gancompress.metrics.inception import FIDInceptionV3


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_inception(images: int, batch: int, device: torch.device, size: int) -> None:
    torch.manual_seed(0)
    model = FIDInceptionV3().to(device).eval()  # random weights: same compute as the real file
    x = torch.rand(images, 3, size, size, device=device) * 2 - 1
    with torch.no_grad():
        model(inception_input(x[:batch]))  # warm-up
        sync(device)
        start = time.perf_counter()
        for chunk in x.split(batch):
            model(inception_input(chunk))
        sync(device)
        elapsed = time.perf_counter() - start
    print(f"Inception-v3 features ({device}, {torch.get_num_threads()} threads, batch {batch}, "
          f"{size}px inputs -> 299, random weights): {images / elapsed:.2f} images/s "
          f"({elapsed / images * 1e3:.0f} ms/image over {images} images)")


def synthetic_features(n: int, rng: np.random.Generator, mix: np.ndarray, shift: float
                       ) -> np.ndarray:
    z = rng.standard_normal((n, mix.shape[1])) + shift
    return np.maximum(z @ mix.T * 0.3 + 0.2, 0) + 0.01 * rng.standard_normal((n, mix.shape[0]))


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def bench_distance(samples: list[int], skip_sqrtm: bool) -> None:
    rng = np.random.default_rng(0)
    dim, rank = 2048, 300
    mix = rng.standard_normal((dim, rank)) * np.exp(-np.arange(rank) / 40)
    print(f"\nFrechet distance, {dim}-d statistics (synthetic pool3-like features), "
          f"{torch.get_num_threads()} torch threads / numpy BLAS:")
    print(f"{'samples':>8} {'stats s':>8} {'method':>7} {'time s':>8} {'FID':>16} {'vs eigh':>10}")
    for n in samples:
        real = synthetic_features(n, rng, mix, 0.0)
        fake = synthetic_features(n, rng, mix, 0.05)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (ref, gen), t_stats = timed(lambda: (statistics(real), statistics(fake)))
            results = []
            eigh, t = timed(lambda: frechet_distance(*gen, *ref, method="eigh"))
            results.append(("eigh", t, eigh))
            if not skip_sqrtm:
                value, t = timed(lambda: frechet_distance(*gen, *ref, method="sqrtm"))
                results.append(("sqrtm", t, value))
            scorer = FIDScorer(ref, method="eigh", extractor=object())
            value, t = timed(lambda: scorer.score_features(fake))
            results.append(("scorer", t, value))
            value, t2 = timed(lambda: scorer.score_features(fake))
            results.append(("scorer2", t2, value))  # second call: reference root cached
        for i, (method, t, value) in enumerate(results):
            print(f"{n if i == 0 else '':>8} {f'{t_stats:.2f}' if i == 0 else '':>8} {method:>7} "
                  f"{t:8.2f} {value:16.8f} {abs(value - eigh) / abs(eigh):10.1e}")
    print("(stats s: mean + covariance of both sets; scorer includes the statistics of the "
          "generated set; scorer2 = a second call on the same scorer)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256, help="input image size (default 256)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--samples", default="2048,10000")
    parser.add_argument("--skip-sqrtm", action="store_true", help="skip the slow scipy sqrtm")
    parser.add_argument("--skip-inception", action="store_true")
    args = parser.parse_args()
    if not args.skip_inception:
        bench_inception(args.images, args.batch, torch.device(args.device), args.size)
    bench_distance([int(s) for s in args.samples.split(",")], args.skip_sqrtm)


if __name__ == "__main__":
    main()
