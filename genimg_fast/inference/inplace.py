"""Activations made in-place where nothing else can read their input, and eval-mode dropout
dropped: inference-only rewrites that keep every output value.

An activation may overwrite its input only when that input is a fresh tensor nobody else holds.
Inside an nn.Sequential, the output of a layer that allocates its result (a convolution, a norm,
a linear layer) goes to the next module alone, so an activation right after one (nn.Identity
slots in between pass the same tensor on) is safe. The first module of a Sequential sees the
caller's tensor, which the caller may still use (a U-Net level's skip branch, a residual sum):
it is left as it is, in-place or not, because changing it would change what the caller sees.
"""
from __future__ import annotations

from torch import nn

from genimg_fast.inference.norm_swaps import BatchStatisticsNorm2d

# layers whose output is a new tensor that only the next module of the Sequential receives
_FRESH_OUTPUT = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm,
                 BatchStatisticsNorm2d)
_INPLACE_CAPABLE = (nn.ReLU, nn.LeakyReLU, nn.ReLU6, nn.ELU, nn.SELU, nn.CELU, nn.Hardtanh, nn.SiLU, nn.Mish,
                    nn.Hardswish, nn.Hardsigmoid)


def make_activations_inplace(model: nn.Module) -> int:
    """In place: every activation in an nn.Sequential whose input is the fresh output of the
    layer before it computes in place. Returns how many were switched."""
    switched = 0
    for seq in (m for m in model.modules() if isinstance(m, nn.Sequential)):
        previous = None  # the last module before this one that is not an nn.Identity
        for module in seq:
            if isinstance(module, _INPLACE_CAPABLE) and not module.inplace and previous is not None \
                    and isinstance(previous, _FRESH_OUTPUT):
                module.inplace = True
                switched += 1
            if type(module) is not nn.Identity:
                previous = module
    return switched


def drop_eval_dropout(model: nn.Module) -> None:
    """In place: dropout layers in eval mode (the identity) become nn.Identity."""
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.modules.dropout._DropoutNd) and not child.training:
                setattr(parent, name, nn.Identity())
