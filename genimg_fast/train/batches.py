"""The order of a run's batches: a permutation per epoch drawn from (seed, epoch) alone, so a
resumed run replays exactly the batches an uninterrupted one would have seen, from any batch."""
from __future__ import annotations

import signal

import torch
from torch.utils.data import DataLoader, Dataset

from genimg_fast.seeding import seeded_generator


def epoch_batches(dataset_size: int, batch_size: int, seed: int, epoch: int, processes: int = 1) -> list[list[int]]:
    """The epoch's batches of indices. A trailing partial batch is left out when it holds a single
    image (batch norm cannot train on one value per channel: the reference would stop with
    torch's error there) or, with several processes, when it does not split into equal slices; a
    data set smaller than one batch is cut to equal slices."""
    order = torch.randperm(dataset_size, generator=seeded_generator(seed * 100_003 + epoch)).tolist()
    batches = [order[i:i + batch_size] for i in range(0, dataset_size, batch_size)]
    last = len(batches[-1]) if batches else 0
    if len(batches) > 1 and last < batch_size and ((last == 1 and batch_size > 1) or last % processes):
        batches = batches[:-1]
    elif len(batches) == 1 and last % processes:  # a data set smaller than a batch: equal slices still
        batches = [batches[0][:last - last % processes]] if last >= processes else []
    return batches


def batch_loader(dataset: Dataset, batches: list[list[int]], workers: int, device: torch.device,
                 seed: int) -> DataLoader:
    """A loader over the given batches for a run on `device`. Its own generator: an iterator draws
    its workers' base seed from it, which would otherwise advance the global RNG the models' noise
    comes from (and a resumed run would then draw other noise than an uninterrupted one).

    For a CUDA device the batches come in pinned (page-locked) memory, with or without workers
    (without, the loop's own process pins them): only from there can the copy to the GPU run
    without blocking the host, overlapping the previous step's work."""
    return DataLoader(dataset, batch_sampler=batches, num_workers=workers, pin_memory=device.type == "cuda",
                      persistent_workers=False, generator=seeded_generator(seed),
                      worker_init_fn=_leave_ctrl_c_to_the_trainer if workers else None)


def _leave_ctrl_c_to_the_trainer(_worker_id: int) -> None:
    """A worker inherits the trainer's Ctrl-C handler (train/interrupt.py), which would announce the
    stop once per worker; the trainer alone decides when to stop, and ends its workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
