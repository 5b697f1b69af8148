"""A run whose losses turn NaN or Inf stops at the first logged one, with one line, and leaves
the state and checkpoints saved before as they were."""
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
