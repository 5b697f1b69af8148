"""Resuming is exact or refused: another --amp is refused naming it; a kill in the first epoch
resumes from the last periodic save to the uninterrupted run's losses; SIGTERM stops after the
step and saves, like the first Ctrl-C."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("torchvision")
pytest.importorskip("matplotlib")

from fault_injection.common import LONG_EPOCH, TINY, copy_run, user_error  # noqa: E402
from genimg_fast import cli  # noqa: E402


def test_resume_with_another_precision_is_refused_naming_it(stopped_run, tmp_path, capsys):
    out = copy_run(stopped_run, tmp_path / "run")
    line = user_error(capsys, ["train", "dcgan", "--out", str(out), "--resume", "--amp", "bf16", *TINY], "--amp")
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
