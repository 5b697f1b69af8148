"""ColouredShapes: a built-in image data set for DCGAN and the VAE, generated, never downloaded.

Each image is a plain background with one to three filled discs, squares or triangles of random
size, place and colour, drawn from (seed, index) alone: the same image for the same index on
every machine and in every process, so runs are reproducible and resumable without files.
"""
from __future__ import annotations

import torch
from torch.utils.data import Dataset

SHAPES = ("disc", "square", "triangle")


def _shape_mask(kind: str, yy: torch.Tensor, xx: torch.Tensor, cy: float, cx: float, r: float) -> torch.Tensor:
    if kind == "disc":
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    if kind == "square":
        return ((yy - cy).abs() <= r) & ((xx - cx).abs() <= r)
    top = cy - r  # an upright isosceles triangle, apex at the top
    return (yy >= top) & (yy <= cy + r) & ((xx - cx).abs() <= (yy - top) / 2)


class ColouredShapes(Dataset):
    """`size` images of `channels` x image_size x image_size in [-1, 1] (DCGAN's range; `unit_range`
    gives [0, 1], the VAE's). Items are (image, label), label = the kind of the largest shape,
    like an ImageFolder class index."""

    def __init__(self, size: int = 4096, image_size: int = 64, channels: int = 3, seed: int = 0,
                 unit_range: bool = False) -> None:
        if size < 1 or image_size < 8 or channels not in (1, 3):
            raise ValueError(f"ColouredShapes: size >= 1, image_size >= 8 and channels 1 or 3 expected, got "
                             f"size={size}, image_size={image_size}, channels={channels}")
        self.size, self.image_size, self.channels, self.seed = size, image_size, channels, seed
        self.unit_range = unit_range
        coords = torch.arange(image_size, dtype=torch.float32) + 0.5
        self._yy, self._xx = torch.meshgrid(coords, coords, indexing="ij")

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not 0 <= index < self.size:
            raise IndexError(f"ColouredShapes index {index} out of range for {self.size} images")
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        n = self.image_size
        image = torch.rand(self.channels, 1, 1, generator=g).mul(0.3).expand(self.channels, n, n).clone()
        largest, label = 0.0, 0
        for _ in range(int(torch.randint(1, 4, (), generator=g))):
            kind_index = int(torch.randint(len(SHAPES), (), generator=g))
            r = float(torch.empty(()).uniform_(0.1, 0.3, generator=g)) * n
            cy, cx = (float(v) for v in torch.empty(2).uniform_(r, n - r, generator=g))
            colour = torch.rand(self.channels, generator=g) * 0.7 + 0.3
            mask = _shape_mask(SHAPES[kind_index], self._yy, self._xx, cy, cx, r)
            image[:, mask] = colour[:, None]
            if r > largest:
                largest, label = r, kind_index
        return (image if self.unit_range else image * 2 - 1), label
