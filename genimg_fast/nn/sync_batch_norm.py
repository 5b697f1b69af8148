"""Synchronized batch statistics for BatchNormAct2d (the fused counterpart of nn.SyncBatchNorm).

Forward: local (mean, var) -> all_gather (count, mean, M2) from every rank -> merge in rank order
(Chan et al.), so every rank gets bit-identical global statistics even with unequal batch sizes
or empty ranks -> running statistics with the global count -> normalize + activate locally.
Backward: local per-channel sums -> all_reduce -> dx with the global count. dweight/dbias are the
local sums, as in torch's SyncBatchNorm: DDP averages parameter gradients across ranks itself.
"""
from __future__ import annotations

import torch
import torch.distributed as dist

from genimg_fast.ops import _norm_act_backward_apply, _norm_act_backward_reduce, norm_act_apply, norm_act_stats
from genimg_fast.ops._checks import accumulation_dtype


def _local_moments(x: torch.Tensor) -> torch.Tensor:
    """[count, mean (C), M2 (C)] of this rank in float64 (exact counts, a careful merge)."""
    channels = x.shape[1]
    count = x.numel() // channels
    if count == 0:  # an empty rank still joins the collective, contributing nothing
        return x.new_zeros(1 + 2 * channels, dtype=torch.float64)
    mean, var = norm_act_stats(x, False)
    count_t = torch.full((1,), float(count), dtype=torch.float64, device=x.device)
    return torch.cat([count_t, mean.double(), var.double() * count])


def _merge(moments: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Chan's pairwise update, in rank order: (total count, mean, M2)."""
    n, mean, m2 = moments[0][:1], *moments[0][1:].chunk(2)
    for other in moments[1:]:
        n_b, mean_b, m2_b = other[:1], *other[1:].chunk(2)
        total = n + n_b
        safe = total.clamp_min(1)  # both empty: keep zeros instead of 0/0
        delta = mean_b - mean
        mean = mean + delta * (n_b / safe)
        m2 = m2 + m2_b + delta * delta * (n * n_b / safe)
        n = total
    return n, mean, m2


def _global_stats(x: torch.Tensor, group) -> tuple[torch.Tensor, torch.Tensor, int]:
    local = _local_moments(x)
    gathered = [torch.empty_like(local) for _ in range(dist.get_world_size(group))]
    dist.all_gather(gathered, local, group=group)
    n, mean, m2 = _merge(gathered)
    count = int(n.item())  # the ops take the count as a number: one host sync, as torch's SyncBatchNorm
    acc = accumulation_dtype(x.dtype)
    return mean.to(acc), (m2 / max(count, 1)).to(acc), count


class SyncNormAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, update_running, eps, activation, slope, group):
        mean, var, count = _global_stats(x, group)
        if count == 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {x.shape} "
                             "(1 value per channel over all processes)")
        if update_running is not None:  # with the global count (0 when every rank is empty)
            update_running(mean, var, count)
        ctx.save_for_backward(x, weight, bias, mean, var)
        ctx.options = (eps, activation, slope)
        ctx.group, ctx.count = group, count
        if x.numel() == 0:
            return torch.empty_like(x)
        return norm_act_apply(x, mean, var, weight, bias, eps, activation, slope)

    @staticmethod
    def backward(ctx, grad_y):
        x, weight, bias, mean, var = ctx.saved_tensors
        if x.numel() > 0:
            sum_dz, sum_dz_xhat = _norm_act_backward_reduce(grad_y, x, mean, var, weight, bias, *ctx.options)
        else:
            sum_dz, sum_dz_xhat = torch.zeros_like(mean), torch.zeros_like(mean)
        needs = ctx.needs_input_grad
        dweight = sum_dz_xhat.to(weight.dtype) if needs[1] else None  # local, like torch
        dbias = sum_dz.to(bias.dtype) if needs[2] else None
        dx = None
        if needs[0]:
            sums = torch.stack([sum_dz, sum_dz_xhat])  # a copy: the local sums above stay local
            dist.all_reduce(sums, group=ctx.group)
            dx = (_norm_act_backward_apply(grad_y, x, mean, var, weight, bias, sums[0], sums[1], float(ctx.count),
                                          *ctx.options) if x.numel() > 0 else torch.zeros_like(x))
        return dx, dweight, dbias, None, None, None, None, None


def sync_norm_act(x, weight, bias, update_running, eps, activation, slope, group):
    """update_running(mean, var, count): the module's running-statistics update, or None."""
    return SyncNormAct.apply(x, weight, bias, update_running, eps, activation, slope, group)
