"""junyanz's data layouts for pix2pix and CycleGAN, with its default preprocessing
(resize_and_crop: resize to load_size x load_size, random crop_size crop, random horizontal
flip, to [-1, 1]):

- AlignedFolder: root/<phase>/* images holding A | B side by side, split at half the width,
  both halves cropped and flipped alike (pix2pix).
- UnalignedFolder: root/<phase>A and root/<phase>B; B drawn at random for each A (CycleGAN).

The random crops, flips and draws come from (seed, epoch, index) (call set_epoch), so runs
are reproducible and resume exactly. Problems name the path.
"""
from __future__ import annotations

from pathlib import Path

import torch

from genimg_fast.data.epoch_seeded import EpochSeeded
from genimg_fast.data.folders import image_files, load_image, torchvision_module


class ResizeCropFlip:
    """junyanz's resize_and_crop + flip, to a [-1, 1] tensor of `channels` channels, with the crop
    and flip drawn from a generator (params), or given (translate: the whole image, no flip)."""

    def __init__(self, load_size: int, crop_size: int, flip: bool, channels: int = 3) -> None:
        if crop_size > load_size:
            raise ValueError(f"crop_size ({crop_size}) must not exceed load_size ({load_size})")
        self.load_size, self.crop_size, self.flip, self.channels = load_size, crop_size, flip, channels

    def params(self, g: torch.Generator) -> tuple[int, int, bool]:
        span = self.load_size - self.crop_size + 1
        top, left = (int(v) for v in torch.randint(span, (2,), generator=g))
        return top, left, self.flip and bool(torch.rand((), generator=g) < 0.5)

    def __call__(self, image, params: tuple[int, int, bool]) -> torch.Tensor:
        F = torchvision_module().transforms.functional
        top, left, flip = params
        image = F.resize(image, [self.load_size, self.load_size], interpolation=F.InterpolationMode.BICUBIC)
        image = F.crop(image, top, left, self.crop_size, self.crop_size)
        if flip:
            image = F.hflip(image)
        mode = "L" if self.channels == 1 else "RGB"
        if image.mode != mode:  # the loader gives RGB; convert would copy it all the same
            image = image.convert(mode)
        return F.normalize(F.to_tensor(image), [0.5] * self.channels, [0.5] * self.channels)


def split_aligned(image, path: str):
    """(A, B) of an image holding A | B side by side, split at half the width (B gets the extra
    column of an odd width); an image too narrow for both halves is an error naming its path
    (the trainer and `translate --aligned` refuse the same images)."""
    w, h = image.size
    if w < 2:
        raise ValueError(f"{path}: too narrow to hold A | B side by side ({w} pixel{'s' if w != 1 else ''} wide)")
    return image.crop((0, 0, w // 2, h)), image.crop((w // 2, 0, w, h))


class AlignedFolder(EpochSeeded):
    def __init__(self, root: str | Path, phase: str = "train", load_size: int = 286, crop_size: int = 256,
                 flip: bool = True, seed: int = 0) -> None:
        super().__init__(seed)
        self.preprocess = ResizeCropFlip(load_size, crop_size, flip)
        self.files = image_files(Path(root) / phase)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        path = str(self.files[index])
        a, b = split_aligned(load_image(path), path)
        params = self.preprocess.params(self._generator(index, 0))
        return self.preprocess(a, params), self.preprocess(b, params)


class UnalignedFolder(EpochSeeded):
    def __init__(self, root: str | Path, phase: str = "train", load_size: int = 286, crop_size: int = 256,
                 flip: bool = True, seed: int = 0) -> None:
        super().__init__(seed)
        self.preprocess = ResizeCropFlip(load_size, crop_size, flip)
        self.files_a = image_files(Path(root) / f"{phase}A")
        self.files_b = image_files(Path(root) / f"{phase}B")

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = self._generator(index, 1)
        path_a = self.files_a[index % len(self.files_a)]
        path_b = self.files_b[int(torch.randint(len(self.files_b), (), generator=g))]
        a = self.preprocess(load_image(str(path_a)), self.preprocess.params(g))
        b = self.preprocess(load_image(str(path_b)), self.preprocess.params(g))
        return a, b
