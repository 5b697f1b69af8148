"""junyanz's 'linear' learning-rate policy: the initial rate for `epochs` epochs, then linear
decay over `epochs_decay` more (rate factor 1 - k / (epochs_decay + 1) in the k-th decaying
epoch). The scheduler steps at the end of every epoch."""
from __future__ import annotations

import torch


def linear_decay(optimizer: torch.optim.Optimizer, epochs: int, epochs_decay: int) -> torch.optim.lr_scheduler.LambdaLR:
    def rule(epoch: int) -> float:  # epoch counts from 0
        return 1.0 - max(0, epoch + 1 - epochs) / float(epochs_decay + 1)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, rule)
