"""What the fault-injection tests share: a tiny DCGAN run's options, a pickle that would run code
at load, and the check that the CLI refused with exit status 2 and one line naming what is wrong."""
from __future__ import annotations

from pathlib import Path

import torch

from genimg_fast import cli

TINY = ["--image-size", "32", "--ngf", "8", "--ndf", "8", "--nz", "8", "--dataset-size", "16", "--batch-size", "4",
        "--epochs", "2", "--no-progress", "--workers", "0"]
# the same with 8 steps an epoch
LONG_EPOCH = [*TINY[:TINY.index("--dataset-size") + 1], "32", *TINY[TINY.index("--dataset-size") + 2:]]


class Payload:
    """Pickles as a call of builtins.open that would create `marker`: the stand-in for code a
    malicious file runs at load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def user_error(capsys, argv: list[str], names: Path | str) -> str:
    """Runs the CLI; asserts exit status 2 and one line on stderr naming `names` (a path or an option)."""
    assert cli.main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(names) in lines[0], lines
    return lines[0]


def copy_run(stopped_run: Path, to: Path) -> Path:
    to.mkdir()
    for f in stopped_run.iterdir():
        if f.is_file():
            (to / f.name).write_bytes(f.read_bytes())
    return to


def corrupt_files(good: bytes) -> dict[str, bytes]:
    return {"empty": b"", "cut off": good[: len(good) // 2], "garbage": bytes(range(256)) * 8,
            "text": b"this is not a checkpoint\n" * 10}


def inference_argv(command: str, checkpoint: Path, tmp_path: Path) -> list[str]:
    if command == "sample":
        return ["sample", "dcgan", "--checkpoint", str(checkpoint), "--n", "4", "--out", str(tmp_path / "s.png")]
    from torchvision.io import write_png

    images = tmp_path / "inputs"
    images.mkdir(exist_ok=True)
    write_png(torch.zeros(3, 32, 32, dtype=torch.uint8), str(images / "a.png"))
    return ["translate", "--checkpoint", str(checkpoint), "--input", str(images), "--out", str(tmp_path / "t")]
