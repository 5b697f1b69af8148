"""The losses of a run: one JSON line per step in losses.jsonl (appended and flushed as training
goes), and a loss-curve PNG drawn from it. A resumed run first drops the lines past its
checkpoint, so the log reads as one uninterrupted run.

Besides the step, the epoch and the recipe's values, a line carries DATA_WAIT_SHARE: the share
of its logged window's wall time spent waiting for batches (a measurement, not a loss: the
curve plots the recipe's loss keys only, and logs written before it existed read the same)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genimg_fast.train.checkpoint import atomic_write, atomic_write_text

DATA_WAIT_SHARE = "data_wait_share"
NOT_LOSSES = ("step", "epoch", DATA_WAIT_SHARE)  # the fields of a line that are not the recipe's values


def _parsed(line: str) -> dict | None:
    """A log line, or None for a blank one or one cut off by a hard kill."""
    try:
        return json.loads(line) if line.strip() else None
    except json.JSONDecodeError:
        return None


class LossLog:
    def __init__(self, path: str | Path, resume_from_step: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_from_step is None:
            atomic_write_text("", self.path)
        elif self.path.exists():
            kept = [line for line in self.path.read_text().splitlines()
                    if (entry := _parsed(line)) is not None and entry["step"] < resume_from_step]
            atomic_write_text("".join(line + "\n" for line in kept), self.path)
        self._file = open(self.path, "a")

    def write(self, entry: dict[str, Any]) -> None:
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def entries(self) -> list[dict[str, Any]]:
        return [e for e in map(_parsed, self.path.read_text().splitlines()) if e is not None]


def plot_losses(entries: list[dict[str, Any]], keys: list[str], path: str | Path, title: str) -> None:
    """A PNG of each key against the step (matplotlib, no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    steps = [e["step"] for e in entries]
    for key in keys:
        ax.plot(steps, [e[key] for e in entries], label=key, linewidth=1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"), "wb")
    plt.close(fig)
