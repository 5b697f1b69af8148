"""Per-item randomness of a data set that repeats from its seed and changes with the epoch (junyanz's
random crops, flips and unaligned draws): each item's generator is seeded from (seed, epoch,
index, stream), so a run reproduces, a resumed run draws what the uninterrupted one would, and
every data-loader worker draws the same as the main process would. The loop calls set_epoch."""
from __future__ import annotations

import torch
from torch.utils.data import Dataset

from genimg_fast.seeding import seeded_generator


class EpochSeeded(Dataset):
    STREAMS = 4  # independent draws an item may make (e.g. 0: crop and flip, 1: the unaligned partner)

    def __init__(self, seed: int) -> None:
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _generator(self, index: int, stream: int) -> torch.Generator:
        return seeded_generator(((self.seed * 7_919 + self.epoch) * 1_000_003 + index) * self.STREAMS + stream)
