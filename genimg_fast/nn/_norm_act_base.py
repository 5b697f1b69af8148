"""Parameters, buffers and checkpoint compatibility shared by the fused norm + activation modules.

This mirrors torch.nn.modules.batchnorm._NormBase (same names, init, _version and old-checkpoint
loading) without subclassing it, so torch utilities that look for _BatchNorm/_InstanceNorm
(convert_sync_batchnorm, ...) cannot silently swap a fused module for one that drops the activation.
"""
from __future__ import annotations

import torch
from torch import nn

from genimg_fast.ops._norm_act_math import ACTIVATIONS


def check_activation(activation: str, negative_slope: float) -> tuple[str, float]:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(map(repr, ACTIVATIONS))}, got {activation!r}")
    return activation, float(negative_slope)


class NormActBase(nn.Module):
    _version = 2  # torch's: version 2 added num_batches_tracked

    def __init__(self, num_features: int, eps: float, momentum: float | None, affine: bool,
                 track_running_stats: bool, activation: str, negative_slope: float, device=None, dtype=None,
                 *, bias: bool = True) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.activation, self.negative_slope = check_activation(activation, negative_slope)
        if affine:
            self.weight = nn.Parameter(torch.empty(num_features, **factory))
            self.bias = nn.Parameter(torch.empty(num_features, **factory)) if bias else None
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **factory))
            self.register_buffer("running_var", torch.ones(num_features, **factory))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, num_batches_tracked 0 (when they are tracked), as torch's."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """reset_running_stats(), then weight 1 and bias 0 (when affine), as torch's."""
        self.reset_running_stats()
        if self.affine:
            nn.init.ones_(self.weight)
            if self.bias is not None:
                nn.init.zeros_(self.bias)

    @classmethod
    def _share(cls, norm: nn.Module, activation: str, negative_slope: float, **extra):
        """A fused module that holds `norm`'s very parameters and buffers (built on the meta device
        first, so nothing is allocated twice) and keeps its training flag."""
        fused = cls(norm.num_features, norm.eps, norm.momentum, norm.affine, norm.track_running_stats,
                    activation=activation, negative_slope=negative_slope, device="meta", **extra)
        for name in ("weight", "bias"):
            setattr(fused, name, getattr(norm, name))
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            fused._buffers[name] = getattr(norm, name)
        return fused.train(norm.training)

    def _registered(self) -> tuple:
        """(weight, bias, running_mean, running_var, num_batches_tracked), read from the module's
        own registries: nn.Module's attribute fallback costs about half a microsecond a name, as
        much as the rest of a forward's Python. A name not registered there (a parametrization's
        property, a weight-norm hook's attribute) is read the ordinary way."""
        p, b = self._parameters, self._buffers
        return (p["weight"] if "weight" in p else self.weight,
                p["bias"] if "bias" in p else self.bias,
                b["running_mean"] if "running_mean" in b else self.running_mean,
                b["running_var"] if "running_var" in b else self.running_var,
                b["num_batches_tracked"] if "num_batches_tracked" in b else self.num_batches_tracked)

    def extra_repr(self) -> str:
        text = (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}, "
                f"activation={self.activation}")
        if self.activation == "leaky_relu":
            text += f", negative_slope={self.negative_slope}"
        return text

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        # torch's rule: checkpoints older than version 2 have no num_batches_tracked; it loads as 0
        version = local_metadata.get("version", None)
        key = prefix + "num_batches_tracked"
        if (version is None or version < 2) and self.track_running_stats and key not in state_dict:
            tracked = self.num_batches_tracked
            state_dict[key] = (tracked if tracked is not None and tracked.device.type != "meta"
                               else torch.tensor(0, dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


def empty_output(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None) -> torch.Tensor:
    """torch's result for an input with no elements: an empty output whose gradients with respect to
    weight and bias are zeros (so DDP sees every parameter used), computed without any kernel."""
    y = x.clone()
    if weight is not None:
        y = y * weight.to(x.dtype).reshape(1, -1, 1, 1)
    if bias is not None:
        y = y + bias.to(x.dtype).reshape(1, -1, 1, 1)
    return y
