"""A variant that disagrees with eager torch is never timed: the families check each variant,
time the others, and then raise UntimedVariants, which the suite turns into its rows plus one
reported failure per variant."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch


class UntimedVariants(AssertionError):
    def __init__(self, rows: list[dict], failed: dict[str, str]):
        super().__init__("; ".join(f"{name}: {why}" for name, why in failed.items()))
        self.rows = rows        # the timed variants' rows
        self.failed = failed    # variant -> why it was not timed


@contextmanager
def exact_fp32() -> Iterator[None]:
    """float32 convolutions and matmuls in full float32 precision, not TF32 (cuDNN's default, kept
    for the timing): TF32 keeps 10 mantissa bits, so a deep network's fp32 gradients differ by
    percents between any two convolution algorithms, torch's own two layouts included."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = cudnn.allow_tf32, matmul.allow_tf32
    cudnn.allow_tf32 = matmul.allow_tf32 = False
    try:
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = saved


def check_each(names: Iterable[str], check: Callable[[str], None]) -> dict[str, str]:
    """Runs check(name) for every variant, in exact float32 (exact_fp32); returns those that
    raise AssertionError, with why. Eager torch is the baseline every ratio divides by: if it
    fails, the whole case fails."""
    failed = {}
    for name in names:
        try:
            with exact_fp32():
                check(name)
        except AssertionError as exc:
            if name == "torch":
                raise
            failed[name] = str(exc)
    return failed


def without(steps: dict, failed: dict[str, str]) -> dict:
    return {name: step for name, step in steps.items() if name not in failed}


def finish(rows: list[dict], failed: dict[str, str]) -> list[dict]:
    """The case's rows, or UntimedVariants carrying them when some variant failed its check."""
    if failed:
        raise UntimedVariants(rows, failed)
    return rows


def is_torch_variant(name: str) -> bool:
    """Eager torch or torch.compile of eager torch, in any layout, precision or capture: a failure
    there is torch's, reported, not genimg_fast's."""
    return name.split(" ")[0] in ("torch", "torch.compile(torch)")
