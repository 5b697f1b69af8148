"""genimg_fast against the best torch.compile of the reference, the comparison a user makes: per
case, the fastest of the timed torch.compile modes is the yardstick, and every row's
`speedup_vs_best_compile` is that mode's time over the row's."""
from __future__ import annotations

from collections import defaultdict

from genimg_fast.bench.compile_modes import PREFIX, is_compile_variant

# The variant a case's headline names: the default training iteration (one CUDA graph) where it
# ran, else eager genimg_fast (a CPU has no CUDA graphs).
HEADLINE = ("genimg_fast (cuda graphs)", "genimg_fast")


def best_compile(rows: list[dict]) -> dict | None:
    """The fastest timed torch.compile row among one case's rows; None if none was timed."""
    timed = [r for r in rows if is_compile_variant(r["variant"]) and r.get("median_ms")]
    return min(timed, key=lambda r: r["median_ms"], default=None)


def add_speedup_vs_best_compile(rows: list[dict]) -> None:
    """Each timed row of one case: the best torch.compile time over its own (1.20 = 1.2x faster
    than the best mode); left None when no compile mode was timed."""
    best = best_compile(rows)
    if best is None:
        return
    for row in rows:
        if row.get("median_ms"):
            row["speedup_vs_best_compile"] = best["median_ms"] / row["median_ms"]


def summary_lines(rows: list[dict]) -> list[str]:
    """One line per case whose rows were compared with the best mode (add_speedup_vs_best_compile):
    its headline genimg_fast variant against that mode, in the form 'CASE: VARIANT 5.20 ms vs
    best torch.compile (MODE) 6.50 ms: 1.25x'."""
    by_case: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        if row.get("speedup_vs_best_compile") is not None:
            by_case[(row["op"], row["case"])].append(row)
    lines = []
    for (_, case), case_rows in by_case.items():
        best = best_compile(case_rows)
        timed = {r["variant"]: r for r in case_rows if r.get("median_ms")}
        ours = next((timed[name] for name in HEADLINE if name in timed), None)
        if best is None or ours is None:
            continue
        mode = best["variant"].removeprefix(PREFIX).strip()
        lines.append(f"{case}: {ours['variant']} {ours['median_ms']:.2f} ms vs best torch.compile ({mode}) "
                     f"{best['median_ms']:.2f} ms: {best['median_ms'] / ours['median_ms']:.2f}x")
    return lines
