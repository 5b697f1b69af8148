"""`translate --aligned` refuses an image too narrow for A | B as the trainer does."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

pytest.importorskip("torchvision")

from genimg_fast.cli import main  # noqa: E402
from genimg_fast.models import define_G  # noqa: E402

SIZE = 32


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "G.pth"
    torch.save(define_G(3, 3, 4, "resnet_6blocks", "instance", fused=False).state_dict(), path)
    return path


def _write(folder: Path, names: list[str], width: int = 24) -> None:
    from torchvision.utils import save_image
    folder.mkdir(exist_ok=True)
    for i, name in enumerate(names):
        save_image(torch.full((3, 20, width), i / len(names)), folder / name)  # each input its own colour


def test_aligned_refuses_an_image_too_narrow_to_split(tmp_path, checkpoint, capsys):
    _write(tmp_path / "in", ["wide.png"], width=48)
    _write(tmp_path / "in", ["thin.png"], width=1)
    code = main(["translate", "--checkpoint", str(checkpoint), "--input", str(tmp_path / "in"), "--out",
                 str(tmp_path / "out"), "--size", str(SIZE), "--aligned", "--device", "cpu", "--no-optimize"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path / "in" / "thin.png") in err and "too narrow" in err, err
    assert not (tmp_path / "out" / "index.html").exists()


def test_the_trainer_refuses_the_same_image_alike(tmp_path):
    from genimg_fast.data import AlignedFolder
    _write(tmp_path / "train", ["thin.png"], width=1)
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "train" / "thin.png")) + ": too narrow"):
        AlignedFolder(tmp_path, load_size=36, crop_size=32)[0]
