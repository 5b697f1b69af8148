"""What pip users get: an sdist packed from a clean copy of the tree holds everything a build needs
and installs into a fresh environment; a wheel pins the torch its kernels were built against (read
from the built wheel); a build whose torch is not the one installed beside it stops, naming the fix.

Where the build compiles kernels (CI: GENIMG_FAST_BUILD_CUDA=1), the wheel is built from the
unpacked sdist with them, so the sdist's CUDA compile is checked too."""
from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch

import genimg_fast

ROOT = Path(__file__).resolve().parents[1]
OUTER_SITE = sysconfig.get_paths()["purelib"]  # this environment's packages: torch, setuptools, ...
NOT_SHIPPED = ("genimg_fast/_build_config.py", "genimg_fast/_kernel_fingerprints.json")

pytestmark = pytest.mark.slow


def _run(argv: list, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=1500,
                          env={**os.environ, **env})


def _ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _tracked_files() -> list[str]:
    """The tree as a clean clone has it (tracked files, and new ones git does not ignore)."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = _ok(_run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT)).stdout
    return [name for name in listed.splitlines() if (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def clean_tree(tmp_path_factory) -> tuple[Path, list[str]]:
    tree = tmp_path_factory.mktemp("clone") / "genimg_fast"
    files = _tracked_files()
    for name in files:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tree / name)
    return tree, files


def _pack(tree: Path, out: Path, build_cuda: str) -> Path:
    _ok(_run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", out, tree],
             GENIMG_FAST_BUILD_CUDA=build_cuda))
    (archive,) = out.glob("*.tar.gz")
    return archive


@pytest.fixture(scope="module")
def sdist(clean_tree, tmp_path_factory) -> Path:
    return _pack(clean_tree[0], tmp_path_factory.mktemp("sdist"), "0")


def _members(archive: Path) -> set[str]:
    with tarfile.open(archive) as tar:
        return {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}


def test_the_sdist_holds_what_a_build_needs_from_any_machine(clean_tree, sdist, tmp_path):
    tree, files = clean_tree
    assert sdist.name == f"genimg_fast-{genimg_fast.__version__}.tar.gz"  # the version has one place
    members = _members(sdist)
    needed = {name for name in files if name.startswith(("csrc/", "buildtools/", "genimg_fast/", "docs/"))}
    needed |= {"LICENSE", "README.md", "setup.py", "pyproject.toml", "MANIFEST.in"}
    assert needed <= members, sorted(needed - members)
    assert any(name.endswith(".h") for name in needed) and any(name.endswith(".cuh") for name in needed)
    built_here = {name for name in members if name.endswith((".so", ".o", ".pyc")) or name in NOT_SHIPPED}
    assert not built_here
    # the same archive whether or not the machine that packs it would build kernels
    assert _members(_pack(tree, tmp_path, "1")) == members
    assert not [name for name in NOT_SHIPPED if (tree / name).exists()]  # packing built nothing in the tree


def _fresh_environment(where: Path, sees_this_torch: bool = True) -> Path:
    """A new virtual environment; with `sees_this_torch`, this environment's packages (torch,
    setuptools, ...) are importable there through a .pth file, so nothing is downloaded."""
    _ok(_run([sys.executable, "-m", "venv", where]))
    python = where / "bin" / "python"
    site = Path(_ok(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])).stdout.strip())
    if sees_this_torch:
        (site / "outer_packages.pth").write_text(OUTER_SITE + "\n")
    return python


def test_the_sdist_installs_into_a_fresh_environment_and_imports(sdist, tmp_path):
    python = _fresh_environment(tmp_path / "env")
    install = [python, "-m", "pip", "install", "--no-index", "--no-build-isolation", sdist]
    old = _ok(_run([python, "-c", "import setuptools; print(setuptools.__version__)"])).stdout.strip()
    if int(old.split(".")[0]) < 77:  # the one python -m venv brought: refused in words, not a schema error
        result = _run(install, cwd=tmp_path, GENIMG_FAST_BUILD_CUDA="0")
        assert result.returncode != 0
        assert f"it needs setuptools>=77.0, this environment has {old}: pip install -U setuptools" in result.stderr
        _ok(_run([python, "-m", "pip", "uninstall", "--yes", "setuptools"]))  # this environment's one serves
    _ok(_run(install, cwd=tmp_path, GENIMG_FAST_BUILD_CUDA="0"))
    shown = _ok(_run([python, "-c", "import genimg_fast, json; print(genimg_fast.__file__); "
                      "print(json.dumps(genimg_fast.backend_info()['reason']))"], cwd=tmp_path)).stdout
    assert str(tmp_path / "env") in shown.splitlines()[0]  # the installed copy, not this tree
    assert "GENIMG_FAST_BUILD_CUDA=0" in shown
    info = _ok(_run([tmp_path / "env" / "bin" / "genimg-fast", "info"], cwd=tmp_path)).stdout
    assert '"impl": "fallback"' in info
    # the README's next step: an extra of the installed package (its modules are all here already)
    extra = _ok(_run([python, "-m", "pip", "install", "--no-index", "genimg-fast[train]"], cwd=tmp_path)).stdout
    assert "Requirement already satisfied: tqdm" in extra


def _unpacked(sdist: Path, where: Path) -> Path:
    with tarfile.open(sdist) as tar:
        tar.extractall(where, filter="data")
    (tree,) = where.iterdir()
    return tree


@pytest.fixture(scope="module")
def wheel(sdist, tmp_path_factory) -> Path:
    """A wheel built from the unpacked sdist as this machine builds (kernels or not)."""
    where = tmp_path_factory.mktemp("wheel")
    tree = _unpacked(sdist, where / "src")
    _ok(_run([sys.executable, "-m", "pip", "wheel", "--no-index", "--no-build-isolation", "--no-deps",
              "--wheel-dir", where / "dist", tree], MAX_JOBS=os.environ.get("MAX_JOBS", str(os.cpu_count() or 2))))
    (built,) = (where / "dist").glob("*.whl")
    return built


def _wheel_metadata(wheel: Path) -> tuple[bool, list[str]]:
    """(whether the wheel holds compiled kernels, its Requires-Dist lines without extras)."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        message = email.message_from_bytes(archive.read(metadata))
    kernels = any(Path(n).name.startswith("_C") and n.endswith(".so") for n in names)
    return kernels, [r for r in message.get_all("Requires-Dist") or [] if "extra ==" not in r]


