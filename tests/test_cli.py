"""`genimg-fast info` and `genimg-fast bench --quick` as a user runs them."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from genimg_fast import cli


def test_info_prints_backend_info_as_json():
    out = subprocess.run([sys.executable, "-m", "genimg_fast.cli", "info"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["torch"] == torch.__version__ and "impl" in info


def test_bench_quick_prints_a_table_and_writes_a_record(tmp_path, capsys):
    path = tmp_path / "results" / "bench.json"
    assert cli.main(["bench", "--quick", "--device", "cpu", "--json", str(path)]) == 0
    table = capsys.readouterr().out
    assert "x vs torch" in table and "genimg_fast" in table
    record = json.loads(path.read_text())
    assert record["device"].startswith("cpu") and record["torch"] == torch.__version__
    assert record["commit"] and record["backend"]["impl"] in ("cuda", "reference")
    variants = {row["variant"] for row in record["results"]}
    assert variants == {"torch", "genimg_fast"}
    for row in record["results"]:
        assert row["median_ms"] > 0 and row["speedup_vs_torch"] > 0


def test_bench_only_filters_cases_by_label(capsys):
    assert cli.main(["bench", "--quick", "--device", "cpu", "--only", "DCGAN G"]) == 0
    table = capsys.readouterr().out
    assert "dcgan G" in table and "cyclegan" not in table
    with pytest.raises(SystemExit, match="no case label contains"):
        cli.main(["bench", "--quick", "--device", "cpu", "--only", "no such case"])
