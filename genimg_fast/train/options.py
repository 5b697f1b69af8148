"""Options every trainer shares (its own config dataclass adds the recipe's), and the speed
options applied to its networks: channels_last memory format and torch.compile. (Mixed precision
is precision.py.)"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genimg_fast.seeding import SEED_LIMIT
from genimg_fast.train.cuda_graphs_choice import check_mode as check_cuda_graphs_mode
from genimg_fast.train.distributed import Distributed, synchronize_batch_norms


@dataclass
class RunOptions:
    max_steps: int | None = None      # stop after this many iterations in all (resumable)
    impl: str = "fused"               # 'fused' or 'reference'
    amp: str = "none"                 # 'none', 'bf16' or 'fp16' (with a gradient scaler)
    channels_last: bool = False
    compile: bool = False
    cuda_graphs: str = "auto"         # 'auto', 'on' or 'off': the iteration as one CUDA graph (cuda_graphs_choice.py)
    device: str = "auto"
    seed: int = 0
    sample_every: int = 100
    log_every: int = 10               # losses are read from the device this often; every step is logged
    workers: int | None = None        # data-loading processes; None: as the machine allows (workers.py)
    resume: bool = False
    overwrite: bool = False           # start afresh in an --out that holds a run (folder_claim.py)
    save_every_minutes: float = 10.0  # the resumable state also every this many minutes (0: epoch ends only)
    progress: bool = True


# Sizes and counts of the recipes' configs (each has some of them; None: the recipe's default).
# Widths of 0 or below would only fail later, inside a convolution, with torch's words.
AT_LEAST_ONE = ("batch_size", "log_every", "nz", "ngf", "ndf", "latent_dim", "image_size", "load_size", "crop_size")
# 0 means none (no workers, no decay, no pool, only the epoch's sample, no such loss term); a learning
# rate of 0 is allowed (torch's Adam takes it: a run that only measures), a negative one is not.
NOT_NEGATIVE = ("epochs", "workers", "epochs_decay", "pool_size", "sample_every", "lr", "lambda_A", "lambda_B",
                "lambda_identity", "lambda_L1", "save_every_minutes")


def check_run_options(options: RunOptions) -> None:
    """The options' ranges, checked before anything runs: a ValueError naming the option."""
    for name in AT_LEAST_ONE:
        value = getattr(options, name, None)
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    for name in NOT_NEGATIVE:
        value = getattr(options, name, None)
        if value is not None and value < 0:  # workers None: automatic
            raise ValueError(f"{name} must not be negative, got {value}")
    beta1 = getattr(options, "beta1", None)
    if beta1 is not None and not 0 <= beta1 < 1:  # Adam's first moment decay
        raise ValueError(f"beta1 must be at least 0 and below 1, got {beta1}")
    if getattr(options, "save_epoch_freq", 1) < 1:
        raise ValueError(f"save_epoch_freq must be at least 1, got {options.save_epoch_freq}")
    if options.data == "shapes" and options.dataset_size < 1:
        raise ValueError(f"dataset_size must be at least 1 for the built-in data, got {options.dataset_size}")
    if not 0 <= options.seed < SEED_LIMIT:
        raise ValueError(f"seed must be between 0 and 2**63 - 1, got {options.seed}")
    if options.max_steps is not None and options.max_steps < 0:
        raise ValueError(f"max_steps must not be negative, got {options.max_steps}")
    if options.impl not in ("fused", "reference"):
        raise ValueError(f"impl must be 'fused' or 'reference', got {options.impl!r}")
    if options.amp not in ("none", "bf16", "fp16"):
        raise ValueError(f"amp must be 'none', 'bf16' or 'fp16', got {options.amp!r}")
    check_cuda_graphs_mode(options.cuda_graphs)
    if options.resume and options.overwrite:
        raise ValueError("resume continues the run in --out, overwrite starts afresh there: give one of them")


def check_distributed(options: RunOptions, device: torch.device, distributed: Distributed) -> None:
    if distributed.active and options.impl == "reference" and device.type == "cpu":
        raise ValueError("several CPU processes need impl='fused': the reference path's nn.SyncBatchNorm runs on GPUs "
                         "only")


def adam(params, lr: float, betas: tuple[float, float], device: torch.device, capturable: bool):
    """The recipes' Adam; capturable (device step counter, tensor learning rate that schedulers
    fill in place) when the iteration is captured in a CUDA graph."""
    if capturable:
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


def load_optimizer(optimizer: torch.optim.Optimizer, state: dict, capturable: bool) -> None:
    """load_state_dict, then this run's needs back in place: Optimizer.load_state_dict takes the
    saved groups' flags and learning rate, so a state saved by a captured run would make an eager
    run capturable (and one saved by an eager run, the other way round)."""
    lrs = [group["lr"] for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, lr in zip(optimizer.param_groups, lrs):
        saved_lr = float(group["lr"])
        if capturable:  # the device tensor made for the capture, filled with the saved rate
            group["lr"] = lr
            lr.fill_(saved_lr)
        else:
            group["lr"] = saved_lr
        group["capturable"] = capturable
        for p in group["params"]:
            step = optimizer.state.get(p, {}).get("step")
            where = p.device if capturable else torch.device("cpu")
            if torch.is_tensor(step) and step.device != where:
                optimizer.state[p]["step"] = step.to(where)
