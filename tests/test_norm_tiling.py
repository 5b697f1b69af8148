"""The norm kernels' tiling, checked on the CPU: the C++ header the kernels use is compiled
into a small host program that walks every tile of many shapes (see native/norm_tiling_check.cpp)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_every_element_once_in_its_own_group(tmp_path):
    binary = tmp_path / "norm_tiling_check"
    build = subprocess.run(["g++", "-std=c++17", "-O2", "-I", str(REPO / "csrc"),
                            str(REPO / "tests" / "native" / "norm_tiling_check.cpp"), "-o", str(binary)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(binary)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stdout + run.stderr
