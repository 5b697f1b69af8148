"""Progress of a training run: a tqdm bar per epoch with the latest losses and images per
second, and the per-step losses collected as tensors and read from the device every
`log_every` steps (each read waits for the GPU; reading every step would stall it)."""
from __future__ import annotations

import time
from collections.abc import Callable

import torch


class StepProgress:
    def __init__(self, enabled: bool, log_every: int, images_per_step: int,
                 reduce: Callable[[torch.Tensor], torch.Tensor] = lambda t: t) -> None:
        """reduce: applied to the collected losses before they are read (a data-parallel run
        averages them over its processes)."""
        self.enabled, self.log_every, self.images_per_step = enabled, max(1, log_every), images_per_step
        self.reduce = reduce
        self._bar = None  # a tqdm bar while an epoch runs
        self._pending: list[tuple[int, int, dict[str, torch.Tensor]]] = []
        self._since = time.perf_counter()

    def start_epoch(self, epoch: int, epochs: int, batches: int, done: int) -> None:
        self.close()
        if self.enabled:
            from tqdm import tqdm  # a training extra: the rest of the package works without it

            self._bar = tqdm(total=batches, initial=done, desc=f"epoch {epoch + 1}/{epochs}", unit="it",
                             dynamic_ncols=True, leave=True)
        self._since = time.perf_counter()

    def add(self, step: int, epoch: int, losses: dict[str, torch.Tensor]) -> list[dict]:
        """Record a finished step; returns the log entries that became readable (every log_every steps)."""
        self._pending.append((step, epoch, losses))
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
        entries = [{"step": step, "epoch": epoch, **dict(zip(names, row))}
                   for (step, epoch, _), row in zip(self._pending, values.cpu().tolist())]
        now = time.perf_counter()
        rate = len(self._pending) * self.images_per_step / max(now - self._since, 1e-9)
        self._pending, self._since = [], now
        if self._bar is not None:
            last = entries[-1]
            self._bar.set_postfix({k: f"{v:.3f}" for k, v in last.items() if k.startswith("loss")} | {"img/s": f"{rate:.0f}"})
        return entries

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
