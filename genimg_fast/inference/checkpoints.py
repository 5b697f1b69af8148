"""Networks rebuilt from plain state_dict checkpoints (ours or the references'): the architecture
is read off the tensors' names and shapes, then the weights load with strict=True, so a
checkpoint that fits no known network is an error naming the file, never a silent mismatch."""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import torch
from torch import nn

from genimg_fast._safe_load import load_torch_file
from genimg_fast.models import VAE, ConvVAE, DCGANGenerator, define_G
from genimg_fast.models.factories import GENERATORS


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    state = load_torch_file(path, "checkpoint")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a plain state_dict (a dict of tensors)")
    return state


def _strict(net: nn.Module, state: dict, path) -> nn.Module:
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: does not fit the network read from its own shapes: {exc}") from exc
    return net


def dcgan_generator(path: str | Path, fused: bool = True) -> DCGANGenerator:
    state = load_state(path)
    convs = sorted(int(k.split(".")[1]) for k in state if k.startswith("main.") and state[k].dim() == 4)
    if not convs or "main.0.weight" not in state:
        raise ValueError(f"{path}: not a DCGAN generator (no main.0.weight)")
    first, last = state["main.0.weight"], state[f"main.{convs[-1]}.weight"]
    image_size = 2 ** (convs[-1] // 3 + 2)
    if first.dim() != 4 or last.dim() != 4:
        raise ValueError(f"{path}: not a DCGAN generator (main.0.weight is not a convolution's)")
    try:
        net = DCGANGenerator(first.shape[0], last.shape[0], last.shape[1], image_size, fused=fused, init=False)
    except ValueError as exc:  # e.g. a discriminator's layers, read as a generator's
        raise ValueError(f"{path}: not a DCGAN generator: its layers fit none ({exc})") from None
    return _strict(net, state, path)


def vae(path: str | Path, fused: bool = True) -> VAE | ConvVAE:
    state = load_state(path)
    if "fc1.weight" in state:
        net = VAE(state["fc1.weight"].shape[1], state["fc1.weight"].shape[0], state["fc21.weight"].shape[0])
        return _strict(net, state, path)
    if "fc_mu.weight" not in state:
        raise ValueError(f"{path}: not a VAE checkpoint (neither fc1.weight nor fc_mu.weight)")
    blocks = sorted({int(k.split(".")[1]) for k in state if k.startswith("encoder.")})
    hidden = [state[f"encoder.{i}.0.weight"].shape[0] for i in blocks]
    latent, flat = state["fc_mu.weight"].shape
    bottom = math.isqrt(flat // hidden[-1])
    net = ConvVAE(state["encoder.0.0.weight"].shape[1], latent, hidden, bottom * 2 ** len(hidden), fused=fused)
    return _strict(net, state, path)


def image_generator(path: str | Path, dropout: bool = True, fused: bool = True) -> tuple[nn.Module, str]:
    """A junyanz generator (resnet_9blocks/6blocks, unet_256/128, batch or instance norm) and
    its name. U-Net dropout leaves no trace in a checkpoint: `dropout` says whether it was built
    with it (pix2pix's default)."""
    state = load_state(path)
    first = state.get("model.model.0.weight", state.get("model.1.weight"))
    if first is None:
        raise ValueError(f"{path}: not a junyanz generator (no model.1.weight or model.model.0.weight)")
    ngf, input_nc = first.shape[0], first.shape[1]
    if "model.model.0.weight" in state:
        output_nc = state["model.model.3.weight"].shape[1]
    else:
        last = max(int(k.split(".")[1]) for k in state if k.startswith("model.") and k.endswith(".weight"))
        output_nc = state[f"model.{last}.weight"].shape[0]
    kinds = [g for g in GENERATORS if g.startswith("unet" if "model.model.0.weight" in state else "resnet")]
    for netG, norm, use_dropout in itertools.product(kinds, ("batch", "instance"), (dropout, not dropout)):
        try:
            net = define_G(input_nc, output_nc, ngf, netG, norm, use_dropout, fused=fused)
            net.load_state_dict(state, strict=True)
            return net, netG
        except (RuntimeError, ValueError):
            continue
    raise ValueError(f"{path}: fits none of {', '.join(GENERATORS)} with batch or instance norm")
