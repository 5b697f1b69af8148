"""README.md stays true: every Python snippet runs, every command it shows is one the tools
accept (the CLI's parser takes its arguments, `make` has the target, pip gets a known form),
every file it points to exists, and it stays short enough to read in five minutes."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
MAX_LINES = 250


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def _commands() -> list[str]:
    """Every command line of the shell blocks, comments dropped, and the commands in the table."""
    lines = [line.split("  #")[0].strip() for block in _blocks("sh") for line in block.splitlines()]
    table = re.findall(r"\| `(genimg-fast [^`]*)` \|", README)
    return [line for line in lines if line] + table


def test_the_readme_is_short():
    assert len(README.splitlines()) <= MAX_LINES


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_every_python_snippet_runs(index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a snippet that writes, writes here
    exec(compile(_blocks("python")[index], f"README.md python block {index}", "exec"), {})


def _cli_arguments(command: str) -> list[str] | None:
    """The arguments a command passes to genimg_fast's CLI, or None when it is not a CLI command."""
    words = shlex.split(command)
    if words[0] == "genimg-fast":
        return words[1:]
    if words[:3] == ["python", "-m", "genimg_fast"]:
        return words[3:]
    if words[0] == "torchrun" and "-m" in words and words[words.index("-m") + 1] == "genimg_fast.cli":
        return words[words.index("-m") + 2:]
    return None


def _make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.M))


@pytest.mark.parametrize("command", _commands())
def test_every_command_is_one_the_tools_accept(command):
    from genimg_fast.cli import build_parser

    arguments = _cli_arguments(command)
    if arguments is not None:
        build_parser().parse_args(arguments)  # an unknown option or choice exits: the test fails
        return
    words = shlex.split(command)
    if words[0] == "make":
        targets = [w for w in words[1:] if "=" not in w]
        assert targets and set(targets) <= _make_targets(), command
    elif words[:2] == ["pip", "install"]:
        options = {w for w in words[2:] if w.startswith("-")}
        assert options <= {"-U", "--no-build-isolation"}, command
        packages = [w for w in words[2:] if not w.startswith("-")]
        assert packages and all(re.fullmatch(r"[\w.\-\[\]']+", p) for p in packages), command
    else:
        pytest.fail(f"README shows a command this test does not know how to check: {command}")


def test_every_file_the_readme_names_exists():
    named = set(re.findall(r"\b((?:docs|benchmarks|scripts|genimg_fast|csrc|buildtools|tests)/[\w./-]*\w)", README))
    named |= set(re.findall(r"\]\(([^)#]+)\)", README))  # markdown links and images
    named |= {name for name in re.findall(r"\b([A-Z]+\.md|LICENSE|Makefile)\b", README)}
    missing = sorted(name for name in named if not (ROOT / name).exists())
    assert not missing
