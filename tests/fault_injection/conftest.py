"""The runs and checkpoints the fault-injection tests damage, made once per module."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fault_injection.common import TINY
from genimg_fast import cli
from genimg_fast.models import DCGANGenerator


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

