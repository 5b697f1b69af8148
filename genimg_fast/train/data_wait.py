"""Whether the input keeps up: the time the device waits for the training loop to get its next
batch, as a share of each logged window's wall time, and a one-time warning naming the fix when
that share shows the input bounds the step.

The window is the log_every iterations between two reads of the losses (progress.py). Each read
waits for the device, so a window's wall time is what the iterations really took. What counts as
waiting depends on the device:
  - on a CPU the model runs on the host, so the time the loop is blocked getting a batch is time
    the device waits;
  - on a GPU the host runs ahead of the work it queued, and a loop blocked on the loader while the
    GPU is still busy costs nothing. Marks on the GPU's stream (CUDA events) before and after
    getting the batch measure what it does cost: the time from the GPU finishing the work queued
    before the wait to the batch's copy, zero when the queued work outlasted the wait. Counting
    the host's wait instead would blame the input for a run whose loader keeps pace with the GPU
    in bursts.
A run bound by compute shows a share near zero."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from genimg_fast.train.workers import cpus_per_process

# A quarter of the window: far above what a loader that keeps up costs (a GPU with queued work
# does not wait at all), and enough that removing the wait would make training a third faster.
INPUT_BOUND_SHARE = 0.25


class HostClock:
    """Marks on the host's clock (a CPU run: the host is the device)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock

    def mark(self) -> float:
        return self.clock()

    def seconds(self, start: float, end: float) -> float:
        return end - start


class DeviceClock:
    """Marks on a GPU's current stream: a timed CUDA event, reached when the work queued before it
    is done. Two marks' gap can be read once both are reached (after the window's losses were read:
    that waits for the stream)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def mark(self) -> torch.cuda.Event:
        event = torch.cuda.Event(enable_timing=True)
        event.record(torch.cuda.current_stream(self.device))  # the device's, whichever GPU is current
        return event

    def seconds(self, start: torch.cuda.Event, end: torch.cuda.Event) -> float:
        return start.elapsed_time(end) / 1000


def wait_clock(device: torch.device) -> HostClock | DeviceClock:
    """How a run on `device` measures the waits (the module's docstring says why)."""
    return DeviceClock(device) if device.type == "cuda" else HostClock()


@dataclass(frozen=True)
class Wait:
    """One batch's wait, between two marks of a clock; read after the window's device sync."""
    clock: Any
    start: Any
    end: Any

    def seconds(self) -> float:
        return self.clock.seconds(self.start, self.end)


def device_batches(loader: Iterable, device: torch.device,
                   clock: HostClock | DeviceClock | None = None) -> Iterator[tuple[tuple[torch.Tensor, ...], Wait]]:
    """Each batch of `loader` on `device`, with the wait it cost, from the mark after the previous
    step was issued to the mark after this batch's copy was: the loader's start (its workers start
    with the first batch), waiting for the batch (or loading it, without workers) and the copy.
    The copy is non-blocking: from the pinned memory a CUDA run's loader gives, the host only
    issues it and the GPU runs it in order before the step; a copy that does block (from pageable
    memory) is counted whole, as it should be."""
    clock = clock or wait_clock(device)
    start = clock.mark()
    batches = iter(loader)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        batch = tuple(t.to(device, non_blocking=True) for t in batch)
        yield batch, Wait(clock, start, clock.mark())
        start = clock.mark()


def wait_share(waited: float, wall: float) -> float:
    """The share of a window's wall time the device waited for batches, in [0, 1]."""
    if wall <= 0:
        return 0.0
    return min(1.0, max(0.0, waited / wall))


def input_bound(share: float, device_type: str, full_window: bool, loader_window: int) -> bool:
    """Whether a window shows the input bounding the step. Only on CUDA: on a CPU the loader and
    the model share the same cores, and more workers would take them from the compute (no fix to
    name). Only a full window (the epoch's last may hold one iteration) and not the first of a
    loader (loader_window 0), which includes starting its workers: a loader starts every epoch."""
    return device_type == "cuda" and full_window and loader_window >= 1 and share >= INPUT_BOUND_SHARE


def suggested_workers(workers: int, cpus: int) -> int | None:
    """The --workers to try next: twice as many (at least 2), leaving a core of this process's
    `cpus` for the training process; None when no more fit."""
    suggestion = min(max(2 * workers, 2), cpus - 1)
    return suggestion if suggestion > workers else None


def input_bound_advice(share: float, steps: int, workers: int, cpus: int) -> str:
    """The warning's text: what was measured and the fix to try, concretely."""
    measured = (f"genimg-fast: the input bounds the step: the GPU waited for batches {share:.0%} of the last {steps} "
                f"iterations' time (--workers {workers}). ")
    suggestion = suggested_workers(workers, cpus)
    if suggestion is not None:
        fix = f"Try --workers {suggestion} (this process may use {cpus} CPUs)."
    else:
        fix = (f"--workers {workers} already uses the {cpus} CPUs this process may use: make the images cheaper to "
               "load (stored at the training size, on local storage).")
    return measured + fix + " Batches already come from pinned memory and are copied without blocking."


class InputWatch:
    """Looks at each window's share; returns the advice once a run, the first time the input
    bounds the step, and None otherwise."""

    def __init__(self, workers: int, device_type: str, cpus: int | None = None) -> None:
        self.workers, self.device_type = workers, device_type
        self.cpus = cpus_per_process() if cpus is None else cpus
        self.warned = False

    def window(self, share: float, steps: int, full_window: bool, loader_window: int) -> str | None:
        if self.warned or not input_bound(share, self.device_type, full_window, loader_window):
            return None
        self.warned = True
        return input_bound_advice(share, steps, self.workers, self.cpus)
