"""InstanceNormAct2d: nn.InstanceNorm2d followed by an activation, in one fused op on a GPU (torch's
own instance norm and the activation where the kernels do not serve: _implementation.py).

Same parameters, buffers, state_dict keys and numbers as nn.Sequential(nn.InstanceNorm2d(C), act)
(the CycleGAN/pix2pix `instance` norm: affine=False, no running statistics, by default).
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

from genimg_fast._implementation import FALLBACK, implementation
from genimg_fast.nn._norm_act_base import NormActBase, empty_output
from genimg_fast.nn._norm_act_fallback import instance_norm_act
from genimg_fast.ops import norm_act_apply, norm_act_train, update_running_stats_


class InstanceNormAct2d(NormActBase):
    """nn.InstanceNorm2d followed by ReLU, LeakyReLU or no activation, as one module.

    A drop-in for ``nn.Sequential(nn.InstanceNorm2d(num_features, ...), activation)``, with
    torch's defaults (affine=False, track_running_stats=False: no state_dict keys, the
    CycleGAN / pix2pix 'instance' norm): the same parameters, buffers, state_dict keys and
    semantics (per-sample statistics in training, and in eval mode unless running statistics
    are tracked). Where genimg_fast's CUDA kernels serve, norm and activation run as one fused
    op; elsewhere torch's own F.instance_norm runs, then the activation.

    Args:
        num_features (int): C, the channel count of the input.
        eps (float): added to the variance before its square root. Default: 1e-5.
        momentum (float or None): the weight of each batch in the running statistics (when
            they exist); None leaves them unchanged, as torch does. Default: 0.1.
        affine (bool): learn a per-channel weight (initialized to 1) and bias (0). Default: False.
        track_running_stats (bool): keep running_mean, running_var and num_batches_tracked and
            normalize with them in eval mode. Default: False.
        activation (str): 'relu', 'leaky_relu' or 'identity' (none). Default: 'relu'.
        negative_slope (float): the LeakyReLU slope, used with 'leaky_relu' only. Default: 0.01.
        device (torch.device, optional): where to create the parameters and buffers.
        dtype (torch.dtype, optional): the dtype of weight, bias, running_mean and running_var.
        bias (bool, keyword-only): with affine=True, False leaves out the bias parameter (and its
            state_dict key). Default: True.

    Shape:
        Input x: (N, C, H, W) or unbatched (C, H, W), floating point. Output: the same shape and
        dtype; an input with no elements gives an empty output.

    Raises:
        ValueError: an unknown `activation` (construction); in forward, an input that is not
            3-D or 4-D, a channel count other than num_features with affine=True (without it,
            a UserWarning, as torch gives), or a training input with a single spatial element.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = False,
                 track_running_stats: bool = False, activation: str = "relu", negative_slope: float = 0.01,
                 device=None, dtype=None, *, bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, activation, negative_slope,
                         device, dtype, bias=bias)

    @classmethod
    def from_norm(cls, norm: nn.InstanceNorm2d, activation: str = "identity",
                  negative_slope: float = 0.01) -> InstanceNormAct2d:
        """The fused module equal to ``norm`` followed by ``activation``.

        The result shares `norm`'s parameter and buffer tensors (nothing is copied) and its
        training flag.

        Args:
            norm (nn.InstanceNorm2d): the norm to take over.
            activation (str): 'relu', 'leaky_relu' or 'identity'. Default: 'identity'.
            negative_slope (float): the LeakyReLU slope, for 'leaky_relu'. Default: 0.01.

        Returns:
            InstanceNormAct2d: the new module.

        Raises:
            TypeError: `norm` is not an nn.InstanceNorm2d instance.
            ValueError: an unknown `activation`.
        """
        if not isinstance(norm, nn.InstanceNorm2d):
            raise TypeError(f"InstanceNormAct2d.from_norm expects nn.InstanceNorm2d, got {type(norm).__name__}")
        return cls._share(norm, activation, negative_slope)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        # torch's rule for checkpoints saved before 0.4 (no version): running statistics a module without
        # track_running_stats does not have are dropped, with an error message naming them
        if local_metadata.get("version", None) is None and not self.track_running_stats:
            stale = [prefix + name for name in ("running_mean", "running_var") if prefix + name in state_dict]
            if stale:
                error_msgs.append(
                    f"{type(self).__name__} has no running statistics (track_running_stats=False) but the "
                    f"checkpoint holds {' and '.join(stale)}; old (pre-0.4) InstanceNorm checkpoints carry them. "
                    "Drop these keys, or build the module with track_running_stats=True to use them.")
                for key in stale:
                    state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() not in (3, 4):
            raise ValueError(f"expected 3D or 4D input (got {x.dim()}D input)")
        dim = x.dim() - 3
        if x.shape[dim] == self.num_features:
            return
        if self.affine:
            raise ValueError(f"expected input's size at dim={dim} to match num_features ({self.num_features}), "
                             f"but got: {x.shape[dim]}.")
        # torch only warns: without affine parameters num_features is not used
        warnings.warn(f"input's size at dim={dim} does not match num_features. You can silence this warning by "
                      "not passing in num_features, which is not used because affine=False", stacklevel=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        if x.dim() == 3:  # unbatched (C, H, W)
            return self._forward_batched(x.unsqueeze(0)).squeeze(0)
        return self._forward_batched(x)

    def _forward_batched(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias, running_mean, running_var, _ = self._registered()
        if x.numel() == 0:  # (torch itself fails on an empty batch; return the empty output)
            return empty_output(x, weight, bias)
        if implementation(x, "norm") == FALLBACK:
            return instance_norm_act(x, weight, bias, running_mean, running_var, self.training,
                                     self.track_running_stats, self.momentum, self.eps, self.activation,
                                     self.negative_slope)
        if not self.training and self.track_running_stats:
            return norm_act_apply(x, running_mean, running_var, weight, bias, self.eps, self.activation,
                                  self.negative_slope)
        y, mean, var = norm_act_train(x, weight, bias, True, self.eps, self.activation, self.negative_slope)
        if running_mean is not None:  # torch updates whatever buffers exist when using input statistics
            momentum = 0.0 if self.momentum is None else self.momentum
            update_running_stats_(running_mean, running_var, mean, var, x.shape[2] * x.shape[3], momentum)
        return y
