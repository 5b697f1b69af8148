"""The torch a build compiles against, and the torch the package will run beside.

pip's default build isolation installs the build's requirements, torch included, into a
throwaway environment: the kernels then compile against whatever torch that fetched, while the
package is installed beside the user's own. Their binary interface differs between releases
(and CUDA flavours), so such kernels would not load. setup.py stops the build with the fix
instead (check_same_torch)."""
from __future__ import annotations

import importlib.metadata
import sysconfig
from pathlib import Path


class TorchMismatch(RuntimeError):
    """The kernels would compile against another torch than the one they will run with."""


def _install_dirs() -> list[Path]:
    """Where this interpreter's environment installs packages (what pip installs into; an
    isolated build runs with this interpreter but imports its requirements from elsewhere)."""
    paths = sysconfig.get_paths()
    return sorted({Path(paths[key]).resolve() for key in ("purelib", "platlib") if key in paths})


def torch_installed_beside(compiling_torch_file: str) -> str | None:
    """The version of the torch installed in this environment when it is not the torch being
    compiled against (whose module is at `compiling_torch_file`); None when they are the same
    or the environment has none (a fresh one: the wheel's pin installs the build's torch)."""
    dirs = _install_dirs()
    compiling = Path(compiling_torch_file).resolve()
    if any(compiling.is_relative_to(d) for d in dirs):
        return None
    for dist in importlib.metadata.distributions(path=[str(d) for d in dirs]):
        if (dist.metadata["Name"] or "").lower() == "torch":
            return dist.version
    return None


def check_same_torch(compiling_version: str, compiling_torch_file: str) -> None:
    """Stop a kernel build whose torch is not the one installed where the package goes (pip's
    build isolation fetched another), naming both and the fix."""
    beside = torch_installed_beside(compiling_torch_file)
    if beside is not None and beside != compiling_version:
        raise TorchMismatch(
            f"the CUDA kernels would compile against torch {compiling_version} (pip's isolated build environment), "
            f"but torch {beside} is installed where genimg_fast will run, and they would not load with it. Build "
            "against the installed torch: pip install --no-build-isolation <this sdist or folder>; "
            "or GENIMG_FAST_BUILD_CUDA=0 for a build without kernels")
