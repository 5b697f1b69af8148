"""Sample grids, written with torchvision like the references (normalize=True: the grid's own
min..max to 0..255), atomically: a viewer never catches half a PNG."""
from __future__ import annotations

import os
from pathlib import Path

import torch


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 8) -> None:
    from torchvision.utils import save_image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    save_image(images.detach().float().cpu(), tmp, nrow=nrow, normalize=True)
    os.replace(tmp, path)
