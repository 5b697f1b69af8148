"""Faults a user or an attacker can inject into the files the CLI reads: a training state or a
checkpoint that names Python code (it must never run: weights_only loads), and files that are
empty, cut off, garbage, text, or of another shape. Each ends in exit status 2 and one line that
names the file, never a traceback."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("torchvision")
pytest.importorskip("matplotlib")

from genimg_fast import cli  # noqa: E402
from genimg_fast.models import DCGANGenerator  # noqa: E402

TINY = ["--image-size", "32", "--ngf", "8", "--ndf", "8", "--nz", "8", "--dataset-size", "16", "--batch-size", "4",
        "--epochs", "2", "--no-progress", "--workers", "0"]


class Payload:
    """Pickles as a call of builtins.open that would create `marker`: the stand-in for code a
    malicious file runs at load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _user_error(capsys, argv: list[str], names: Path | str) -> str:
    """Runs the CLI; asserts exit status 2 and one line on stderr naming `names` (a path or an option)."""
    assert cli.main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(names) in lines[0], lines
    return lines[0]


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory) -> Path:
    """A DCGAN run stopped after 3 iterations: a resumable state, checkpoints none yet."""
    out = tmp_path_factory.mktemp("run")
    assert cli.main(["train", "dcgan", "--out", str(out), "--max-steps", "3", *TINY]) == 0
    return out


@pytest.fixture(scope="module")
def generator_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "netG.pth"
    torch.save(DCGANGenerator(nz=8, ngf=8, image_size=32).state_dict(), path)
    return path


def _copy_run(stopped_run: Path, to: Path) -> Path:
    to.mkdir()
    for f in stopped_run.iterdir():
        if f.is_file():
            (to / f.name).write_bytes(f.read_bytes())
    return to


