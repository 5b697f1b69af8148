"""Plain-text table of benchmark rows, grouped by case, fastest variant marked by its ratio."""
from __future__ import annotations


def aligned(lines: list[list[str]]) -> str:
    """Rows of cells as text columns, the first row a header underlined with dashes."""
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def _figure(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def flop_cells(row: dict) -> list[str]:
    """GFLOP of one step, achieved TFLOP/s and the share of the dense peak (with which peak)."""
    share = "" if row.get("peak_share") is None else f"{100 * row['peak_share']:.1f}% {row['peak']}"
    return [_figure(None if row.get("flops") is None else row["flops"] / 1e9, ".2f"),
            _figure(row.get("tflops"), ".3g"), share]


def format_table(rows: list[dict], copy_gbs: float | None) -> str:
    """Every row as one line; columns that no row fills (launches, memory, FLOPs, the ratio to the
    best torch.compile mode, notes) are left out. A variant that did not run shows its note."""
    header = ["op", "case", "shape", "dtype", "variant", "median ms", "p10-p90 ms", "x vs torch", "GB/s"]
    if copy_gbs:
        header.append("% of copy BW")
    with_launches = any(r.get("launches") is not None for r in rows)
    if with_launches:
        header.append("launches")
    with_memory = any(r.get("peak_mb") is not None for r in rows)
    if with_memory:
        header.append("peak MB")
    with_flops = any(r.get("flops") is not None for r in rows)
    if with_flops:
        header += ["GFLOP/step", "TFLOP/s", "% of peak"]
    with_compile = any(r.get("speedup_vs_best_compile") is not None for r in rows)
    if with_compile:
        header.append("x vs best compile")
    with_notes = any(r.get("note") for r in rows)
    if with_notes:
        header.append("note")
    lines = [header]
    for r in rows:
        timed = r["median_ms"] is not None
        line = [
            r["op"], r["case"], "x".join(map(str, r["shape"])), r["dtype"], r["variant"],
            f"{r['median_ms']:.4f}" if timed else "-", f"{r['p10_ms']:.4f}-{r['p90_ms']:.4f}" if timed else "-",
            _figure(r["speedup_vs_torch"], ".2f"), _figure(r["modeled_gbs"], ".1f"),
        ]
        if copy_gbs:
            line.append("" if r["modeled_gbs"] is None else f"{100 * r['modeled_gbs'] / copy_gbs:.0f}%")
        if with_launches:
            line.append("" if r.get("launches") is None else str(r["launches"]))
        if with_memory:
            line.append(_figure(r.get("peak_mb"), ".0f"))
        if with_flops:
            line += flop_cells(r)
        if with_compile:
            line.append(_figure(r.get("speedup_vs_best_compile"), ".2f"))
        if with_notes:
            line.append(r.get("note") or "")
        lines.append(line)
    return aligned(lines)
