"""Sample grids, written with torchvision like the references (normalize=True: the grid's own
min..max to 0..255), atomically: a viewer never catches half a PNG."""
from __future__ import annotations

from pathlib import Path

import torch

from genimg_fast.train.checkpoint import atomic_write


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 8) -> None:
    from PIL import Image
    from torchvision.utils import save_image

    path = Path(path)
    image_format = Image.registered_extensions().get(path.suffix.lower())  # the format the name asks for
    if path.is_dir():
        raise ValueError(f"{path}: a folder; name the image file to write (e.g. {path / 'samples.png'})")
    if image_format is None:
        raise ValueError(f"{path}: unknown image file extension {path.suffix!r} (e.g. .png or .jpg)")
    grid = images.detach().float().cpu()
    atomic_write(path, lambda f: save_image(grid, f, nrow=nrow, normalize=True, format=image_format), "wb")
