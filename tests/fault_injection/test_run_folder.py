"""One run per --out: a folder a live run writes in is refused to a second run, kill -9 leaves
no stale lock, and a new run over a stopped or finished one is refused unless asked for."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("torchvision")
pytest.importorskip("matplotlib")

from fault_injection.common import LONG_EPOCH, TINY, copy_run, user_error  # noqa: E402
from genimg_fast import cli  # noqa: E402
from genimg_fast.train.folder_claim import claim_output_folder  # noqa: E402
from train_logs import read_log, read_losses  # noqa: E402


def test_a_folder_a_live_run_writes_in_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    with claim_output_folder(out, resume=False, overwrite=False):  # what a live run holds
        line = user_error(capsys, ["train", "dcgan", "--out", str(out), *TINY], out)
        assert f"another training run is writing there (process {os.getpid()})" in line
        user_error(capsys, ["train", "dcgan", "--out", str(out), "--overwrite", *TINY], out)
    assert not (out / "losses.jsonl").exists()
    assert cli.main(["train", "dcgan", "--out", str(out), *TINY]) == 0  # released with the run


def test_a_new_run_over_a_stopped_one_needs_overwrite(stopped_run, tmp_path, capsys):
    out = copy_run(stopped_run, tmp_path / "run")
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    line = user_error(capsys, ["train", "dcgan", "--out", str(out), *TINY], out)
    assert "already holds a training run (training_state.pt, losses.jsonl)" in line and "--overwrite" in line
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.name in before} == before
    assert cli.main(["train", "dcgan", "--out", str(out), "--overwrite", "--max-steps", "2", *TINY]) == 0
    assert torch.load(out / "training_state.pt", weights_only=True)["step"] == 2
    assert [e["step"] for e in read_log(out)] == [0, 1]


def test_a_log_alone_marks_a_run(tmp_path, capsys):
    """A run killed before its first save has a log and no state: still a run of someone's."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "losses.jsonl").write_text('{"step": 0, "epoch": 0, "loss_D": 1.0}\n')
    user_error(capsys, ["train", "dcgan", "--out", str(out), *TINY], out)
    (out / "losses.jsonl").write_text("")  # an empty one is not
    assert cli.main(["train", "dcgan", "--out", str(out), "--max-steps", "1", *TINY]) == 0


def test_resume_and_overwrite_together_are_refused(stopped_run, tmp_path, capsys):
    out = copy_run(stopped_run, tmp_path / "run")
    user_error(capsys, ["train", "dcgan", "--out", str(out), "--resume", "--overwrite", *TINY], "overwrite")


def _state_step(out: Path) -> int | None:
    try:
        return int(torch.load(out / "training_state.pt", weights_only=True)["step"])
    except (FileNotFoundError, RuntimeError, EOFError):
        return None


def test_kill_9_leaves_no_stale_lock_and_loses_no_saved_work(tmp_path, capsys):
    """A real kill -9 of a training process: while it lives its folder is refused; after it the
    folder resumes (no stale lock) from the last periodic save, its log holds every step the
    state holds, and the resumed run logs the uninterrupted run's losses."""
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    # long enough to be killed; losses read rarely, so only a save writes the log before the kill
    argv = ["train", "dcgan", *LONG_EPOCH[:LONG_EPOCH.index("--epochs")], "--epochs", "1000",
            *LONG_EPOCH[LONG_EPOCH.index("--epochs") + 2:], "--log-every", "1000"]
    process = subprocess.Popen([sys.executable, "-m", "genimg_fast.cli", *argv, "--out", str(killed),
                                "--save-every-minutes", "1e-9"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while (_state_step(killed) or 0) < 3:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the training process saved no state in 120 s"
            time.sleep(0.05)
        line = user_error(capsys, ["train", "dcgan", "--out", str(killed), "--resume", *argv[2:]], killed)
        assert f"another training run is writing there (process {process.pid})" in line
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL  # killed, not finished
    saved = _state_step(killed)
    assert {e["step"] for e in read_log(killed)} >= set(range(saved))
    stop = ["--max-steps", str(saved + 4)]
    assert cli.main([*argv, "--out", str(killed), "--resume", *stop]) == 0
    assert cli.main([*argv, "--out", str(whole), *stop]) == 0
    assert read_losses(killed) == read_losses(whole)
