"""The fused norm modules' forward where no kernel serves (CPU, CUDA without verified kernels):
torch's own F.batch_norm / F.instance_norm, with torch's running-statistics rules, then the
activation (in place on batch norm's fresh output). The same ops and autograd as the torch layers the
modules replace (nn.BatchNorm2d / nn.InstanceNorm2d + nn.ReLU(inplace=True)), so the same speed,
the same numbers and double backward; it traces under torch.compile(fullgraph=True).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def activate_(y: Tensor, activation: str, slope: float) -> Tensor:
    """The activation in place: y is the norm's own output, which its backward does not read."""
    if activation == "relu":
        return F.relu_(y)
    if activation == "leaky_relu":
        return F.leaky_relu_(y, slope)
    return y


def activate(y: Tensor, activation: str, slope: float) -> Tensor:
    """The activation out of place, for a y that is a view: in place, autograd would rebase the
    view's history, and its backward would go through a slow strided copy."""
    if activation == "relu":
        return F.relu(y)
    if activation == "leaky_relu":
        return F.leaky_relu(y, slope)
    return y


def batch_norm_act(x: Tensor, weight: Tensor | None, bias: Tensor | None, running_mean: Tensor | None,
                   running_var: Tensor | None, num_batches_tracked: Tensor | None, training: bool,
                   track_running_stats: bool, momentum: float | None, eps: float, activation: str,
                   slope: float) -> Tensor:
    """nn.BatchNorm2d's forward (batch statistics in training and where there are no running
    statistics; with momentum=None a cumulative average), then the activation."""
    counted = training and track_running_stats and num_batches_tracked is not None
    if counted:
        num_batches_tracked.add_(1)
        if momentum is None:
            return _cumulative_batch_norm_act(x, weight, bias, running_mean, running_var, num_batches_tracked, eps,
                                              activation, slope)
    batch_stats = training or (running_mean is None and running_var is None)
    keep_running = not training or track_running_stats
    y = F.batch_norm(x, running_mean if keep_running else None, running_var if keep_running else None, weight, bias,
                     batch_stats, 0.0 if momentum is None else momentum, eps)
    return activate_(y, activation, slope)


def _cumulative_batch_norm_act(x, weight, bias, running_mean, running_var, num_batches_tracked, eps, activation,
                               slope) -> Tensor:
    """momentum=None: the running statistics average every batch so far, with the factor
    1 / num_batches_tracked read on the device (torch reads it on the host, which stops
    torch.compile(fullgraph=True) and syncs a GPU); the statistics take a pass of their own."""
    y = F.batch_norm(x, None, None, weight, bias, True, 0.0, eps)
    if running_mean is not None and x.numel() > 0:
        with torch.no_grad():
            var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=1)
            factor = (1.0 / num_batches_tracked).to(running_mean.dtype)
            running_mean.lerp_(mean.to(running_mean.dtype), factor)
            running_var.lerp_(var.to(running_var.dtype), factor)
    return activate_(y, activation, slope)


def instance_norm_act(x: Tensor, weight: Tensor | None, bias: Tensor | None, running_mean: Tensor | None,
                      running_var: Tensor | None, training: bool, track_running_stats: bool,
                      momentum: float | None, eps: float, activation: str, slope: float) -> Tensor:
    """nn.InstanceNorm2d's forward (the input's statistics unless in eval mode with running
    statistics, which are updated whenever they exist), then the activation."""
    y = F.instance_norm(x, running_mean, running_var, weight, bias, training or not track_running_stats,
                        0.0 if momentum is None else momentum, eps)
    return activate(y, activation, slope)  # torch's instance norm returns a view of a batch norm's output
