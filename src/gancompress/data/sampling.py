"""Data order as a pure function of (seed, epoch): resumable mid-epoch with no saved state.

`EpochBatchSampler(n, batch_size, seed, epoch, start=k)` yields the batches of epoch `epoch`
from batch `k` on; each element is an (index, epoch) key, so the dataset also derives its crops
and flips from (seed, epoch, index). A run resumed at step s therefore sees exactly the batches
an uninterrupted run would have seen, with any number of DataLoader workers.

Several processes (torchrun): `batch_size` is then the *global* batch and rank r of `world`
takes its contiguous slice of every global batch (np.array_split: equal slices, the last batch
of an epoch split as evenly as it goes). The global batch of step s is the same set of images
whatever the world size, so N processes at batch b train on exactly what one process at batch
N*b sees. A last global batch with fewer images than processes is dropped (some rank would get
none); `batches_per_epoch` counts it accordingly.
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


def rank_slice(batch: np.ndarray | list, rank: int, world: int):
    """Rank `rank`'s contiguous part of a global batch (all of it when world == 1)."""
    if world == 1:
        return batch
    # the sizes np.array_split gives: the first (len % world) parts one longer
    base, extra = divmod(len(batch), world)
    sizes = [base + (1 if r < extra else 0) for r in range(world)]
    start = sum(sizes[:rank])
    return batch[start:start + sizes[rank]]


class EpochBatchSampler(torch.utils.data.Sampler):
    """Batches of (index, epoch) keys for one epoch, starting at batch `start`.

    The last batch may be smaller (drop_last=False, as the reference). With `world` > 1 each
    batch is rank `rank`'s slice of the global batch of `batch_size` keys.
    """

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, start: int = 0,
                 shuffle: bool = True, rank: int = 0, world: int = 1):
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside 0..{world - 1}")
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, epoch
        self.start, self.shuffle, self.rank, self.world = start, shuffle, rank, world

    @staticmethod
    def batches_per_epoch(n: int, batch_size: int, world: int = 1) -> int:
        full, rest = divmod(n, batch_size)
        if world > 1 and 0 < rest < world and full > 0:
            return full  # the short last batch cannot give every rank an image
        return math.ceil(n / batch_size)

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch(self.n, self.batch_size, self.world) - self.start)

    def global_batch(self, b: int) -> np.ndarray:
        """Indices of global batch `b` of this epoch."""
        order = epoch_order(self.n, self.seed, self.epoch, self.shuffle)
        return order[b * self.batch_size:(b + 1) * self.batch_size]

    def __iter__(self):
        order = epoch_order(self.n, self.seed, self.epoch, self.shuffle)
        for b in range(self.start, self.batches_per_epoch(self.n, self.batch_size, self.world)):
            chunk = rank_slice(order[b * self.batch_size:(b + 1) * self.batch_size],
                               self.rank, self.world)
            yield [(int(i), self.epoch) for i in chunk]
