"""A diverged run stops: at the first logged value that is not finite (NaN or Inf), training
stops without saving anything more, so the last resumable state and the checkpoints written
before it stay the good ones. Going on would only spend hours computing NaN.

On a GPU the fused losses do not check their inputs (a check would wait for the device), so
this is also where out-of-range inputs (e.g. probabilities outside [0, 1] given to 'bce') show:
as a non-finite loss that stops the run."""
from __future__ import annotations

import math
from collections.abc import Iterable


class TrainingDiverged(RuntimeError):
    """A logged loss is not finite; the message says which, at which step, and what was kept."""


def first_non_finite(entries: Iterable[dict], skip: tuple[str, ...]) -> tuple[int, str, float] | None:
    """(step, name, value) of the first value that is not finite, among the entries' fields
    other than `skip`; None when all are finite."""
    for entry in entries:
        for name, value in entry.items():
            if name not in skip and isinstance(value, float) and not math.isfinite(value):
                return entry["step"], name, value
    return None
