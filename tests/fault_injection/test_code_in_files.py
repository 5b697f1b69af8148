"""A training state or a checkpoint that names Python code is refused, and the code never runs:
every file is loaded with weights_only."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("torchvision")
pytest.importorskip("matplotlib")

from fault_injection.common import TINY, Payload, copy_run, inference_argv, user_error  # noqa: E402


def test_a_training_state_that_names_code_is_refused_and_never_run(stopped_run, tmp_path, capsys):
    out = copy_run(stopped_run, tmp_path / "run")
    marker = tmp_path / "code_ran"
    state = torch.load(out / "training_state.pt", weights_only=True)
    state["recipe"]["netG"]["extra"] = Payload(marker)  # one sub-entry of a valid state
    torch.save(state, out / "training_state.pt")
    line = user_error(capsys, ["train", "dcgan", "--out", str(out), "--resume", *TINY], out / "training_state.pt")
    assert "refused" in line and "open)" in line  # the callable it names
    assert not marker.exists()


@pytest.mark.parametrize("command", ["sample", "translate"])
def test_a_checkpoint_that_names_code_is_refused_and_never_run(generator_checkpoint, tmp_path, capsys, command):
    marker, path = tmp_path / "code_ran", tmp_path / "evil.pth"
    state = torch.load(generator_checkpoint, weights_only=True)
    state["extra"] = Payload(marker)
    torch.save(state, path)
    user_error(capsys, inference_argv(command, path, tmp_path), path)
    assert not marker.exists()

