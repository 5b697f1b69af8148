"""Progress of a training run: a tqdm bar per epoch with the latest losses, images per second
and the share of the time the device waited for data, and the per-step losses collected as tensors
and read from the device every `log_every` steps (each read waits for the GPU; reading every
step would stall it). The steps between two reads are a window: its wall time is real
throughput, and its data-wait share (data_wait.py) goes into the bar and onto its log entries."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable

import torch

from genimg_fast.train.data_wait import InputWatch, Wait, wait_share
from genimg_fast.train.run_log import DATA_WAIT_SHARE


class StepProgress:
    def __init__(self, enabled: bool, log_every: int, images_per_step: int,
                 reduce: Callable[[torch.Tensor], torch.Tensor] = lambda t: t, watch: InputWatch | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        """reduce: applied to the collected losses before they are read (a data-parallel run
        averages them over its processes). watch: told each window's data-wait share; its advice
        (once a run) is written to stderr. The share is this process's own: every process of a
        data-parallel run loads alike."""
        self.enabled, self.log_every, self.images_per_step = enabled, max(1, log_every), images_per_step
        self.reduce, self.watch, self.clock = reduce, watch, clock
        self._bar = None  # a tqdm bar while an epoch runs
        self._pending: list[tuple[int, int, dict[str, torch.Tensor]]] = []
        self._since = clock()
        self._waits: list[Wait] = []  # the window's steps' waits for their batches, read with the losses
        self._loader_window = 0  # windows since the epoch's loader started

    def start_epoch(self, epoch: int, epochs: int, batches: int, done: int) -> None:
        self.close()
        if self.enabled:
            from tqdm import tqdm  # a training extra: the rest of the package works without it

            self._bar = tqdm(total=batches, initial=done, desc=f"epoch {epoch + 1}/{epochs}", unit="it",
                             dynamic_ncols=True, leave=True)
        self._since, self._waits, self._loader_window = self.clock(), [], 0

    def add(self, step: int, epoch: int, losses: dict[str, torch.Tensor], data_wait: Wait | None = None) -> list[dict]:
        """Record a finished step and the wait for its batch; returns the log entries that became
        readable (every log_every steps)."""
        self._pending.append((step, epoch, losses))
        if data_wait is not None:
            self._waits.append(data_wait)
        if self._bar is not None:
            self._bar.update(1)
        return self.flush() if len(self._pending) >= self.log_every else []

    def flush(self, reduce: bool = True) -> list[dict]:
        """The pending steps' log entries; reduce=False keeps this process's own values."""
        if not self._pending:
            return []
        names = list(self._pending[0][2])
        values = torch.stack([torch.stack([losses[n].float() for n in names]) for _, _, losses in self._pending])
        values = self.reduce(values) if reduce else values
        rows = values.cpu().tolist()  # waits for the device: the window's wall time ends here
        now = self.clock()
        steps, wall = len(self._pending), now - self._since
        share = wait_share(sum(wait.seconds() for wait in self._waits), wall)
        entries = [{"step": step, "epoch": epoch, **dict(zip(names, row)), DATA_WAIT_SHARE: round(share, 4)}
                   for (step, epoch, _), row in zip(self._pending, rows)]
        rate = steps * self.images_per_step / max(wall, 1e-9)
        self._pending, self._since, self._waits = [], now, []
        if self._bar is not None:
            last = entries[-1]
            self._bar.set_postfix({k: f"{v:.3f}" for k, v in last.items() if k.startswith("loss")}
                                  | {"img/s": f"{rate:.0f}", "data": f"{share:.0%}"})
        advice = self.watch and self.watch.window(share, steps, steps >= self.log_every, self._loader_window)
        self._loader_window += 1
        if advice:
            self.note(advice)
        return entries

    def note(self, message: str) -> None:
        """A line on stderr, above the bar when there is one (tqdm redraws it below)."""
        if self._bar is not None:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
