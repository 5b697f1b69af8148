"""The package installs and works with no kernels: build a wheel with GENIMG_FAST_BUILD_CUDA=0
from a copy of the source tree, install it into a fresh directory, and use it from there."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

USE_INSTALLED_PACKAGE = """
import sys, json
sys.path.insert(0, sys.argv[1])
import torch, torch.nn.functional as F
import genimg_fast
assert genimg_fast.__file__.startswith(sys.argv[1]), genimg_fast.__file__
a = torch.randn(4, 3, 8, 8, requires_grad=True)
b = torch.randn(4, 3, 8, 8)
loss = genimg_fast.ops.l1_loss(a, b, 2.0)
loss.backward()
torch.testing.assert_close(loss, 2.0 * F.l1_loss(a, b))
torch.testing.assert_close(a.grad, 2.0 * torch.sign(a - b).detach() / a.numel())
print(json.dumps(genimg_fast.backend_info()))
"""


@pytest.mark.slow
def test_wheel_without_kernels_installs_and_runs(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.so", "_build_config.py", ".*cache",
        "benchmarks", "tests", "runs"))
    env_build = {"GENIMG_FAST_BUILD_CUDA": "0", "PATH": "/usr/bin:/bin"}
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-build-isolation", "--no-deps", "-w", str(tmp_path / "dist"),
         str(source)], capture_output=True, text=True, timeout=600, env=env_build)
    assert build.returncode == 0, build.stdout + build.stderr
    assert "no CUDA kernels built (GENIMG_FAST_BUILD_CUDA=0" in build.stdout + build.stderr
    (wheel,) = (tmp_path / "dist").glob("genimg_fast-*.whl")
    assert not [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".so")]

    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), str(wheel)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr

    run = subprocess.run([sys.executable, "-c", USE_INSTALLED_PACKAGE, str(site)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    info = json.loads(run.stdout.strip().splitlines()[-1])
    assert info["kernels_loaded"] is False and info["impl"] == "fallback"  # torch's own ops
    assert info["implementation"]["cpu"]["impl"] == "fallback"
    assert info["reason"] == "not built: GENIMG_FAST_BUILD_CUDA=0 was set at build time"
