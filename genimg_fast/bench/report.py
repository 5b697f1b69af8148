"""Plain-text table of benchmark rows, grouped by case, fastest variant marked by its ratio."""
from __future__ import annotations


def aligned(lines: list[list[str]]) -> str:
    """Rows of cells as text columns, the first row a header underlined with dashes."""
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def format_table(rows: list[dict], copy_gbs: float | None) -> str:
    header = ["op", "case", "shape", "dtype", "variant", "median ms", "p10-p90 ms", "x vs torch", "GB/s"]
    if copy_gbs:
        header.append("% of copy BW")
    with_launches = any(r.get("launches") is not None for r in rows)
    if with_launches:
        header.append("launches")
    with_memory = any(r.get("peak_mb") is not None for r in rows)
    if with_memory:
        header.append("peak MB")
    lines = [header]
    for r in rows:
        line = [
            r["op"], r["case"], "x".join(map(str, r["shape"])), r["dtype"], r["variant"],
            f"{r['median_ms']:.4f}", f"{r['p10_ms']:.4f}-{r['p90_ms']:.4f}", f"{r['speedup_vs_torch']:.2f}",
            "" if r["modeled_gbs"] is None else f"{r['modeled_gbs']:.1f}",
        ]
        if copy_gbs:
            line.append("" if r["modeled_gbs"] is None else f"{100 * r['modeled_gbs'] / copy_gbs:.0f}%")
        if with_launches:
            line.append("" if r.get("launches") is None else str(r["launches"]))
        if with_memory:
            line.append("" if r.get("peak_mb") is None else f"{r['peak_mb']:.0f}")
        lines.append(line)
    return aligned(lines)
