"""The device a command runs on: 'auto' is the GPU when torch sees one, else the CPU; asking for
CUDA without a GPU is an error naming the command."""
from __future__ import annotations

import torch


def resolve_device(name: str, command: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SystemExit(f"genimg-fast {command}: --device {name!r} is not a device (auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"genimg-fast {command}: --device {name} requested but torch sees no CUDA GPU")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise SystemExit(f"genimg-fast {command}: --device {name} requested but torch sees "
                         f"{torch.cuda.device_count()} GPU(s)")
    return device
