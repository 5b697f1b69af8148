"""One result row per variant, the format every benchmark family reports."""
from __future__ import annotations

from collections.abc import Callable

import torch

from genimg_fast.bench.flops import achieved_tflops
from genimg_fast.bench.peaks import DensePeak, applicable_peak, share_of_peak
from genimg_fast.bench.timing import Timing, peak_mb, time_side_by_side


def _row(*, op: str, case: str, shape: tuple[int, ...], dtype: torch.dtype, variant: str) -> dict:
    """A row with every field, the figures None (null in the record: not measured)."""
    return {
        "op": op,
        "case": case,
        "shape": list(shape),
        "dtype": str(dtype).removeprefix("torch."),
        "variant": variant,
        "median_ms": None,
        "p10_ms": None,
        "p90_ms": None,
        "repeats": 0,
        "modeled_gbs": None,
        "speedup_vs_torch": None,
        "launches": None,  # kernel launches per step, where a family counts them (launch_counts.py)
        "peak_mb": None,  # add_peak_mb measures it where a family does
        "flops": None,  # of one step, where a family counts them (add_flop_rates)
        "tflops": None,
        "peak": None,  # which dense peak peak_share is a share of: 'TF32' or 'BF16'
        "peak_share": None,
        "speedup_vs_best_compile": None,  # where a family times torch.compile's modes (versus_compile.py)
        "note": None,  # what a reader must know about the row, e.g. a mode that does less on this device
    }


def timing_rows(timings: dict[str, Timing], *, op: str, case: str, shape: tuple[int, ...], dtype: torch.dtype,
                modeled_bytes: int | None) -> list[dict]:
    """Rows for the variants of one case; `timings` must hold the eager "torch" baseline.
    `modeled_bytes`: the fused op's memory traffic (None where no such model applies, e.g. a
    whole network)."""
    baseline = timings["torch"].median_ms
    rows = []
    for name, t in timings.items():
        row = _row(op=op, case=case, shape=shape, dtype=dtype, variant=name)
        row.update({
            "median_ms": t.median_ms,
            "p10_ms": t.p10_ms,
            "p90_ms": t.p90_ms,
            "repeats": t.repeats,
            "modeled_gbs": None if modeled_bytes is None else modeled_bytes / (t.median_ms * 1e-3) / 1e9,
            "speedup_vs_torch": baseline / t.median_ms,
        })
        rows.append(row)
    return rows


def not_run_row(*, op: str, case: str, shape: tuple[int, ...], dtype: torch.dtype, variant: str, why: str) -> dict:
    """The row of a variant that could not run here: no figures, `note` says why."""
    row = _row(op=op, case=case, shape=shape, dtype=dtype, variant=variant)
    row["note"] = f"not run: {why}"
    return row


def add_flop_rates(rows: list[dict], flops: int, precisions: dict[str, str], peak: DensePeak | None,
                   tf32_allowed: bool) -> None:
    """Each row's `flops` (of one step: the same work in every variant of the case) and, where it
    was timed, the achieved `tflops` and its `peak_share` of the dense peak its precision runs
    at (peaks.py; None where no peak applies, e.g. on a CPU). `precisions`: variant -> 'fp32'
    or 'bf16'."""
    for row in rows:
        row["flops"] = flops
        row["tflops"] = achieved_tflops(flops, row["median_ms"])
        applies = applicable_peak(peak, precisions.get(row["variant"], "fp32"), tf32_allowed)
        if applies is not None and row["tflops"] is not None:
            row["peak"], row["peak_share"] = applies[0], share_of_peak(row["tflops"], applies[1])


def add_peak_mb(rows: list[dict], steps: dict, device: torch.device) -> None:
    """Each row's `peak_mb`: the memory one step of its variant allocates (steps[variant](0)).
    None for CUDA-graph replays (torch.compile's reduce-overhead mode included): they allocate
    nothing new, their memory is the graph's pool; and None for a variant that did not run."""
    for row in rows:
        replays = "cuda graph" in row["variant"] or "reduce-overhead" in row["variant"]
        row["peak_mb"] = (None if replays or row["variant"] not in steps else
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
