"""Plain-PyTorch math of the fused normalization + activation ops (the references).

Shapes: x is (N, C, H, W); statistics are per channel, shape (C,) (batch norm), or per
sample and channel, shape (N, C) (instance norm). Everything is computed in the
accumulation dtype (fp32, fp64 for fp64 input) and rounded once to x's dtype.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from genimg_fast.ops._checks import accumulation_dtype

ACTIVATIONS = ("identity", "relu", "leaky_relu")


def reduce_dims(per_sample: bool) -> tuple[int, ...]:
    return (2, 3) if per_sample else (0, 2, 3)


def group_view(stat: torch.Tensor) -> torch.Tensor:
    """(C,) -> (1, C, 1, 1); (N, C) -> (N, C, 1, 1): broadcastable against x."""
    return stat.reshape(1, -1, 1, 1) if stat.dim() == 1 else stat.reshape(*stat.shape, 1, 1)


def channel_view(param: torch.Tensor | None, acc: torch.dtype, default: float) -> torch.Tensor | float:
    return default if param is None else param.to(acc).reshape(1, -1, 1, 1)


def group_count(x: torch.Tensor, per_sample: bool) -> int:
    n, _, h, w = x.shape
    return h * w if per_sample else n * h * w


def activation_forward(z: torch.Tensor, activation: str, slope: float) -> torch.Tensor:
    if activation == "relu":
        return torch.relu(z)
    if activation == "leaky_relu":
        return F.leaky_relu(z, slope)
    return z


def activation_grad(z: torch.Tensor, activation: str, slope: float) -> torch.Tensor | float:
    if activation == "relu":  # torch's threshold_backward: the gradient passes where z <= 0 is false (NaN too)
        return (z <= 0).logical_not().to(z.dtype)
    if activation == "leaky_relu":  # built in z's dtype: a Python-scalar where() would round slope to fp32
        return torch.full_like(z, slope).masked_fill_(z > 0, 1.0)
    return 1.0


def normalized(x, mean, var, eps) -> tuple[torch.Tensor, torch.Tensor]:
    """(xhat, invstd) in the accumulation dtype."""
    acc = accumulation_dtype(x.dtype)
    invstd = torch.rsqrt(group_view(var).to(acc) + eps)
    return (x.to(acc) - group_view(mean).to(acc)) * invstd, invstd


def pre_activation(x, mean, var, weight, bias, eps) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """z = xhat * weight + bias, with xhat and invstd."""
    acc = accumulation_dtype(x.dtype)
    xhat, invstd = normalized(x, mean, var, eps)
    return xhat * channel_view(weight, acc, 1.0) + channel_view(bias, acc, 0.0), xhat, invstd


def like_input(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """values rounded to x's dtype, laid out like torch.empty_like(x) (the kernels' layout)."""
    out = torch.empty_like(x)
    out.copy_(values)
    return out


def stats(x: torch.Tensor, per_sample: bool) -> tuple[torch.Tensor, torch.Tensor]:
    acc = accumulation_dtype(x.dtype)
    if x.numel() == 0:  # no values: NaN statistics (as the kernels return), without var_mean's warning
        shape = tuple(x.shape[:2]) if per_sample else (x.shape[1],)
        return (torch.full(shape, float("nan"), dtype=acc, device=x.device),
                torch.full(shape, float("nan"), dtype=acc, device=x.device))
    var, mean = torch.var_mean(x.to(acc), dim=reduce_dims(per_sample), correction=0)
    return mean, var


def apply(x, mean, var, weight, bias, eps, activation, slope) -> torch.Tensor:
    z, _, _ = pre_activation(x, mean, var, weight, bias, eps)
    return like_input(activation_forward(z, activation, slope), x)


def backward_reduce(grad_y, x, mean, var, weight, bias, eps, activation, slope):
    """Per-group sum(dz) and sum(dz * xhat), dz = grad_y * act'(z)."""
    z, xhat, _ = pre_activation(x, mean, var, weight, bias, eps)
    dz = grad_y.to(z.dtype) * activation_grad(z, activation, slope)
    dims = reduce_dims(mean.dim() == 2)
    return dz.sum(dims), (dz * xhat).sum(dims)


def backward_apply(grad_y, x, mean, var, weight, bias, sum_dz, sum_dz_xhat, count, eps, activation, slope):
    """dx. With the sums (batch statistics): w*invstd*(dz - sum_dz/n - xhat*sum_dz_xhat/n);
    without them (statistics are constants, eval mode): w*invstd*dz."""
    acc = accumulation_dtype(x.dtype)
    z, xhat, invstd = pre_activation(x, mean, var, weight, bias, eps)
    dz = grad_y.to(acc) * activation_grad(z, activation, slope)
    if sum_dz is not None:
        dz = dz - group_view(sum_dz).to(acc) / count - xhat * (group_view(sum_dz_xhat).to(acc) / count)
    return like_input(dz * (invstd * channel_view(weight, acc, 1.0)), x)


def param_grads(sum_dz: torch.Tensor, sum_dz_xhat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(dweight, dbias) per channel from per-group sums (summed over samples for instance norm)."""
    if sum_dz.dim() == 2:
        return sum_dz_xhat.sum(0), sum_dz.sum(0)
    return sum_dz_xhat.clone(), sum_dz.clone()


def update_running_stats(running_mean, running_var, mean, var, count, momentum, num_batches_tracked=None) -> None:
    """torch's rule: num_batches_tracked += 1, then r = (1 - f) * r + f * batch value with the
    unbiased variance, f = momentum or, for momentum=None, 1 / num_batches_tracked (0 without a
    counter). Per-sample statistics (instance norm) are averaged over the batch first."""
    if num_batches_tracked is not None:
        num_batches_tracked.add_(1)
    if momentum is not None:
        factor = momentum
    elif num_batches_tracked is not None:  # a 0-dim tensor: no host sync on a GPU
        factor = 1.0 / num_batches_tracked.reshape(()).double()
    else:
        factor = 0.0
    if mean.dim() == 2:
        mean, var = mean.mean(0), var.mean(0)
    unbiased = var * (count / (count - 1)) if count > 1 else var
    running_mean.copy_(running_mean * (1 - factor) + mean.to(running_mean.dtype) * factor)
    running_var.copy_(running_var * (1 - factor) + unbiased.to(running_var.dtype) * factor)