def test_a_wheel_pins_the_torch_its_kernels_were_built_against(wheel):
    kernels, requires = _wheel_metadata(wheel)
    expected = os.environ.get("GENIMG_FAST_BUILD_CUDA")
    if expected in ("0", "1"):
        assert kernels == (expected == "1")
    if kernels:  # loads only into this torch release and CUDA flavour
        assert requires == [f"torch=={torch.__version__}"]
        assert not wheel.name.endswith("-none-any.whl")
    else:
        assert requires == ["torch>=2.6"]
        assert wheel.name.endswith("-py3-none-any.whl")


def _fake_torch(python: Path, version: str) -> None:
    """Metadata of an installed torch of `version` (pip and the build read only that)."""
    site = Path(_ok(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])).stdout.strip())
    info = site / f"torch-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n")
    (info / "INSTALLER").write_text("pip\n")
    (info / "RECORD").write_text("")


def test_pip_refuses_a_kernel_wheel_beside_another_torch(wheel, tmp_path):
    kernels, _ = _wheel_metadata(wheel)
    if not kernels:
        pytest.skip("this machine builds no kernels: its wheel keeps a range (the test above)")
    python = _fresh_environment(tmp_path / "env", sees_this_torch=False)
    _fake_torch(python, "2.13.0+cpu")
    result = _run([python, "-m", "pip", "install", "--no-index", wheel])
    assert result.returncode != 0
    assert f"torch=={torch.__version__}" in result.stderr + result.stdout
    assert not list((tmp_path / "env").rglob("genimg_fast/__init__.py"))


def _can_build_kernels() -> bool:
    sys.path.insert(0, str(ROOT))
    try:
        from buildtools.cuda_toolkit import find_cuda_toolkit
    finally:
        sys.path.remove(str(ROOT))
    return torch.version.cuda is not None and find_cuda_toolkit(os.environ) is not None


@pytest.mark.skipif(not _can_build_kernels(), reason="needs a CUDA build of torch and a CUDA toolkit")
@pytest.mark.parametrize("beside", ["2.13.0+cpu", None])
def test_an_isolated_build_beside_another_torch_stops_naming_the_fix(sdist, tmp_path, beside):
    """As pip's build isolation runs it: the environment being installed into holds one torch (or
    none), the build imports another from elsewhere on its path. Asking for the wheel's metadata
    is enough: it is the build's first step, and it already plans the kernels."""
    tree = _unpacked(sdist, tmp_path / "src")
    python = _fresh_environment(tmp_path / "env", sees_this_torch=False)
    if beside:
        _fake_torch(python, beside)
    result = _run([python, "-c", "import os; from setuptools import build_meta as b; os.mkdir('meta'); "
                   "print(b.prepare_metadata_for_build_wheel('meta'))"],
                  cwd=tree, PYTHONPATH=OUTER_SITE, GENIMG_FAST_BUILD_CUDA="1")
    if beside is None:  # a fresh environment: the wheel pins the build's torch, which pip then installs
        _ok(result)
        (metadata,) = (tree / "meta").glob("*.dist-info/METADATA")
        assert f"Requires-Dist: torch=={torch.__version__}" in metadata.read_text()
        return
    assert result.returncode != 0
    assert f"against torch {torch.__version__}" in result.stderr and f"torch {beside} is installed" in result.stderr
    assert "pip install --no-build-isolation" in result.stderr
    assert "Traceback" not in result.stderr
