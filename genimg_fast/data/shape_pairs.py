"""Built-in image-to-image sets, drawn from the same scenes as ColouredShapes, in [-1, 1]:

- OutlinesToShapes (paired, pix2pix): A = the scene's outlines, white on black; B = the scene
  filled in colour. Learning A -> B is filling in the shapes with their colours.
- UnpairedShapeStyles (CycleGAN): A = scenes filled in colour; B = other scenes drawn as
  coloured outlines on a light background; each A is paired with a B drawn at random every
  epoch (call set_epoch), as junyanz's unaligned data set does.
"""
from __future__ import annotations

import torch
from torch.utils.data import Dataset

from genimg_fast.data.epoch_seeded import EpochSeeded
from genimg_fast.data.shapes import ShapeCanvas, draw_scene


class OutlinesToShapes(Dataset):
    def __init__(self, size: int = 1024, image_size: int = 64, seed: int = 0) -> None:
        self.size, self.image_size, self.seed = size, image_size, seed
        self.canvas = ShapeCanvas(image_size)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        scene = draw_scene(self.seed * 1_000_003 + index, self.image_size, 3)
        return self.canvas.outlined(scene, coloured=False) * 2 - 1, self.canvas.filled(scene) * 2 - 1


class UnpairedShapeStyles(EpochSeeded):
    def __init__(self, size: int = 1024, image_size: int = 64, seed: int = 0) -> None:
        super().__init__(seed)
        self.size, self.image_size = size, image_size
        self.canvas = ShapeCanvas(image_size)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.canvas.filled(draw_scene(self.seed * 1_000_003 + index, self.image_size, 3))
        b_index = int(torch.randint(self.size, (), generator=self._generator(index, 1)))  # as UnalignedFolder draws
        b = self.canvas.outlined(draw_scene((self.seed + 1) * 1_000_003 + b_index, self.image_size, 3), coloured=True)
        return a * 2 - 1, b * 2 - 1
