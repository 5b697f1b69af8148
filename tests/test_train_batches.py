"""The order and shape of a run's batches: seeded per epoch, every image once, and which trailing
partial batch is left out (a single image under batch norm; a batch that does not split evenly
over the processes); the loader a run's device gets."""
from __future__ import annotations

import pytest
import torch

from genimg_fast.train.batches import batch_loader, epoch_batches

CPU = torch.device("cpu")


def test_every_image_once_and_the_same_order_for_the_same_epoch():
    batches = epoch_batches(10, 4, seed=3, epoch=2)
    assert sorted(i for b in batches for i in b) == list(range(10))
    assert batches == epoch_batches(10, 4, seed=3, epoch=2) != epoch_batches(10, 4, seed=3, epoch=3)


def test_batch_size_one_keeps_every_image():
    assert len(epoch_batches(5, 1, seed=0, epoch=0)) == 5  # the reference recipes' CycleGAN / pix2pix default


def test_a_trailing_single_image_is_left_out_for_batch_norm():
    assert [len(b) for b in epoch_batches(9, 4, seed=0, epoch=0)] == [4, 4]
    assert [len(b) for b in epoch_batches(10, 4, seed=0, epoch=0)] == [4, 4, 2]


def test_with_processes_a_trailing_batch_must_split_evenly():
    assert [len(b) for b in epoch_batches(8, 6, seed=0, epoch=0, processes=3)] == [6]  # 2 left: not 3 slices
    assert [len(b) for b in epoch_batches(9, 6, seed=0, epoch=0, processes=3)] == [6, 3]
    assert [len(b) for b in epoch_batches(3, 4, seed=0, epoch=0, processes=2)] == [2]  # less than a batch: cut
    assert epoch_batches(1, 4, seed=0, epoch=0, processes=2) == []


def test_loader_workers_leave_ctrl_c_to_the_trainer():
    import signal

    loader = batch_loader(list(range(4)), [[0, 1], [2, 3]], workers=2, device=CPU, seed=0)
    previous = signal.getsignal(signal.SIGINT)
    try:
        loader.worker_init_fn(0)  # what each worker runs first
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
    assert [b.tolist() for b in loader] == [[0, 1], [2, 3]]
    assert batch_loader(list(range(4)), [[0, 1]], workers=0, device=CPU, seed=0).worker_init_fn is None


@pytest.mark.parametrize("workers", [0, 2])
def test_a_cuda_run_s_batches_come_pinned_whatever_the_worker_count(workers):
    """Pinned memory is what lets the copy to the GPU run without blocking the host (the copy
    itself needs a GPU: data_wait.device_batches asks for it non-blocking)."""
    for device in (torch.device("cuda"), torch.device("cuda", 1)):  # built only, never iterated here
        assert batch_loader(list(range(4)), [[0, 1]], workers=workers, device=device, seed=0).pin_memory
    assert not batch_loader(list(range(4)), [[0, 1]], workers=workers, device=CPU, seed=0).pin_memory
