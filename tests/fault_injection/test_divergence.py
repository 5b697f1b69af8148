"""A run whose losses turn NaN or Inf stops at the first logged one (or where a 'bce' loss refuses
a NaN probability), with one line, and leaves the state and checkpoints saved before as they were."""
from __future__ import annotations

import pytest

pytest.importorskip("torchvision")
pytest.importorskip("matplotlib")

from fault_injection.common import TINY  # noqa: E402
from genimg_fast import cli  # noqa: E402


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


@pytest.mark.parametrize("loss", [[], ["--logits"]], ids=["bce on probabilities", "bce on logits"])
def test_an_infinite_learning_rate_stops_the_run_in_one_line(tmp_path, capsys, loss):
    """--lr inf: the weights turn NaN at the first update. On probabilities 'bce' refuses the NaN
    as torch's BCELoss does, inside the step; on logits the loss is NaN. Either is one line."""
    out = tmp_path / "run"
    assert cli.main(["train", "dcgan", "--out", str(out), *TINY, "--lr", "inf", *loss]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "the run diverged: " in lines[0], lines
    assert "no resumable state had been saved yet" in lines[0]
    assert not (out / "training_state.pt").exists() and not list(out.glob("net*.pth"))
