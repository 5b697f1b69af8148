"""The CLI in a base install (torch only): with torchvision, PIL, tqdm and matplotlib made
unimportable, a command that needs them stops at once in one line that names them and the pip
command, writing nothing; the rest (help, info, import) works. And `python -m genimg_fast`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import genimg_fast

OPTIONAL = ("torchvision", "PIL", "tqdm", "matplotlib")
TRAIN = "pip install 'genimg-fast[train]'"
IMAGES = "pip install 'genimg-fast[images]'"

# Put first on PYTHONPATH, it runs at start-up in the child: importing a module named in
# BLOCK_ENV (or one of its submodules) fails as if it were not installed.
SITECUSTOMIZE = '''
import os
import sys

_BLOCKED = set(filter(None, os.environ.get("{env}", "").split(",")))


class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in _BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
'''
BLOCK_ENV = "GENIMG_FAST_TEST_NOT_INSTALLED"


@pytest.fixture(scope="module")
def blocker(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("not_installed")
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE.format(env=BLOCK_ENV))
    return folder


def _env(blocker: Path, blocked=OPTIONAL) -> dict[str, str]:
    """The child's environment: the modules in `blocked` unimportable, genimg_fast imported from
    where this process imports it, and one-line errors (no traceback switch)."""
    env = {k: v for k, v in os.environ.items() if k != "GENIMG_FAST_TRACEBACK"}
    package_root = str(Path(genimg_fast.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(blocker), package_root, os.environ.get("PYTHONPATH"))))
    env[BLOCK_ENV] = ",".join(blocked)
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return _run(["-m", "genimg_fast", *args], cwd, env)


@pytest.fixture
def places(tmp_path) -> tuple[Path, Path]:
    """An empty working folder, and beside it (not in it) a folder for the commands' inputs."""
    cwd, inputs = tmp_path / "cwd", tmp_path / "inputs"
    cwd.mkdir()
    (inputs / "images").mkdir(parents=True)
    return cwd, inputs


def test_the_blocked_modules_cannot_be_imported_and_genimg_fast_can(blocker, tmp_path):
    check = ("import importlib, genimg_fast\n"
             "for name in ('torchvision', 'torchvision.utils', 'PIL.Image', 'tqdm', 'matplotlib.pyplot'):\n"
             "    try:\n"
             "        importlib.import_module(name)\n"
             "    except ModuleNotFoundError:\n"
             "        continue\n"
             "    raise SystemExit(name + ' was imported')\n"
             "print(genimg_fast.__file__)\n")
    out = _run(["-c", check], tmp_path, _env(blocker))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == genimg_fast.__file__  # this checkout's copy, not another install


@pytest.mark.parametrize("args, out, line", [
    (["train", "dcgan", "--out", "run", "--device", "cpu", "--epochs", "1", "--dataset-size", "8", "--batch-size",
      "4", "--image-size", "32"], "run",
     f"genimg-fast train dcgan: error: needs torchvision, PIL, tqdm, matplotlib (not installed): {TRAIN}"),
    (["sample", "dcgan", "--checkpoint", "{inputs}/netG_epoch_0.pth", "--out", "grid.png", "--device", "cpu"],
     "grid.png", f"genimg-fast sample: error: needs torchvision, PIL (not installed): {IMAGES}"),
    (["translate", "--checkpoint", "{inputs}/latest_net_G.pth", "--input", "{inputs}/images", "--out", "results",
      "--device", "cpu"], "results", f"genimg-fast translate: error: needs torchvision, PIL (not installed): {IMAGES}"),
    (["bench", "--quick", "--device", "cpu", "--only", "dcgan G", "--json", "bench.json", "--plot", "chart.png"],
     "chart.png", "genimg-fast bench: error: --plot needs matplotlib (not installed): pip install matplotlib"),
], ids=["train", "sample", "translate", "bench-plot"])
def test_a_command_without_its_extra_stops_in_one_line_writing_nothing(blocker, places, args, out, line):
    cwd, inputs = places
    result = _cli([a.format(inputs=inputs) for a in args], cwd, _env(blocker))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [line]
    assert result.stdout == ""  # not even the header
    assert not (cwd / out).exists() and list(cwd.iterdir()) == []


def test_only_the_missing_module_is_named(blocker, places):
    cwd, _ = places
    result = _cli(["train", "dcgan", "--out", "run"], cwd, _env(blocker, blocked=("tqdm",)))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [f"genimg-fast train dcgan: error: needs tqdm (not installed): {TRAIN}"]
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize("args, expected", [
    (["--help"], "(needs the [images] extra)"),
    (["train", "dcgan", "--help"], "(needs the [train] extra)"),
])
def test_help_works_without_the_extras_and_names_them(blocker, tmp_path, args, expected):
    result = _cli(args, tmp_path, _env(blocker))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: genimg-fast")
    assert expected in " ".join(result.stdout.split())  # across argparse's line wrapping


def test_info_works_without_the_extras(blocker, tmp_path):
    result = _cli(["info"], tmp_path, _env(blocker))
    assert result.returncode == 0, result.stderr
    assert "impl" in json.loads(result.stdout)


def _genimg_fast_script() -> list[str]:
    """The genimg-fast console script beside this interpreter, else what it runs."""
    script = Path(sys.executable).with_name("genimg-fast")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from genimg_fast.cli import main; sys.exit(main())"]


def test_python_m_genimg_fast_prints_what_genimg_fast_prints(blocker, tmp_path):
    env = _env(blocker, blocked=())
    by_module = _cli(["info"], tmp_path, env)
    by_script = subprocess.run([*_genimg_fast_script(), "info"], cwd=tmp_path, env=env, capture_output=True,
                               text=True, timeout=300)
    assert by_module.returncode == by_script.returncode == 0, by_module.stderr + by_script.stderr
    assert json.loads(by_module.stdout) and by_module.stdout == by_script.stdout


def test_python_m_genimg_fast_passes_the_exit_status_through(blocker, places):
    for module in ("torchvision", "tqdm", "matplotlib"):  # else the extras check speaks first
        pytest.importorskip(module)
    cwd, _ = places
    result = _cli(["train", "dcgan", "--nz", "0", "--out", "run"], cwd, _env(blocker, blocked=()))
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["genimg-fast train dcgan: error: nz must be at least 1, got 0"]
    assert list(cwd.iterdir()) == []


def test_python_callers_are_stopped_before_any_work_too(tmp_path, monkeypatch):
    """The trainers and the inference functions check as the CLI does (tqdm taken away here)."""
    from genimg_fast import extras
    from genimg_fast.inference.sample import sample
    from genimg_fast.inference.translate import translate
    from genimg_fast.train.dcgan import DCGANConfig, train_dcgan

    installed = extras.is_installed
    monkeypatch.setattr(extras, "is_installed", lambda module: module != "tqdm" and installed(module))
    out = tmp_path / "run"
    with pytest.raises(extras.MissingExtra, match=r"needs tqdm \(not installed\): pip install 'genimg-fast\[train\]'"):
        train_dcgan(DCGANConfig(out=str(out), device="cpu"))
    assert not out.exists()
    monkeypatch.setattr(extras, "is_installed", lambda module: module != "torchvision" and installed(module))
    with pytest.raises(extras.MissingExtra, match="needs torchvision"):
        sample("dcgan", tmp_path / "missing.pth", tmp_path / "s.png")
    with pytest.raises(extras.MissingExtra, match="needs torchvision"):
        translate(tmp_path / "missing.pth", tmp_path, tmp_path / "t")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
