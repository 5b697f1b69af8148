"""genimg_fast::_norm_act_differentiable_backward — the norm + activation backward as torch ops,
for a backward that must itself be differentiated (create_graph=True: WGAN-GP's gradient penalty,
R1). The fused ops' autograd (Python here, C++ in csrc/norm_act/norm_act_autograd.cpp) calls it
instead of the kernels when grad mode is on inside the backward; the kernels serve every
ordinary step.

It is registered as CompositeImplicitAutograd: autograd records the torch ops it is made of, so
its result is differentiable in grad_y, x, weight and bias. With batch statistics the mean and
variance are recomputed from x (their dependence on x is part of the second derivative); fixed
statistics (eval mode) are constants. The activation's slope is piecewise constant, so its mask
is a constant too, as in torch's own relu / leaky_relu double backward.
"""
from __future__ import annotations

import torch

from genimg_fast.ops._checks import accumulation_dtype

Tensor = torch.Tensor

_LIB = torch.library.Library("genimg_fast", "FRAGMENT")
_LIB.define("_norm_act_differentiable_backward(Tensor grad_y, Tensor x, Tensor mean, Tensor var, Tensor? weight, "
            "Tensor? bias, bool batch_stats, float eps, str activation, float slope) -> (Tensor, Tensor, Tensor)")


def _per_group(t: Tensor, x: Tensor) -> Tensor:
    """[C] or [N, C] statistics, broadcastable against x (N, C, H, W)."""
    return t.reshape(1, -1, 1, 1) if t.dim() == 1 else t.reshape(x.shape[0], x.shape[1], 1, 1)


def _activation_slope(z: Tensor, activation: str, slope: float) -> Tensor | None:
    """d act / dz as a constant mask (None: identity)."""
    if activation == "identity":
        return None
    positive = z.detach() > 0
    if activation == "relu":
        return positive.to(z.dtype)
    return torch.where(positive, 1.0, slope).to(z.dtype)


@torch.library.impl(_LIB, "_norm_act_differentiable_backward", "CompositeImplicitAutograd")
def _norm_act_differentiable_backward(grad_y: Tensor, x: Tensor, mean: Tensor, var: Tensor, weight: Tensor | None,
                                     bias: Tensor | None, batch_stats: bool, eps: float, activation: str,
                                     slope: float) -> tuple[Tensor, Tensor, Tensor]:
    """(dx, dweight, dbias) of act((x - mean) / sqrt(var + eps) * weight + bias); dweight/dbias are
    empty without weight/bias. `mean` gives the statistics' shape: [C] per channel, [N, C] per
    sample and channel."""
    acc = accumulation_dtype(x.dtype)
    xa, g = x.to(acc), grad_y.to(acc)
    per_sample = mean.dim() == 2
    group_dims = (2, 3) if per_sample else (0, 2, 3)
    if batch_stats:
        mu = xa.mean(group_dims, keepdim=True)
        sigma2 = xa.var(group_dims, unbiased=False, keepdim=True)
    else:
        mu, sigma2 = _per_group(mean.to(acc), x), _per_group(var.to(acc), x)
    invstd = torch.rsqrt(sigma2 + eps)
    xhat = (xa - mu) * invstd
    w = weight.to(acc).reshape(1, -1, 1, 1) if weight is not None else None
    z = xhat if w is None else xhat * w
    if bias is not None:
        z = z + bias.to(acc).reshape(1, -1, 1, 1)
    mask = _activation_slope(z, activation, slope)
    dz = g if mask is None else g * mask
    channel_dims = (0, 2, 3)
    dweight = (dz * xhat).sum(channel_dims) if weight is not None else x.new_empty((0,), dtype=acc)
    dbias = dz.sum(channel_dims) if bias is not None else x.new_empty((0,), dtype=acc)
    dxhat = dz if w is None else dz * w
    if batch_stats:
        dxhat = dxhat - dxhat.mean(group_dims, keepdim=True) - xhat * (dxhat * xhat).mean(group_dims, keepdim=True)
    return (dxhat * invstd).to(x.dtype), dweight, dbias
