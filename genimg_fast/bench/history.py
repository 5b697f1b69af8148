"""The history of benchmark results kept in the repository (benchmarks/results/): one line per
run and op, oldest first, with genimg_fast's speed-up over eager torch across that op's cases
(geometric mean, minimum and maximum), so a change's effect shows run over run."""
from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

from genimg_fast.bench.report import aligned


def load_records(folder: str | Path) -> list[tuple[Path, dict]]:
    """Every results record (a JSON file with results rows) under `folder`, oldest first."""
    found = []
    for path in sorted(Path(folder).rglob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(record, dict) and isinstance(record.get("results"), list) and "created" in record:
            found.append((path, record))
    return sorted(found, key=lambda item: item[1]["created"])


def history_table(folder: str | Path, variant: str = "genimg_fast") -> str:
    records = load_records(folder)
    if not records:
        raise SystemExit(f"genimg-fast bench --history: no results records under {folder}")
    lines = [["created", "device", "commit", "op", "cases", "x vs torch (geomean)", "min-max"]]
    for path, record in records:
        by_op: dict[str, list[float]] = defaultdict(list)
        for row in record["results"]:
            if row.get("variant") == variant and row.get("speedup_vs_torch"):
                by_op[row["op"]].append(row["speedup_vs_torch"])
        for op, values in by_op.items():
            geomean = math.exp(sum(math.log(v) for v in values) / len(values))
            lines.append([record["created"][:16], str(record.get("device", "?"))[:24],
                          str(record.get("commit") or "?")[:9], op, str(len(values)), f"{geomean:.2f}",
                          f"{min(values):.2f}-{max(values):.2f}"])
    return aligned(lines)
