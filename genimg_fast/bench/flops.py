"""Floating-point operations of one call, counted by torch.utils.flop_counter: from the shapes of
the convolutions and matrix products it dispatches (2 per multiply-add), not by timing or by
hardware counters, so the count is the same on any device. Normalizations, activations, losses
and optimizer updates have no formula there and count nothing: next to the convolutions of
these networks they are a small part of the arithmetic (not of the time)."""
from __future__ import annotations

from collections.abc import Callable

from torch.utils.flop_counter import FlopCounterMode


def count_flops(call: Callable[[], object]) -> int:
    """FLOPs of one call of `call` (forward and, where it runs one, backward)."""
    with FlopCounterMode(display=False) as counter:
        call()
    return counter.get_total_flops()


def achieved_tflops(flops: int | None, median_ms: float | None) -> float | None:
    """TFLOP/s of a step doing `flops` in `median_ms`; None without either."""
    if flops is None or not median_ms:
        return None
    return flops / (median_ms * 1e-3) / 1e12
