"""ColouredShapes: a built-in image data set for DCGAN and the VAE, generated, never downloaded.

Each image is a plain background with one to three filled discs, squares or triangles of random
size, place and colour, drawn from (seed, index) alone: the same image for the same index on
every machine and in every process, so runs are reproducible and resumable without files.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch.utils.data import Dataset

from genimg_fast.seeding import seeded_generator

SHAPES = ("disc", "square", "triangle")


def _shape_mask(kind: str, yy: torch.Tensor, xx: torch.Tensor, cy: float, cx: float, r: float) -> torch.Tensor:
    if kind == "disc":
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    if kind == "square":
        return ((yy - cy).abs() <= r) & ((xx - cx).abs() <= r)
    top = cy - r  # an upright isosceles triangle, apex at the top
    return (yy >= top) & (yy <= cy + r) & ((xx - cx).abs() <= (yy - top) / 2)


class Scene(NamedTuple):
    background: torch.Tensor                                   # (channels,) in [0, 0.3]
    shapes: list[tuple[str, float, float, float, torch.Tensor]]  # kind, centre y, centre x, radius, colour
    label: int                                                 # the kind of the largest shape


def draw_scene(seed: int, image_size: int, channels: int) -> Scene:
    """One to three shapes of random kind, size, place and colour, from the seed alone."""
    g = seeded_generator(seed)
    n = image_size
    background = torch.rand(channels, generator=g) * 0.3
    shapes, largest, label = [], 0.0, 0
    for _ in range(int(torch.randint(1, 4, (), generator=g))):
        kind = int(torch.randint(len(SHAPES), (), generator=g))
        r = float(torch.empty(()).uniform_(0.1, 0.3, generator=g)) * n
        cy, cx = (float(v) for v in torch.empty(2).uniform_(r, n - r, generator=g))
        colour = torch.rand(channels, generator=g) * 0.7 + 0.3
        shapes.append((SHAPES[kind], cy, cx, r, colour))
        if r > largest:
            largest, label = r, kind
    return Scene(background, shapes, label)


class ShapeCanvas:
    """Renders scenes at one size, in [0, 1]: filled (the shapes' colours on a dark background)
    or outlined (thin outlines, white on black, or in the shapes' colours on a light background)."""

    def __init__(self, image_size: int) -> None:
        coords = torch.arange(image_size, dtype=torch.float32) + 0.5
        self.yy, self.xx = torch.meshgrid(coords, coords, indexing="ij")
        self.size = image_size
        self.line = max(1.0, image_size / 32)

    def filled(self, scene: Scene) -> torch.Tensor:
        image = scene.background[:, None, None].expand(-1, self.size, self.size).clone()
        for kind, cy, cx, r, colour in scene.shapes:
            image[:, _shape_mask(kind, self.yy, self.xx, cy, cx, r)] = colour[:, None]
        return image

    def outlined(self, scene: Scene, coloured: bool) -> torch.Tensor:
        channels = scene.background.shape[0]
        image = torch.full((channels, self.size, self.size), 0.9 if coloured else 0.0)
        for kind, cy, cx, r, colour in scene.shapes:
            inner = _shape_mask(kind, self.yy, self.xx, cy, cx, max(r - self.line * (2 if kind == "triangle" else 1), 0))
            edge = _shape_mask(kind, self.yy, self.xx, cy, cx, r) & ~inner
            image[:, edge] = (colour * 0.6)[:, None] if coloured else 1.0
        return image


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
        self.canvas = ShapeCanvas(image_size)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not 0 <= index < self.size:
            raise IndexError(f"ColouredShapes index {index} out of range for {self.size} images")
        scene = draw_scene(self.seed * 1_000_003 + index, self.image_size, self.channels)
        image = self.canvas.filled(scene)
        return (image if self.unit_range else image * 2 - 1), scene.label
