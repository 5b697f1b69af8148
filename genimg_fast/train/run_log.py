"""The losses of a run: one JSON line per step in losses.jsonl (appended and flushed as training
goes), and a loss-curve PNG drawn from it. A resumed run first drops the lines past its
checkpoint, so the log reads as one uninterrupted run.

Besides the step, the epoch and the recipe's values, a line carries DATA_WAIT_SHARE: the share
of its logged window's wall time spent waiting for batches (a measurement, not a loss: the
curve plots the recipe's loss keys only, and logs written before it existed read the same)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from genimg_fast.train.checkpoint import atomic_write, atomic_write_text

DATA_WAIT_SHARE = "data_wait_share"
NOT_LOSSES = ("step", "epoch", DATA_WAIT_SHARE)  # the fields of a line that are not the recipe's values


def read_entries(path: str | Path) -> list[dict[str, Any]]:
    """The log's entries. A last line cut off by a hard kill is left out; any other line that is
    not a JSON object with an integer "step" is a ValueError naming the file and the line (a
    damaged or foreign log is not silently dropped)."""
    path = Path(path)
    lines = path.read_bytes().split(b"\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    entries = []
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            entry = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            if index == last:
                continue
            raise ValueError(f"{path}: line {index + 1} is not JSON: not a losses log, or damaged (move it away "
                             "to go on without it)") from None
        if not isinstance(entry, dict) or isinstance(entry.get("step"), bool) or not isinstance(entry.get("step"), int):
            raise ValueError(f"{path}: line {index + 1} is not a log entry (a JSON object with an integer 'step')")
        entries.append(entry)
    return entries


class LossLog:
    def __init__(self, path: str | Path, resume_from_step: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_from_step is None:
            atomic_write_text("", self.path)
        elif self.path.exists():
            kept = [entry for entry in read_entries(self.path) if entry["step"] < resume_from_step]
            atomic_write_text("".join(json.dumps(entry) + "\n" for entry in kept), self.path)
        self._file = open(self.path, "a")

    def write(self, entry: dict[str, Any]) -> None:
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def entries(self) -> list[dict[str, Any]]:
        return read_entries(self.path)


def plot_losses(entries: list[dict[str, Any]], keys: list[str], path: str | Path, title: str) -> None:
    """A PNG of each key against the step (matplotlib, no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    steps = [e["step"] for e in entries]
    for key in keys:
        ax.plot(steps, [e.get(key, math.nan) for e in entries], label=key, linewidth=1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"), "wb")
    plt.close(fig)
