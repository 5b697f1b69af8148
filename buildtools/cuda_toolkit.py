"""Find the CUDA toolkit that nvcc really belongs to, and check it against torch.

torch.utils.cpp_extension guesses CUDA_HOME as the parent of the directory holding the
first `nvcc` on PATH. That guess is wrong when `nvcc` is a symlink or a wrapper script
living in another prefix (e.g. /usr/local/bin/nvcc exec'ing /usr/local/cuda-13.0/bin/nvcc):
the headers are found by nvcc itself, but the link step then looks for libcudart in the
wrong place. So we ask nvcc where it lives instead of guessing from its path.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


class CudaToolkitError(RuntimeError):
    """The toolkit cannot be used to build the extension; the message says why and what to do."""


@dataclass(frozen=True)
class CudaToolkit:
    home: Path
    nvcc: Path
    version: str  # "13.0"
    found_by: str  # how `home` was chosen, for the build log

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


def _is_toolkit_root(path: Path) -> bool:
    return (path / "bin" / "nvcc").is_file() and (path / "include" / "cuda_runtime.h").is_file()


def nvcc_version(nvcc: Path) -> str:
    """Return "MAJOR.MINOR" as printed by `nvcc --version` ("... release 13.0, V13.0.88")."""
    out = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True, check=False).stdout
    return parse_nvcc_version(out, nvcc)


def parse_nvcc_version(text: str, nvcc: Path | str = "nvcc") -> str:
    match = re.search(r"release (\d+)\.(\d+)", text)
    if not match:
        raise CudaToolkitError(f"could not read the CUDA version from `{nvcc} --version`: {text.strip()!r}")
    return f"{match.group(1)}.{match.group(2)}"


def toolkit_root_from_nvcc_dryrun(nvcc: Path) -> Path | None:
    """Ask nvcc for its own install root: `nvcc -dryrun` prints `#$ TOP=<root>/bin/..`.

    This works through symlinks and wrapper scripts alike, because it is the real nvcc
    binary that answers.
    """
    try:
        out = subprocess.run(
            [str(nvcc), "-dryrun", "-c", "-x", "cu", os.devnull, "-o", os.devnull],
            capture_output=True, text=True, check=False, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in (out.stdout + out.stderr).splitlines():
        match = re.match(r"#\$ TOP=(.+)$", line.strip())
        if match:
            root = Path(match.group(1).strip()).resolve()  # TOP is <root>/bin/..
            if _is_toolkit_root(root):
                return root
    return None


def find_cuda_toolkit(environ: dict[str, str] | None = None) -> CudaToolkit | None:
    """Locate the CUDA toolkit; None when there is none.

    Order: CUDA_HOME / CUDA_PATH (trusted, but must hold bin/nvcc), the nvcc on PATH
    (resolved to the real toolkit), then /usr/local/cuda.
    """
    env = os.environ if environ is None else environ
    for var in ("CUDA_HOME", "CUDA_PATH"):
        value = env.get(var)
        if value:
            home = Path(value)
            if not (home / "bin" / "nvcc").is_file():
                raise CudaToolkitError(f"{var}={value} does not contain bin/nvcc; point it at a CUDA toolkit root")
            nvcc = home / "bin" / "nvcc"
            return CudaToolkit(home, nvcc, nvcc_version(nvcc), f"${var}")

    on_path = shutil.which("nvcc", path=env.get("PATH"))
    if on_path:
        resolved = Path(on_path).resolve()
        if _is_toolkit_root(resolved.parent.parent):
            home = resolved.parent.parent
            how = "nvcc on PATH" if resolved == Path(on_path) else f"nvcc on PATH ({on_path} -> {resolved})"
        else:
            home = toolkit_root_from_nvcc_dryrun(Path(on_path))
            how = f"nvcc on PATH ({on_path} is a wrapper; nvcc -dryrun reports its root)"
        if home is not None:
            nvcc = home / "bin" / "nvcc"
            return CudaToolkit(home, nvcc, nvcc_version(nvcc), how)

    default = Path("/usr/local/cuda")
    if _is_toolkit_root(default):
        nvcc = default / "bin" / "nvcc"
        return CudaToolkit(default.resolve(), nvcc, nvcc_version(nvcc), "/usr/local/cuda")
    return None


def check_matches_torch(toolkit: CudaToolkit, torch_cuda_version: str) -> None:
    """Refuse a toolkit whose major version differs from the one torch was built with.

    Mixing majors compiles but fails at import or at launch (different libcudart ABI), which
    is far harder to diagnose than this message.
    """
    torch_major = int(torch_cuda_version.split(".")[0])
    if toolkit.major != torch_major:
        raise CudaToolkitError(
            f"nvcc at {toolkit.nvcc} is CUDA {toolkit.version} but torch was built with CUDA "
            f"{torch_cuda_version}; their major versions must match. Set CUDA_HOME to a CUDA "
            f"{torch_major}.x toolkit, install a torch built for CUDA {toolkit.major}, or build "
            f"without kernels with GENIMG_FAST_BUILD_CUDA=0."
        )
