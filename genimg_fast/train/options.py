"""Options every trainer shares (its own config dataclass adds the recipe's), and the speed
options applied to its networks: channels_last memory format and torch.compile. (Mixed precision
is precision.py.)"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genimg_fast.train.distributed import Distributed, synchronize_batch_norms


@dataclass
class RunOptions:
    max_steps: int | None = None      # stop after this many iterations in all (resumable)
    impl: str = "fused"               # 'fused' or 'reference'
    amp: str = "none"                 # 'none', 'bf16' or 'fp16' (with a gradient scaler)
    channels_last: bool = False
    compile: bool = False
    cuda_graphs: bool = False         # capture the whole iteration in a CUDA graph (GPU, one process)
    device: str = "auto"
    seed: int = 0
    sample_every: int = 100
    log_every: int = 10               # losses are read from the device this often; every step is logged
    workers: int = 0
    resume: bool = False
    progress: bool = True


def check_run_options(options: RunOptions) -> None:
    if options.impl not in ("fused", "reference"):
        raise ValueError(f"impl must be 'fused' or 'reference', got {options.impl!r}")
    if options.amp not in ("none", "bf16", "fp16"):
        raise ValueError(f"amp must be 'none', 'bf16' or 'fp16', got {options.amp!r}")
    if options.cuda_graphs and options.amp == "fp16":
        raise ValueError("cuda_graphs cannot capture fp16's gradient scaler (it reads the gradients on the host): "
                         "use amp='bf16' or 'none'")


def check_cuda_graphs(options: RunOptions, device: torch.device, distributed: Distributed) -> None:
    if options.cuda_graphs and device.type != "cuda":
        raise ValueError(f"cuda_graphs needs a CUDA device, the run is on {device}")
    if options.cuda_graphs and distributed.active:
        raise ValueError("cuda_graphs runs in one process (the data-parallel gradient exchange is not captured)")


def adam(params, lr: float, betas: tuple[float, float], options: RunOptions, device: torch.device):
    """The recipes' Adam; capturable (device step counter, tensor learning rate that schedulers
    fill in place) when the iteration is captured in a CUDA graph."""
    if options.cuda_graphs:
        return torch.optim.Adam(params, lr=torch.tensor(lr, device=device), betas=betas, capturable=True)
    return torch.optim.Adam(params, lr=lr, betas=betas)

def prepare_networks(networks: list[nn.Module], options: RunOptions, distributed: Distributed) -> None:
    """In place, so optimizers, state_dict keys and checkpoints stay those of the plain networks."""
    for net in networks:
        if distributed.active:
            synchronize_batch_norms(net, options.impl == "fused")
        if options.channels_last:
            net.to(memory_format=torch.channels_last)
        if options.compile:
            net.compile()


def prepare_batch(batch: tuple[torch.Tensor, ...], options: RunOptions) -> tuple[torch.Tensor, ...]:
    if not options.channels_last:
        return batch
    return tuple(t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in batch)
