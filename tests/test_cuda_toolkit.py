"""Build-time toolkit discovery (buildtools/): wrappers and symlinks resolve to the real
toolkit, version skew with torch is refused, GENIMG_FAST_BUILD_CUDA is honoured."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from buildtools.build_plan import DEFAULT_ARCH_LIST, plan_build
from buildtools.cuda_toolkit import (CudaToolkitError, check_matches_torch, find_cuda_toolkit,
                                     parse_nvcc_version)


def _executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _fake_toolkit(root: Path, version: str) -> Path:
    """A toolkit whose nvcc answers --version and -dryrun like the real one."""
    (root / "include").mkdir(parents=True, exist_ok=True)
    (root / "include" / "cuda_runtime.h").write_text("")
    _executable(root / "bin" / "nvcc", f"""#!/bin/sh
case "$*" in
  *--version*) echo "Cuda compilation tools, release {version}, V{version}.1" ;;
  *-dryrun*) echo '#$ TOP={root}/bin/..' >&2 ;;
esac
""")
    return root


def test_wrapper_script_on_path_resolves_to_the_real_toolkit(tmp_path):
    real = _fake_toolkit(tmp_path / "cuda-13.0", "13.0")
    wrapper_dir = tmp_path / "prefix" / "bin"
    _executable(wrapper_dir / "nvcc", f'#!/bin/sh\nexec {real}/bin/nvcc "$@"\n')
    toolkit = find_cuda_toolkit({"PATH": str(wrapper_dir)})
    assert toolkit.home == real.resolve()
    assert toolkit.version == "13.0"
    assert "wrapper" in toolkit.found_by


def test_symlink_on_path_resolves_to_the_real_toolkit(tmp_path):
    real = _fake_toolkit(tmp_path / "cuda-12.8", "12.8")
    link_dir = tmp_path / "links"
    link_dir.mkdir()
    os.symlink(real / "bin" / "nvcc", link_dir / "nvcc")
    toolkit = find_cuda_toolkit({"PATH": str(link_dir)})
    assert toolkit.home == real.resolve()
    assert toolkit.major == 12


def test_cuda_home_wins_and_must_hold_nvcc(tmp_path):
    real = _fake_toolkit(tmp_path / "cuda", "13.0")
    assert find_cuda_toolkit({"CUDA_HOME": str(real), "PATH": ""}).home == real
    with pytest.raises(CudaToolkitError, match="CUDA_HOME=.* does not contain bin/nvcc"):
        find_cuda_toolkit({"CUDA_HOME": str(tmp_path / "nowhere"), "PATH": ""})


def test_major_version_skew_with_torch_is_refused(tmp_path):
    toolkit = find_cuda_toolkit({"CUDA_HOME": str(_fake_toolkit(tmp_path / "cuda", "12.4")), "PATH": ""})
    with pytest.raises(CudaToolkitError, match="CUDA 12.4 but torch was built with CUDA 13.0.*must match"):
        check_matches_torch(toolkit, "13.0")
    check_matches_torch(toolkit, "12.8")  # minor versions may differ


def test_nvcc_version_parsing():
    assert parse_nvcc_version("Cuda compilation tools, release 13.0, V13.0.88") == "13.0"
    with pytest.raises(CudaToolkitError, match="could not read the CUDA version"):
        parse_nvcc_version("command not found")


def test_build_cuda_0_builds_no_kernels():
    plan = plan_build({"GENIMG_FAST_BUILD_CUDA": "0"})
    assert not plan.build_cuda and "GENIMG_FAST_BUILD_CUDA=0" in plan.reason


def test_build_cuda_must_be_0_or_1():
    with pytest.raises(CudaToolkitError, match="must be 0 or 1"):
        plan_build({"GENIMG_FAST_BUILD_CUDA": "yes"})


@pytest.mark.skipif(torch.version.cuda is None, reason="needs a CUDA build of torch")
def test_plan_uses_the_arch_list_and_refuses_skew(tmp_path):
    major = torch.version.cuda.split(".")[0]
    good = _fake_toolkit(tmp_path / "good", f"{major}.0")
    plan = plan_build({"CUDA_HOME": str(good), "PATH": "", "TORCH_CUDA_ARCH_LIST": "9.0"})
    assert plan.build_cuda and plan.arch_list == "9.0" and plan.toolkit.home == good
    if not torch.cuda.is_available():
        assert plan_build({"CUDA_HOME": str(good), "PATH": ""}).arch_list == DEFAULT_ARCH_LIST
    bad = _fake_toolkit(tmp_path / "bad", f"{int(major) - 1}.9")
    with pytest.raises(CudaToolkitError, match="major versions must match"):
        plan_build({"CUDA_HOME": str(bad), "PATH": "", "GENIMG_FAST_BUILD_CUDA": "1"})