def _corrupt_files(good: bytes) -> dict[str, bytes]:
    return {"empty": b"", "cut off": good[: len(good) // 2], "garbage": bytes(range(256)) * 8,
            "text": b"this is not a checkpoint\n" * 10}


def test_a_training_state_that_names_code_is_refused_and_never_run(stopped_run, tmp_path, capsys):
    out = _copy_run(stopped_run, tmp_path / "run")
    marker = tmp_path / "code_ran"
    state = torch.load(out / "training_state.pt", weights_only=True)
    state["recipe"]["netG"]["extra"] = Payload(marker)  # one sub-entry of a valid state
    torch.save(state, out / "training_state.pt")
    line = _user_error(capsys, ["train", "dcgan", "--out", str(out), "--resume", *TINY], out / "training_state.pt")
    assert "refused" in line and "open)" in line  # the callable it names
    assert not marker.exists()


@pytest.mark.parametrize("command", ["sample", "translate"])
def test_a_checkpoint_that_names_code_is_refused_and_never_run(generator_checkpoint, tmp_path, capsys, command):
    marker, path = tmp_path / "code_ran", tmp_path / "evil.pth"
    state = torch.load(generator_checkpoint, weights_only=True)
    state["extra"] = Payload(marker)
    torch.save(state, path)
    _user_error(capsys, _inference_argv(command, path, tmp_path), path)
    assert not marker.exists()


def _inference_argv(command: str, checkpoint: Path, tmp_path: Path) -> list[str]:
    if command == "sample":
        return ["sample", "dcgan", "--checkpoint", str(checkpoint), "--n", "4", "--out", str(tmp_path / "s.png")]
    from torchvision.io import write_png

    images = tmp_path / "inputs"
    images.mkdir(exist_ok=True)
    write_png(torch.zeros(3, 32, 32, dtype=torch.uint8), str(images / "a.png"))
    return ["translate", "--checkpoint", str(checkpoint), "--input", str(images), "--out", str(tmp_path / "t")]


@pytest.mark.parametrize("kind", ["empty", "cut off", "garbage", "text"])
def test_a_corrupt_training_state_is_one_line_naming_it(stopped_run, tmp_path, capsys, kind):
    out = _copy_run(stopped_run, tmp_path / "run")
    state = out / "training_state.pt"
    state.write_bytes(_corrupt_files(state.read_bytes())[kind])
    _user_error(capsys, ["train", "dcgan", "--out", str(out), "--resume", *TINY], state)


@pytest.mark.parametrize("command", ["sample", "translate"])
@pytest.mark.parametrize("kind", ["empty", "cut off", "garbage", "text"])
def test_a_corrupt_checkpoint_is_one_line_naming_it(generator_checkpoint, tmp_path, capsys, command, kind):
    path = tmp_path / "bad.pth"
    path.write_bytes(_corrupt_files(generator_checkpoint.read_bytes())[kind])
    _user_error(capsys, _inference_argv(command, path, tmp_path), path)


def test_a_training_state_of_another_form_is_named(stopped_run, tmp_path, capsys):
    out = _copy_run(stopped_run, tmp_path / "run")
    torch.save({"weights": torch.ones(3)}, out / "training_state.pt")
    line = _user_error(capsys, ["train", "dcgan", "--out", str(out), "--resume", *TINY], out / "training_state.pt")
    assert "not a genimg_fast training state" in line
    state = torch.load(stopped_run / "training_state.pt", weights_only=True)
    del state["recipe"]["netG"]
    torch.save(state, out / "training_state.pt")
    line = _user_error(capsys, ["train", "dcgan", "--out", str(out), "--resume", *TINY], out / "training_state.pt")
    assert "does not fit this run" in line


def test_a_discriminator_given_as_the_generator_is_named(tmp_path, capsys):
    from genimg_fast.models import DCGANDiscriminator

    path = tmp_path / "netD.pth"
    torch.save(DCGANDiscriminator(ndf=8, image_size=32).state_dict(), path)
    line = _user_error(capsys, _inference_argv("sample", path, tmp_path), path)
    assert "DCGAN generator" in line


@pytest.mark.parametrize("damage, message", [
    (b"\x00\xff\xfe garbage \x81\n", "line 2 is not JSON"),
    (b"[1, 2, 3]\n", "line 2 is not a log entry"),
    (b'{"epoch": 0}\n', "line 2 is not a log entry"),
])
def test_a_damaged_losses_log_is_one_line_naming_it(stopped_run, tmp_path, capsys, damage, message):
    out = _copy_run(stopped_run, tmp_path / "run")
    log = out / "losses.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(lines[0] + damage + b"".join(lines[1:]))
    line = _user_error(capsys, ["train", "dcgan", "--out", str(out), "--resume", *TINY], log)
    assert message in line


def test_a_log_line_cut_off_by_a_kill_is_dropped_on_resume(stopped_run, tmp_path):
    out = _copy_run(stopped_run, tmp_path / "run")
    log = out / "losses.jsonl"
    log.write_bytes(log.read_bytes() + b'{"step": 3, "epoch": 0, "loss_D": 1.2')  # no end: the kill came mid-write
    assert cli.main(["train", "dcgan", "--out", str(out), "--resume", *TINY]) == 0
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == list(range(8))  # 2 epochs of 4 batches, every step once


def test_a_diverged_run_stops_and_keeps_its_last_good_state(tmp_path, capsys, monkeypatch):
    """A NaN loss from the resumed run's second iteration on: the run stops at the first logged
    window that shows it, with one line; the state and checkpoint of the first epoch stay."""
    from genimg_fast.train.dcgan import DCGANRecipe

    out = tmp_path / "run"
    argv = ["train", "dcgan", "--out", str(out), *TINY, "--log-every", "2"]  # 4 iterations an epoch
    assert cli.main([*argv, "--max-steps", "4"]) == 0  # the first epoch, its checkpoint and state
    saved = {name: (out / name).read_bytes() for name in ("training_state.pt", "netG_epoch_0.pth")}
    graph_step = DCGANRecipe.graph_step
    calls = []

    def diverging(self, *inputs):
        losses = graph_step(self, *inputs)
        calls.append(1)
        return {**losses, "loss_D": losses["loss_D"] * float("nan")} if len(calls) >= 2 else losses

    monkeypatch.setattr(DCGANRecipe, "graph_step", diverging)
    capsys.readouterr()
    assert cli.main([*argv, "--resume"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "diverged: loss_D is nan at step 5" in lines[0]
    assert f"{out / 'training_state.pt'} still resumes from step 4" in lines[0]
    assert {name: (out / name).read_bytes() for name in saved} == saved
    assert not (out / "netG_epoch_1.pth").exists()


def test_resume_with_another_precision_is_refused_naming_it(stopped_run, tmp_path, capsys):
    out = _copy_run(stopped_run, tmp_path / "run")
    line = _user_error(capsys, ["train", "dcgan", "--out", str(out), "--resume", "--amp", "bf16", *TINY], "--amp")
    assert "--resume: --amp was 'none' in the run being resumed, now 'bf16'" in line


class HardKill(BaseException):
    """What kill -9 does to the loop: it stops where it is, with no chance to save."""


def _failing_at(monkeypatch, call: int, fail) -> None:
    from genimg_fast.train.dcgan import DCGANRecipe

    graph_step, calls = DCGANRecipe.graph_step, []

    def step(self, *inputs):
        calls.append(1)
        if len(calls) == call:
            fail()
        return graph_step(self, *inputs)

    monkeypatch.setattr(DCGANRecipe, "graph_step", step)


LONG_EPOCH = [*TINY[:TINY.index("--dataset-size") + 1], "32", *TINY[TINY.index("--dataset-size") + 2:]]  # 8 steps


def test_a_kill_in_the_first_epoch_resumes_from_the_last_periodic_save(tmp_path, monkeypatch):
    from train_logs import read_losses

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert cli.main(["train", "dcgan", "--out", str(whole), *LONG_EPOCH]) == 0
    with monkeypatch.context() as patch:
        _failing_at(patch, 6, lambda: (_ for _ in ()).throw(HardKill()))
        with pytest.raises(HardKill):  # a save is due before every step: the last one is step 5's
            cli.main(["train", "dcgan", "--out", str(killed), "--save-every-minutes", "1e-9", *LONG_EPOCH])
    assert torch.load(killed / "training_state.pt", weights_only=True)["step"] == 5
    assert cli.main(["train", "dcgan", "--out", str(killed), "--resume", *LONG_EPOCH]) == 0
    assert read_losses(killed) == read_losses(whole)


def test_sigterm_stops_after_the_step_and_saves_like_ctrl_c(tmp_path, monkeypatch):
    import os
    import signal

    from train_logs import read_losses

    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert cli.main(["train", "dcgan", "--out", str(whole), *LONG_EPOCH]) == 0
    with monkeypatch.context() as patch:
        _failing_at(patch, 3, lambda: os.kill(os.getpid(), signal.SIGTERM))
        assert cli.main(["train", "dcgan", "--out", str(stopped), "--save-every-minutes", "0", *LONG_EPOCH]) == 0
    assert torch.load(stopped / "training_state.pt", weights_only=True)["step"] == 3  # the signalled step finished
    assert cli.main(["train", "dcgan", "--out", str(stopped), "--resume", *LONG_EPOCH]) == 0
    assert read_losses(stopped) == read_losses(whole)
