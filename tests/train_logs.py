"""Helpers for the trainer tests: a run's logged losses, and two runs' losses compared."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from genimg_fast.train.run_log import DATA_WAIT_SHARE


def read_log(out: Path) -> list[dict]:
    """Every line of the run's losses.jsonl as written (a line that does not parse fails the test)."""
    return [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]


def read_losses(out: Path) -> list[dict]:
    """The run's logged values without the data-wait share: a timing, which differs from run to
    run where the losses repeat exactly."""
    return [{k: v for k, v in entry.items() if k != DATA_WAIT_SHARE} for entry in read_log(out)]


def assert_close_runs(a: Path, b: Path, *, rel: float, abs: float | None = None, keys=None,
                      steps: int | None = None) -> None:
    """Two runs logged as many steps, and their losses agree (`keys`, or every logged value;
    the first `steps` steps' only, if given). abs=None: pytest.approx's default."""
    first, second = read_losses(a), read_losses(b)
    assert len(first) == len(second) > 0
    for x, y in list(zip(first, second))[:steps]:
        for key in keys or x:
            assert x[key] == pytest.approx(y[key], rel=rel, abs=abs), (x["step"], key)
