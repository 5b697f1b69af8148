"""A benchmark record as a markdown summary (one table per op, the device and versions on top)
and as a bar chart of each variant's speed-up over eager torch (matplotlib, optional)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any


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
        lines += [f"## {op}", "", "| case | shape | dtype | variant | median ms | x vs torch | GB/s | peak MB |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            gbs = "" if r.get("modeled_gbs") is None else f"{r['modeled_gbs']:.0f}"
            peak = "" if r.get("peak_mb") is None else f"{r['peak_mb']:.0f}"
            lines.append(f"| {r['case']} | {'x'.join(map(str, r['shape']))} | {r['dtype']} | {r['variant']} | "
                         f"{r['median_ms']:.4f} | {r['speedup_vs_torch']:.2f} | {gbs} | {peak} |")
        lines.append("")
    if record.get("failures"):
        lines += ["## Failed checks (not timed)", ""]
        lines += [f"- {', '.join(filter(None, (f['family'], f['case'], f.get('variant'))))}: {f['error']}"
                  for f in record["failures"]]
        lines.append("")
    return "\n".join(lines)


def speedup_plot(record: dict[str, Any], path: str | Path) -> None:
    """Horizontal bars: every non-baseline variant's speed-up over eager torch, per case."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("the speed-up chart needs matplotlib (pip install matplotlib)") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in record["results"] if r["variant"] != "torch"]
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
