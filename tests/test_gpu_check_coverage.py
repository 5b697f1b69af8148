"""Every test file with CUDA tests is run by the GPU check (scripts/gpu_check.sh): a file left out
would wait for a GPU that never runs it."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_check_runs_every_file_with_cuda_tests():
    script = (ROOT / "scripts" / "gpu_check.sh").read_text()
    with_cuda = [p for p in sorted((ROOT / "tests").glob("test_*.py"))
                 if re.search(r"pytest\.mark\.cuda|\bcuda_kernels\b", p.read_text())]
    assert with_cuda, "no CUDA tests found: the pattern is out of date"
    assert [p.name for p in with_cuda if f"tests/{p.name}" not in script] == []
