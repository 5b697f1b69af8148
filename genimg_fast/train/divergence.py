"""A diverged run stops: at the first logged value that is not finite (NaN or Inf), training
stops without saving anything more, so the last resumable state and the checkpoints written
before it stay the good ones. Going on would only spend hours computing NaN.

On a GPU the fused losses do not check their inputs (a check would wait for the device), so
this is also where out-of-range inputs (e.g. probabilities outside [0, 1] given to 'bce') show:
as a non-finite loss that stops the run. On the CPU, 'bce' refuses such inputs as torch's BCELoss
does, with an error raised inside the step: from a trainer's discriminator (a Sigmoid's output)
that error can only mean NaN, so it stops the run the same way."""
from __future__ import annotations

import math
from collections.abc import Iterable


class TrainingDiverged(RuntimeError):
    """A logged loss is not finite; the message says which, at which step, and what was kept."""


# the words of torch's BCELoss check and of genimg_fast's CPU check that matches it (ops/_checks.py)
_PROBABILITY_CHECK = "should be between 0 and 1"


def is_nan_probability_error(exc: BaseException) -> bool:
    """Whether `exc` is the 'bce' input check refusing a probability outside [0, 1]."""
    return isinstance(exc, RuntimeError) and _PROBABILITY_CHECK in str(exc)


def first_non_finite(entries: Iterable[dict], skip: tuple[str, ...]) -> tuple[int, str, float] | None:
    """(step, name, value) of the first value that is not finite, among the entries' fields
    other than `skip`; None when all are finite."""
    for entry in entries:
        for name, value in entry.items():
            if name not in skip and isinstance(value, float) and not math.isfinite(value):
                return entry["step"], name, value
    return None
