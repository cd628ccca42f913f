"""Batch samplers that make training reproducible, resumable and distributable.

The training sampler yields batches of *sample keys* ``(index, seed)``: the
dataset draws the random crop and flip of a sample from its own seed, so a
sample does not depend on which worker process loads it, on the number of
workers or cards, or on where a resumed run starts. The order of an epoch is
a permutation drawn from ``(seed, epoch)``; each of ``world_size`` cards takes
every ``world_size``-th batch-sized slice of it.
"""

import math

import numpy as np


def sample_seed(seed, epoch, position):
    """A 63-bit seed for the sample at ``position`` of ``epoch`` in a run seeded ``seed``."""
    ss = np.random.SeedSequence([seed & 0xFFFFFFFF, epoch, position])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


class SeededBatchSampler:
    """Training batches of ``(index, seed)`` keys; ``set_epoch`` before each epoch.

    Args:
        num_samples (int): length of the dataset.
        batch_size (int): samples per batch on each card.
        shuffle (bool): permute the samples each epoch.
        drop_last (bool): drop the last incomplete batch.
        seed (int): run seed.
        rank, world_size (int): this card and the number of cards.
    """

    def __init__(self, num_samples, batch_size, shuffle=True, drop_last=True, seed=0,
                 rank=0, world_size=1):
        if num_samples <= 0:
            raise ValueError("the dataset is empty")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 1
        self.start_batch = 0

    def set_epoch(self, epoch, start_batch=0):
        """Select the epoch (1-based) and skip its first ``start_batch`` batches (resume)."""
        self.epoch = epoch
        self.start_batch = start_batch

    def _order(self):
        if self.shuffle:
            rng = np.random.default_rng([self.seed & 0xFFFFFFFF, self.epoch])
            return rng.permutation(self.num_samples)
        return np.arange(self.num_samples)

    def __len__(self):
        """Batches per epoch on one card (without the skipped ones)."""
        return self.batches_per_epoch() - self.start_batch

    def batches_per_epoch(self):
        """Batches of a whole epoch on one card."""
        global_batch = self.batch_size * self.world_size
        if self.drop_last:
            n = self.num_samples // global_batch
        else:
            n = math.ceil(self.num_samples / global_batch)
        return max(n, 0)

    def __iter__(self):
        order = self._order()
        global_batch = self.batch_size * self.world_size
        for b in range(self.start_batch, self.batches_per_epoch()):
            start = b * global_batch + self.rank * self.batch_size
            positions = range(start, min(start + self.batch_size, self.num_samples))
            if not positions:
                # Without drop_last the last global batch may leave a card empty:
                # it repeats the first samples so every card runs the same steps.
                positions = range(0, self.batch_size)
            yield [(int(order[p % self.num_samples]), sample_seed(self.seed, self.epoch, p))
                   for p in positions]


class ShardSampler:
    """Evaluation batches of plain indices: card ``rank`` takes ``rank, rank + world, ...``.

    No sample is repeated or dropped, so metrics summed over the cards are
    exact averages of the whole set.
    """

    def __init__(self, num_samples, batch_size, rank=0, world_size=1):
        self.indices = list(range(rank, num_samples, world_size))
        self.batch_size = batch_size

    def __len__(self):
        return math.ceil(len(self.indices) / self.batch_size)

    def __iter__(self):
        for i in range(0, len(self.indices), self.batch_size):
            yield self.indices[i:i + self.batch_size]
