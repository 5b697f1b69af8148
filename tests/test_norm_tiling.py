"""The norm kernels' index arithmetic, checked on the CPU: the C++ headers the kernels use are
compiled into small host programs (see native/): the tiling walks every tile of many shapes; the
block and cluster kernels' run divider and cluster shapes are checked exhaustively over their range."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _build_and_run(name: str, tmp_path: Path) -> None:
    binary = tmp_path / name
    build = subprocess.run(["g++", "-std=c++17", "-O2", "-I", str(REPO / "csrc"),
                            str(REPO / "tests" / "native" / f"{name}.cpp"), "-o", str(binary)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(binary)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stdout + run.stderr


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_every_element_once_in_its_own_group(tmp_path):
    _build_and_run("norm_tiling_check", tmp_path)


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_block_and_cluster_kernels_divide_and_partition_exactly(tmp_path):
    _build_and_run("block_cluster_check", tmp_path)
