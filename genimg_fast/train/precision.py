"""Mixed precision for a training step: autocast to bf16 or fp16 around the forward passes and
losses; with fp16 a gradient scaler (one per run, stepping every optimizer of the iteration,
updated once per iteration), so small gradients survive fp16. 'none' is plain fp32."""
from __future__ import annotations

import contextlib

import torch

from genimg_fast.train.distributed import Distributed


class Precision:
    """Also where a data-parallel run averages each optimizer's gradients over the processes,
    just before the optimizer steps."""

    def __init__(self, mode: str, device: torch.device, distributed: Distributed | None = None) -> None:
        self.mode, self.device_type = mode, device.type
        self.distributed = distributed or Distributed()
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mode)
        self.scaler = torch.amp.GradScaler(device.type) if mode == "fp16" else None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        self.distributed.average_gradients(optimizer)  # scaled gradients average the same way
        if self.scaler is not None:
            self.scaler.step(optimizer)
        else:
            optimizer.step()

    def update(self) -> None:
        """Once per iteration, after every optimizer stepped."""
        if self.scaler is not None:
            self.scaler.update()

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
