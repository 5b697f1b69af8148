"""`genimg-fast train <model>` options, made from each trainer's config dataclass: one flag per
field (--image-size for image_size), its default shown, the help text below."""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any

HELP = {
    "data": "'shapes' (built in, generated: no download) or a folder of images (class subfolders or flat)",
    "out": "output folder: checkpoints, samples, losses.jsonl, loss_curve.png, training_state.pt",
    "model": "'mlp' (pytorch/examples, 28x28 grey) or 'conv' (64x64 colour, fused norms)",
    "image_size": "32, 64, 128 or 256",
    "channels": "1 (grey) or 3",
    "dataset_size": "images in the built-in set",
    "max_steps": "stop after this many iterations in all; --resume continues",
    "lr": "learning rate (None: the recipe's)",
    "latent_dim": "latent size (None: the recipe's)",
    "impl": "'fused' (genimg_fast's networks and losses) or 'reference' (plain torch.nn, for A/B runs)",
    "device": "auto (GPU if present), cpu or cuda[:N]",
    "sample_every": "iterations between sample grids (each epoch's end has one too)",
    "log_every": "read the losses from the device this often (every iteration is logged)",
    "workers": "data-loading processes",
    "resume": "continue the run in --out exactly where it stopped",
}
CHOICES = {"impl": ("fused", "reference"), "channels": (1, 3), "model": ("mlp", "conv")}


def _value_type(annotation: str):
    if "int" in annotation:
        return int
    if "float" in annotation:
        return float
    return str


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: type) -> None:
    for field in dataclasses.fields(config_cls):
        help_text = HELP.get(field.name)
        if field.name == "progress":
            parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
        elif isinstance(field.default, bool):
            parser.add_argument(f"--{field.name.replace('_', '-')}", action="store_true", help=help_text)
        else:
            parser.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name, type=_value_type(str(field.type)),
                                default=field.default, choices=CHOICES.get(field.name), help=help_text)


def config_from_arguments(config_cls: type, args: argparse.Namespace) -> Any:
    names = {field.name for field in dataclasses.fields(config_cls)}
    return config_cls(**{k: v for k, v in vars(args).items() if k in names})
