"""Files that are empty, cut off, garbage, text or of another shape (a training state, a
checkpoint, the losses log) end in exit status 2 and one line naming the file, never a traceback;
a log line a kill cut off is dropped on resume."""
from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("torchvision")
pytest.importorskip("matplotlib")

from fault_injection.common import TINY, copy_run, corrupt_files, inference_argv, user_error  # noqa: E402
from genimg_fast import cli  # noqa: E402


@pytest.mark.parametrize("kind", ["empty", "cut off", "garbage", "text"])
def test_a_corrupt_training_state_is_one_line_naming_it(stopped_run, tmp_path, capsys, kind):
    out = copy_run(stopped_run, tmp_path / "run")
    state = out / "training_state.pt"
    state.write_bytes(corrupt_files(state.read_bytes())[kind])
    user_error(capsys, ["train", "dcgan", "--out", str(out), "--resume", *TINY], state)


@pytest.mark.parametrize("command", ["sample", "translate"])
@pytest.mark.parametrize("kind", ["empty", "cut off", "garbage", "text"])
def test_a_corrupt_checkpoint_is_one_line_naming_it(generator_checkpoint, tmp_path, capsys, command, kind):
    path = tmp_path / "bad.pth"
    path.write_bytes(corrupt_files(generator_checkpoint.read_bytes())[kind])
    user_error(capsys, inference_argv(command, path, tmp_path), path)


def test_a_training_state_of_another_form_is_named(stopped_run, tmp_path, capsys):
    out = copy_run(stopped_run, tmp_path / "run")
    torch.save({"weights": torch.ones(3)}, out / "training_state.pt")
    line = user_error(capsys, ["train", "dcgan", "--out", str(out), "--resume", *TINY], out / "training_state.pt")
    assert "not a genimg_fast training state" in line
    state = torch.load(stopped_run / "training_state.pt", weights_only=True)
    del state["recipe"]["netG"]
    torch.save(state, out / "training_state.pt")
    line = user_error(capsys, ["train", "dcgan", "--out", str(out), "--resume", *TINY], out / "training_state.pt")
    assert "does not fit this run" in line


def test_a_discriminator_given_as_the_generator_is_named(tmp_path, capsys):
    from genimg_fast.models import DCGANDiscriminator

    path = tmp_path / "netD.pth"
    torch.save(DCGANDiscriminator(ndf=8, image_size=32).state_dict(), path)
    line = user_error(capsys, inference_argv("sample", path, tmp_path), path)
    assert "DCGAN generator" in line


@pytest.mark.parametrize("damage, message", [
    (b"\x00\xff\xfe garbage \x81\n", "line 2 is not JSON"),
    (b"[1, 2, 3]\n", "line 2 is not a log entry"),
    (b'{"epoch": 0}\n', "line 2 is not a log entry"),
])
def test_a_damaged_losses_log_is_one_line_naming_it(stopped_run, tmp_path, capsys, damage, message):
    out = copy_run(stopped_run, tmp_path / "run")
    log = out / "losses.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(lines[0] + damage + b"".join(lines[1:]))
    line = user_error(capsys, ["train", "dcgan", "--out", str(out), "--resume", *TINY], log)
    assert message in line


def test_a_log_line_cut_off_by_a_kill_is_dropped_on_resume(stopped_run, tmp_path):
    out = copy_run(stopped_run, tmp_path / "run")
    log = out / "losses.jsonl"
    log.write_bytes(log.read_bytes() + b'{"step": 3, "epoch": 0, "loss_D": 1.2')  # no end: the kill came mid-write
    assert cli.main(["train", "dcgan", "--out", str(out), "--resume", *TINY]) == 0
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == list(range(8))  # 2 epochs of 4 batches, every step once

