"""Data order as a pure function of (seed, epoch): resumable mid-epoch with no saved state.

`EpochBatchSampler(n, batch_size, seed, epoch, start=k)` yields the batches of epoch `epoch`
from batch `k` on; each element is an (index, epoch) key, so the dataset also derives its crops
and flips from (seed, epoch, index). A run resumed at step s therefore sees exactly the batches
an uninterrupted run would have seen, with any number of DataLoader workers.
"""
from __future__ import annotations

import math

import numpy as np
import torch


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """Permutation of range(n) used in `epoch` (tag 0 keeps it apart from the item streams)."""
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([0, seed % 2**32, epoch]).permutation(n)


class EpochBatchSampler(torch.utils.data.Sampler):
    """Batches of (index, epoch) keys for one epoch, starting at batch `start`.

    The last batch may be smaller (drop_last=False, as the reference).
    """

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, start: int = 0,
                 shuffle: bool = True):
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, epoch
        self.start, self.shuffle = start, shuffle

    @staticmethod
    def batches_per_epoch(n: int, batch_size: int) -> int:
        return math.ceil(n / batch_size)

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch(self.n, self.batch_size) - self.start)

    def __iter__(self):
        order = epoch_order(self.n, self.seed, self.epoch, self.shuffle)
        for b in range(self.start, self.batches_per_epoch(self.n, self.batch_size)):
            chunk = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield [(int(i), self.epoch) for i in chunk]
