"""One result row per timed variant, the format every benchmark family reports."""
from __future__ import annotations

from collections.abc import Callable

import torch

from genimg_fast.bench.timing import Timing, peak_mb, time_side_by_side


def timing_rows(timings: dict[str, Timing], *, op: str, case: str, shape: tuple[int, ...], dtype: torch.dtype,
                modeled_bytes: int | None) -> list[dict]:
    """Rows for the variants of one case; `timings` must hold the eager "torch" baseline.
    `modeled_bytes`: the fused op's memory traffic (None where no such model applies, e.g. a
    whole network)."""
    baseline = timings["torch"].median_ms
    return [{
        "op": op,
        "case": case,
        "shape": list(shape),
        "dtype": str(dtype).removeprefix("torch."),
        "variant": name,
        "median_ms": t.median_ms,
        "p10_ms": t.p10_ms,
        "p90_ms": t.p90_ms,
        "repeats": t.repeats,
        "modeled_gbs": None if modeled_bytes is None else modeled_bytes / (t.median_ms * 1e-3) / 1e9,
        "speedup_vs_torch": baseline / t.median_ms,
        "launches": None,  # kernel launches per step, where a family counts them (launch_counts.py)
        "peak_mb": None,  # add_peak_mb measures it where a family does
    } for name, t in timings.items()]


def add_peak_mb(rows: list[dict], steps: dict, device: torch.device) -> None:
    """Each row's `peak_mb`: the memory one step of its variant allocates (steps[variant](0)).
    None for CUDA-graph replays: they allocate nothing new, their memory is the graph's pool."""
    for row in rows:
        row["peak_mb"] = (None if "cuda graph" in row["variant"] else
                          peak_mb(lambda name=row["variant"]: steps[name](0), device))


def forward_rows(calls: dict[str, Callable[[int], object]], device: torch.device, *, warmup: int, repeats: int,
                 **row_fields) -> list[dict]:
    """Rows for the forward alone: each variant's call(i) (i selects the input set) timed under
    torch.no_grad(), side by side; `row_fields` as timing_rows takes them."""
    def without_grad(call: Callable[[int], object]) -> Callable[[int], object]:
        def step(i: int):
            with torch.no_grad():
                return call(i)
        return step
    timings = time_side_by_side({name: without_grad(call) for name, call in calls.items()}, device, warmup=warmup,
                                repeats=repeats)
    return timing_rows(timings, **row_fields)
