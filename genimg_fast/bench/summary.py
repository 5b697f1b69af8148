"""A benchmark record as a markdown summary (one table per op, the device and versions on top,
genimg_fast against the best torch.compile mode where one was timed) and as a bar chart of each
variant's speed-up over eager torch (matplotlib, optional)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from genimg_fast.bench.report import flop_cells
from genimg_fast.bench.versus_compile import summary_lines


def _op_table(rows: list[dict]) -> list[str]:
    """One op's rows as a markdown table; the FLOP, torch.compile and note columns only where a
    row fills them."""
    with_flops = any(r.get("flops") is not None for r in rows)
    with_compile = any(r.get("speedup_vs_best_compile") is not None for r in rows)
    with_notes = any(r.get("note") for r in rows)
    header = ["case", "shape", "dtype", "variant", "median ms", "x vs torch", "GB/s", "peak MB"]
    header += ["GFLOP/step", "TFLOP/s", "% of peak"] if with_flops else []
    header += ["x vs best compile"] if with_compile else []
    header += ["note"] if with_notes else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r["case"], "x".join(map(str, r["shape"])), r["dtype"], r["variant"],
                 "not run" if r["median_ms"] is None else f"{r['median_ms']:.4f}",
                 "" if r["speedup_vs_torch"] is None else f"{r['speedup_vs_torch']:.2f}",
                 "" if r.get("modeled_gbs") is None else f"{r['modeled_gbs']:.0f}",
                 "" if r.get("peak_mb") is None else f"{r['peak_mb']:.0f}"]
        cells += flop_cells(r) if with_flops else []
        if with_compile:
            cells.append("" if r.get("speedup_vs_best_compile") is None else f"{r['speedup_vs_best_compile']:.2f}")
        cells += [r.get("note") or ""] if with_notes else []
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown_summary(record: dict[str, Any]) -> str:
    backend = record["backend"]
    lines = [f"# genimg_fast bench ({record['mode']}), {record['device']}", "",
             f"torch {record['torch']}, impl {backend['impl']}, commit {record.get('commit') or 'unknown'}, "
             f"{record['created']}", ""]
    if record.get("copy_bandwidth_gbs"):
        lines += [f"Measured device copy bandwidth: {record['copy_bandwidth_gbs']:.0f} GB/s (read + write).", ""]
    by_op: dict[str, list[dict]] = defaultdict(list)
    for row in record["results"]:
        by_op[row["op"]].append(row)
    for op, rows in by_op.items():
        lines += [f"## {op}", ""] + _op_table(rows) + [""]
    versus = summary_lines(record["results"])
    if versus:
        lines += ["## genimg_fast vs the best torch.compile mode", ""] + [f"- {line}" for line in versus] + [""]
    if record.get("failures"):
        lines += ["## Failed checks (not timed)", ""]
        lines += [f"- {', '.join(filter(None, (f['family'], f['case'], f.get('variant'))))}: {f['error']}"
                  for f in record["failures"]]
        lines.append("")
    return "\n".join(lines)


def speedup_plot(record: dict[str, Any], path: str | Path) -> None:
    """Horizontal bars: every timed non-baseline variant's speed-up over eager torch, per case."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("the speed-up chart needs matplotlib (pip install matplotlib)") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in record["results"] if r["variant"] != "torch" and r.get("speedup_vs_torch") is not None]
    labels = [f"{r['op']} | {r['case']} {'x'.join(map(str, r['shape']))} | {r['variant']}" for r in rows]
    values = [r["speedup_vs_torch"] for r in rows]
    fig, ax = plt.subplots(figsize=(11, 0.28 * len(rows) + 1.5), dpi=100)
    ax.barh(range(len(rows)), values, color=["tab:green" if v >= 1 else "tab:red" for v in values])
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("speed-up over eager torch (x)")
    ax.set_title(f"genimg_fast bench, {record['device']}, torch {record['torch']}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
