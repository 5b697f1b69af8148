"""Whether the input keeps up: the wait each batch costs (on a fake clock; on a GPU's stream in the
last test, which scripts/gpu_check.sh runs), its share of each logged window in the progress and
on the log entries, and the one-time warning that names the fix when input bounds the step."""
from __future__ import annotations

import pytest
import torch

from genimg_fast.train.data_wait import (INPUT_BOUND_SHARE, DeviceClock, HostClock, InputWatch, Wait, device_batches,
                                         input_bound, input_bound_advice, suggested_workers, wait_clock, wait_share)
from genimg_fast.train.progress import StepProgress
from genimg_fast.train.run_log import DATA_WAIT_SHARE


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_batch_comes_with_the_time_spent_getting_it():
    clock = FakeClock()

    def slow_loader():  # started (iter) and stepped (next) by device_batches
        clock.now += 5.0  # start-up: counted with the first batch
        for waited in (1.0, 0.25):
            clock.now += waited
            yield (torch.zeros(2),)

    got = []
    for batch, wait in device_batches(slow_loader(), torch.device("cpu"), clock=HostClock(clock)):
        clock.now += 10.0  # the step's own work: not waiting
        got.append(wait.seconds())
    assert got == [6.0, 0.25]


def test_a_cpu_run_waits_on_the_host_s_clock_a_gpu_run_on_its_stream():
    assert isinstance(wait_clock(torch.device("cpu")), HostClock)
    assert isinstance(wait_clock(torch.device("cuda", 1)), DeviceClock)  # made, not marked: no GPU needed


def test_batches_are_copied_without_blocking():
    class Recorder:
        def __init__(self) -> None:
            self.calls = []

        def to(self, device, **kwargs):
            self.calls.append((device, kwargs))
            return self

    tensors = (Recorder(), Recorder())
    device = torch.device("cuda")  # only named: the recorder copies nothing, the host's clock times it
    [(batch, _)] = list(device_batches([tensors], device, clock=HostClock()))
    assert batch == tensors and all(t.calls == [(device, {"non_blocking": True})] for t in tensors)


def test_the_share_is_of_the_wall_time_and_bounded():
    assert wait_share(1.0, 4.0) == 0.25
    assert wait_share(0.0, 4.0) == 0.0
    assert wait_share(5.0, 4.0) == 1.0  # clock granularity cannot make it more than all of it
    assert wait_share(1.0, 0.0) == 0.0


def _waited(seconds: float) -> Wait:
    return Wait(HostClock(), 0.0, seconds)


def _losses(value: float) -> dict[str, torch.Tensor]:
    return {"loss_D": torch.tensor(value), "loss_G": torch.tensor(2 * value)}


def test_a_window_s_entries_carry_its_share():
    clock = FakeClock()
    progress = StepProgress(False, log_every=2, images_per_step=4, clock=clock)
    progress.start_epoch(0, 1, 4, 0)
    clock.now += 1.0
    assert progress.add(0, 0, _losses(1.0), _waited(1.0)) == []
    clock.now += 3.0
    entries = progress.add(1, 0, _losses(1.5), _waited(0.5))  # 1.5 s of 4 waiting
    assert [e[DATA_WAIT_SHARE] for e in entries] == [0.375, 0.375]
    assert entries[1]["loss_G"] == 3.0 and entries[1]["step"] == 1
    clock.now += 2.0
    [entry] = progress.add(2, 0, _losses(1.0), _waited(0.0)) + progress.flush()  # a new window
    assert entry[DATA_WAIT_SHARE] == 0.0


@pytest.mark.parametrize("share,device,full,loader_window,expected", [
    (0.9, "cuda", True, 1, True),
    (INPUT_BOUND_SHARE, "cuda", True, 3, True),
    (0.1, "cuda", True, 1, False),   # the input keeps up
    (0.9, "cuda", True, 0, False),   # the loader's first window: its workers were starting
    (0.9, "cuda", False, 1, False),  # an epoch's short last window
    (0.9, "cpu", True, 1, False),    # loading and compute share the cores: no idle device
])
def test_when_the_input_bounds_the_step(share, device, full, loader_window, expected):
    assert input_bound(share, device, full, loader_window) is expected


@pytest.mark.parametrize("workers,cpus,expected", [(0, 8, 2), (2, 8, 4), (4, 8, 7), (7, 8, None), (0, 2, 1),
                                                   (0, 1, None), (12, 8, None)])
def test_the_suggestion_doubles_the_workers_within_the_cpus(workers, cpus, expected):
    assert suggested_workers(workers, cpus) == expected


def test_the_advice_names_the_current_and_the_suggested_workers_and_pinned_memory():
    advice = input_bound_advice(0.62, 10, workers=2, cpus=16)
    assert "the GPU waited for batches 62% of the last 10 iterations' time" in advice
    assert "(--workers 2)" in advice and "Try --workers 4" in advice and "pinned memory" in advice
    full = input_bound_advice(0.5, 10, workers=7, cpus=8)
    assert "--workers 7 already uses the 8 CPUs" in full and "Try" not in full


def test_the_warning_comes_once_and_not_in_a_loader_s_first_window(capsys):
    clock = FakeClock()
    progress = StepProgress(False, log_every=2, images_per_step=4, clock=clock,
                            watch=InputWatch(workers=1, device_type="cuda", cpus=8))

    def window(first_step: int, waited: float, wall: float) -> None:
        for step in (first_step, first_step + 1):
            clock.now += wall / 2
            progress.add(step, 0, _losses(1.0), _waited(waited / 2))

    progress.start_epoch(0, 2, 4, 0)
    window(0, 0.9, 1.0)  # the workers start: no warning however long it waits
    assert capsys.readouterr().err == ""
    progress.start_epoch(1, 2, 6, 0)  # a new epoch's loader starts its workers again
    window(2, 0.9, 1.0)
    window(4, 0.1, 1.0)  # keeping up
    assert capsys.readouterr().err == ""
    window(6, 0.8, 1.0)
    warning = capsys.readouterr().err
    assert "waited for batches 80% of the last 2 iterations" in warning
    assert "(--workers 1)" in warning and "Try --workers 2" in warning
    window(8, 0.8, 1.0)
    assert capsys.readouterr().err == ""  # once a run


@pytest.mark.cuda
def test_a_gpu_waits_only_when_its_queued_work_ends_before_the_batch_comes():
    """Margins far wider than any timer's: a 50 ms wait counts whole on an idle GPU, and not at
    all behind queued work lasting most of a second."""
    import time

    device = torch.device("cuda")

    def loader():
        time.sleep(0.05)
        yield (torch.zeros(4).pin_memory(),)

    torch.cuda.synchronize()
    [(batch, wait)] = list(device_batches(loader(), device, DeviceClock(device)))
    torch.cuda.synchronize()
    assert batch[0].is_cuda and wait.seconds() >= 0.04
    torch.cuda._sleep(1_000_000_000)  # a billion GPU cycles: half a second or more
    [(batch, wait)] = list(device_batches(loader(), device, DeviceClock(device)))
    torch.cuda.synchronize()
    assert wait.seconds() < 0.01
