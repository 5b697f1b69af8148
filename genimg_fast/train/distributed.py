"""Data-parallel training across processes (`torchrun --nproc-per-node N -m genimg_fast.cli
train ...`): every process takes an equal slice of each global batch (and of the noise drawn
for it), batch norm statistics are synchronized across processes (the fused norms' sync
option, or nn.SyncBatchNorm on the reference path), and the gradients of each optimizer are
averaged before it steps, so N processes compute what one process computes on the whole batch.
Gradients are all-reduced explicitly rather than through DistributedDataParallel: the GAN
recipes run a discriminator several times before one backward, which DDP's reducer does not
allow. The noise DCGAN feeds its generator is drawn for the whole batch and sliced, so that run
is the one-process run exactly; the other random draws (dropout masks, the VAE's noise, image
pools) come from a stream per process. Only rank 0 writes files; the logged losses are averaged
over the processes."""
from __future__ import annotations

import os
import random
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from genimg_fast.seeding import derived_seed


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def writes(self) -> bool:
        return self.rank == 0

    def shard(self, rows):
        """This process's contiguous slice of a global batch (a tensor or a list)."""
        if not self.active:
            return rows
        size = len(rows) // self.world
        return rows[self.rank * size:(self.rank + 1) * size]

    def average_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        """One all-reduce per dtype and device over the flattened gradients, not one per parameter
        (a network has dozens: each collective has a fixed cost every step)."""
        if not self.active:
            return
        buckets: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    buckets.setdefault((p.grad.dtype, p.grad.device), []).append(p.grad)
        for grads in buckets.values():
            flat = _flatten_dense_tensors(grads)
            dist.all_reduce(flat)
            flat.div_(self.world)
            for grad, averaged in zip(grads, _unflatten_dense_tensors(flat, grads)):
                grad.copy_(averaged)

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return tensor
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor / self.world

    def gather(self, value) -> list:
        """Every process's value, in rank order (a collective: every process calls it)."""
        if not self.active:
            return [value]
        values = [None] * self.world
        dist.all_gather_object(values, value)
        return values

    def any(self, flag: bool, device: torch.device) -> bool:
        """Whether any process says yes (all stop together, or a collective would wait forever)."""
        if not self.active:
            return flag
        value = torch.tensor(float(flag), device=device)
        dist.all_reduce(value)
        return bool(value.item() > 0)


def seed_process_draws(seed: int, distributed: Distributed) -> None:
    """After the networks were built alike from the seed: what each process draws from here on
    (dropout masks, the VAE's noise, CycleGAN's image-pool choices) comes from a stream of its own,
    as the slices of one batch would. Rank 0 keeps the stream a single process has, so one
    process runs as before."""
    if distributed.rank == 0:
        return
    rank_seed = derived_seed(seed * 1_000_003 + distributed.rank)
    torch.manual_seed(rank_seed)  # CPU and every GPU
    random.seed(rank_seed)


def from_environment(device_name: str) -> tuple[Distributed, str]:
    """The process group torchrun describes in the environment (none: one process), and the
    device this process should use (its LOCAL_RANK's GPU under torchrun with GPUs)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed(), device_name
    if device_name.startswith("cuda:"):
        raise ValueError(f"under torchrun each process takes its LOCAL_RANK's GPU: give --device cuda (or auto), "
                         f"not {device_name}")
    uses_gpu = device_name != "cpu" and torch.cuda.is_available()
    if uses_gpu and device_name in ("auto", "cuda"):  # one GPU a process: its LOCAL_RANK's
        device_name = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(torch.device(device_name))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if uses_gpu else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size()), device_name


def synchronize_batch_norms(net: nn.Module, fused: bool) -> nn.Module:
    """Batch norm statistics over the global batch, in place: genimg_fast.sync_batchnorm for the
    fused networks, nn.SyncBatchNorm for the reference layers."""
    if fused:
        from genimg_fast.convert import sync_batchnorm
        return sync_batchnorm(net, inplace=True)
    return nn.SyncBatchNorm.convert_sync_batchnorm(net)
