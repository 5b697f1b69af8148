"""Kernel launches per step, counted once every case of a run has been timed.

A torch.profiler session leaves NVIDIA's CUPTI attached to the process, and every eager step
after it takes more host time (a quarter to a third more for a small BN+ReLU step), so counting
a case's launches right after its timings would slow every case timed after it. Detaching CUPTI
after each session (TEARDOWN_CUPTI=1) avoids that, but then repeated counts in one process come
out wrong and a child process that counts launches can hang (docs/performance.md, Method). So the
counts wait here until nothing is left to time. The price: each counted case's steps (inputs,
CUDA graphs, compiled callables) stay alive until then; a compiled step compiles again when the
suite reset dynamo since; and a run cut short records no counts.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from genimg_fast.bench.timing import count_launches

Step = Callable[[int], object]


class DeferredLaunchCounts:
    """Rows whose `launches` are filled in by count_all(), from steps kept until then."""

    def __init__(self, count: Callable[[Callable[[], object], torch.device], int | None] = count_launches):
        self._count = count
        self._pending: list[tuple[list[dict], dict[str, Step], torch.device]] = []

    def add(self, rows: list[dict], steps: dict[str, Step], device: torch.device) -> None:
        """Count later one step (steps[row's variant](0)) of each row's variant."""
        self._pending.append((rows, steps, device))

    def count_all(self) -> None:
        """Count every pending row's launches, then let its steps (and their memory) go. A count
        that fails leaves its row's launches unknown (None), with a warning: the timings stand."""
        for rows, steps, device in self._pending:
            for row in rows:
                step = steps.get(row["variant"])
                if step is None:
                    continue
                try:
                    row["launches"] = self._count(lambda: step(0), device)
                except Exception as exc:  # noqa: BLE001 - a profiler failure must not lose the run's timings
                    warnings.warn(f"genimg-fast bench: could not count the launches of {row['op']}, "
                                  f"{row['case']}, {row['variant']}: {type(exc).__name__}: {exc}", stacklevel=2)
        self._pending.clear()
