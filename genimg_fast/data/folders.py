"""User image folders for DCGAN and the VAE, read with torchvision, preprocessed as the
pytorch/examples DCGAN does (resize, centre crop, to [-1, 1]). A folder with class
subfolders is read as torchvision's ImageFolder reads it; a flat folder of images works too. Problems name the
path: a missing folder, a folder without images, a file that is not a readable image."""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset


def torchvision_module():
    """torchvision, or an error saying how to install it."""
    try:
        import torchvision
    except ImportError as exc:  # an optional dependency: the ops and models work without it
        raise ImportError("genimg_fast's image-folder data needs torchvision: pip install 'genimg-fast[images]' "
                          "(or the torchvision release that matches your torch)") from exc
    return torchvision


def dcgan_transform(image_size: int, channels: int = 3, unit_range: bool = False):
    transforms = torchvision_module().transforms
    mean, std = ((0.0,), (1.0,)) if unit_range else ((0.5,), (0.5,))
    steps = [transforms.Resize(image_size), transforms.CenterCrop(image_size)]
    if channels == 1:
        steps.append(transforms.Grayscale(1))
    return transforms.Compose(steps + [transforms.ToTensor(), transforms.Normalize(mean * channels, std * channels)])


def load_image(path: str):
    """The image at `path` (RGB, torchvision's default loader); an unreadable file is an error naming it."""
    loader = torchvision_module().datasets.folder.default_loader
    try:
        return loader(path)
    except Exception as exc:  # PIL raises several kinds; all mean the same to a user
        raise ValueError(f"{path}: not a readable image ({exc})") from exc


def image_files(folder: Path) -> list[Path]:
    """The image files directly in `folder`, sorted; a missing folder or one without images is an
    error naming it."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    extensions = torchvision_module().datasets.folder.IMG_EXTENSIONS
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in extensions)
    if not files:
        raise ValueError(f"{folder}: no image files (looked for {', '.join(extensions)})")
    return files


class FlatImageFolder(Dataset):
    """The given image files, label 0."""

    def __init__(self, files: list[Path], transform) -> None:
        self.files = files
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(load_image(str(self.files[index]))), 0


def _class_folders(root: Path) -> list[Path]:
    """The subfolders that make `root` a class-folder set: those holding images, not hidden ones
    (.ipynb_checkpoints, .DS_Store folders) or archive leftovers (__MACOSX)."""
    extensions = torchvision_module().datasets.folder.IMG_EXTENSIONS
    return sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith((".", "__"))
                  and any(f.is_file() and f.suffix.lower() in extensions for f in d.rglob("*")))


def image_folder(root: str | Path, image_size: int, channels: int = 3, unit_range: bool = False) -> Dataset:
    """The images under `root` for an unconditional model (labels unused): when subfolders hold
    images, those of each such folder in torchvision ImageFolder's order (its make_dataset), else
    the images directly in root."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (give a folder of images, or 'shapes' for the built-in set)")
    transform = dcgan_transform(image_size, channels, unit_range)
    classes = _class_folders(root)
    if not classes:
        return FlatImageFolder(image_files(root), transform)
    folder = torchvision_module().datasets.folder
    samples = folder.make_dataset(str(root), {d.name: i for i, d in enumerate(classes)}, folder.IMG_EXTENSIONS)
    # A module-level dataset, not an ImageFolder subclass made here: workers started by spawn
    # (macOS, Windows) must be able to pickle it.
    return FlatImageFolder([Path(path) for path, _ in samples], transform)
