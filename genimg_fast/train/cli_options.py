"""`genimg-fast train <model>` options, made from each trainer's config dataclass: one flag per
field (--image-size for image_size), its default shown, the help text below. With --resume, the
options not given on the command line are the resumed run's, not the defaults: `--out runs/faces
--resume` continues the run made with `--data ~/faces --epochs 5` as it was."""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from genimg_fast.models.factories import DISCRIMINATORS, GENERATORS
from genimg_fast.models.norm_layers import NORMS
from genimg_fast.train.vae import MODELS as VAE_MODELS

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
    "sample_every": "iterations between sample grids (each epoch's end has one too; 0: only there)",
    "log_every": "read the losses from the device this often (every iteration is logged)",
    "workers": "data-loading processes; auto: on a GPU, one fewer than the CPUs this process may use (split among "
               "torchrun's processes on a node), at most 8; on a CPU 0 (its cores run the model); a count "
               "above those CPUs is capped to them",
    "resume": "continue the run in --out exactly where it stopped",
    "overwrite": "start afresh in an --out that holds a stopped or finished run (without it, that is refused)",
    "save_every_minutes": "also save the resumable state every this many minutes, so a kill loses at most that "
                          "much training (0: at epoch ends only)",
    "logits": "D without its final Sigmoid and BCE on logits (the same loss, numerically safer)",
    "no_progress": "no progress bar",
    "amp": "mixed precision: bf16, or fp16 with a gradient scaler",
    "channels_last": "networks and batches in channels_last memory format",
    "compile": "torch.compile the networks",
    "cuda_graphs": "each whole iteration as one CUDA graph: auto (wherever it can: one GPU, not with --amp fp16 "
                   "or --compile; the header says why not), on (or stop with the reason) or off",
    "no_dropout": "no dropout in the generator (the reference's --no_dropout)",
    "phase": "the dataroot's subfolder(s): <phase>/ (aligned) or <phase>A/, <phase>B/ (unaligned)",
    "load_size": "images are resized to this square first (folders)",
    "crop_size": "then randomly cropped to this (the training size; the built-in set is drawn at it)",
    "epochs_decay": "epochs of linear decay of the learning rate to zero, after --epochs at the initial rate",
    "save_epoch_freq": "also keep <epoch>_net_*.pth every this many epochs",
    "lambda_identity": "weight of the identity terms, relative to lambda_A / lambda_B (0: none)",
    "pool_size": "generated images the discriminators draw from (0: none)",
}
CHOICES = {"impl": ("fused", "reference"), "amp": ("none", "bf16", "fp16"), "cuda_graphs": ("auto", "on", "off"), "channels": (1, 3), "model": tuple(VAE_MODELS),
           "netG": GENERATORS, "netD": DISCRIMINATORS, "norm": NORMS, "gan_mode": ("lsgan", "vanilla", "wgangp"),
           "direction": ("AtoB", "BtoA")}


# Options that steer one invocation, not the run: a resumed run does not take them over. The speed
# switches (the same numbers either way) are among them: a switch cannot be turned off again.
NOT_RESUMED = ("out", "resume", "overwrite", "max_steps", "device", "workers", "progress", "save_every_minutes", "compile",
               "channels_last", "cuda_graphs")
GIVEN = "given_options"  # the namespace attribute listing the options given on the command line


def _worker_count(text: str) -> int | None:
    """--workers: 'auto' (None in the config: as the machine allows) or a number of processes."""
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'auto' or a whole number, got {text!r}") from None


# Flags that read otherwise than their field's type: --workers takes 'auto', its default (shown so
# in --help; argparse passes a string default through the type, so the config gets None).
ARGUMENTS = {"workers": {"type": _worker_count, "default": "auto"}}


def _note_given(namespace: argparse.Namespace, dest: str) -> None:
    setattr(namespace, GIVEN, getattr(namespace, GIVEN, frozenset()) | {dest})


class _Store(argparse.Action):
    """argparse's store, noting that the option was given."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        _note_given(namespace, self.dest)


class _Flag(argparse.Action):
    """A switch (store_true / store_false), noting that it was given."""

    def __init__(self, option_strings, dest, const, default=None, help=None):
        super().__init__(option_strings, dest, nargs=0, const=const, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, self.const)
        _note_given(namespace, self.dest)


def _value_type(annotation: str):
    if "int" in annotation:
        return int
    if "float" in annotation:
        return float
    return str


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: type) -> None:
    from genimg_fast.train.options import RunOptions

    shared = {field.name for field in dataclasses.fields(RunOptions)}
    fields = dataclasses.fields(config_cls)
    for field in [f for f in fields if f.name not in shared] + [f for f in fields if f.name in shared]:
        help_text = HELP.get(field.name)
        if isinstance(field.default, bool) and field.default:  # on by default: a --no-... flag turns it off
            parser.add_argument(f"--no-{field.name.replace('_', '-')}", dest=field.name, action=_Flag, const=False,
                                default=True, help=HELP.get(f"no_{field.name}"))
        elif isinstance(field.default, bool):
            parser.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name, action=_Flag, const=True,
                                default=False, help=help_text)
        else:
            settings = {"type": _value_type(str(field.type)), "default": field.default,
                        "choices": CHOICES.get(field.name)}
            parser.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name, action=_Store, help=help_text,
                                **settings | ARGUMENTS.get(field.name, {}))


def config_from_arguments(config_cls: type, args: argparse.Namespace, resumed: dict | None = None) -> Any:
    """The config the command line asks for; with `resumed` (the config record of the run being
    resumed), the options not given are taken from it (but those in NOT_RESUMED)."""
    names = {field.name for field in dataclasses.fields(config_cls)}
    values = {k: v for k, v in vars(args).items() if k in names}
    given = getattr(args, GIVEN, frozenset())
    if resumed is not None:
        values.update({k: v for k, v in resumed.items() if k in names and k not in given and k not in NOT_RESUMED})
    return config_cls(**values)
