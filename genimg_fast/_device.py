"""The device a command runs on: 'auto' is the GPU when torch sees one, else the CPU. A device
that is not one, one genimg_fast does not run on (meta, mps, ...) or CUDA without a GPU is the
user's mistake: a ValueError naming --device (the CLI says it in one line, exit status 2)."""
from __future__ import annotations

import torch

SUPPORTED = ("cpu", "cuda")  # the device types the commands run on


def resolve_device(name: str, command: str) -> torch.device:
    """The torch.device --device `name` asks for; `command` (e.g. 'train') is named in the
    ValueError's message when it is not one this command can use."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r} is not a device (auto, cpu, cuda or cuda:N)") from None
    if device.type not in SUPPORTED:
        raise ValueError(f"--device {name!r}: {command} runs on auto, cpu, cuda or cuda:N, not on {device.type}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name} requested but torch sees no CUDA GPU")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"--device {name} requested but torch sees {torch.cuda.device_count()} GPU(s)")
    return device
