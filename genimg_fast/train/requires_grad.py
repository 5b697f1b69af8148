"""The reference freezes the discriminators during the generator step: their parameters get no
gradient there (less work, and no stale gradient to clear)."""
from __future__ import annotations

from collections.abc import Iterable

from torch import nn


def set_requires_grad(nets: Iterable[nn.Module], requires_grad: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(requires_grad)
