"""BatchNormAct2d: nn.BatchNorm2d followed by an activation, in one fused op on a GPU (torch's own
batch norm and an in-place activation where the kernels do not serve: _implementation.py).

Same parameters, buffers, state_dict keys and numbers as nn.Sequential(nn.BatchNorm2d(C), act),
so checkpoints move both ways. With sync=True the batch statistics are shared across the
processes of a torch.distributed group (see sync_batch_norm.py).
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from genimg_fast import _backend
from genimg_fast._implementation import FALLBACK, implementation
from genimg_fast.nn._norm_act_base import NormActBase, empty_output
from genimg_fast.nn._norm_act_fallback import batch_norm_act
from genimg_fast.nn.sync_batch_norm import sync_norm_act
from genimg_fast.ops import (batch_norm_act_train_, norm_act_apply, norm_act_train, update_running_stats_,
                             update_tracked_running_stats_)


class BatchNormAct2d(NormActBase):
    """nn.BatchNorm2d followed by ReLU, LeakyReLU or no activation, as one module.

    A drop-in for ``nn.Sequential(nn.BatchNorm2d(num_features, ...), activation)``: the same
    parameters and buffers (weight, bias, running_mean, running_var, num_batches_tracked), the
    same state_dict keys and version (checkpoints load both ways, old ones without
    num_batches_tracked too) and the same semantics: batch statistics in training, and in eval
    mode when there are no running statistics; running statistics updated with `momentum`, or
    averaged over all batches for momentum=None. Where genimg_fast's CUDA kernels serve, norm and
    activation run as one fused op; elsewhere (CPU, a GPU without the kernels) torch's own
    F.batch_norm runs, then the activation in place.

    Args:
        num_features (int): C, the channel count of the (N, C, H, W) input.
        eps (float): added to the variance before its square root. Default: 1e-5.
        momentum (float or None): the weight of each new batch in the running statistics; None
            makes them the cumulative average of every batch. Default: 0.1.
        affine (bool): learn a per-channel weight (initialized to 1) and bias (0). Default: True.
        track_running_stats (bool): keep running statistics and normalize with them in eval
            mode; False registers the three buffers as None and always uses batch statistics.
            Default: True.
        activation (str): 'relu', 'leaky_relu' or 'identity' (none). Default: 'relu'.
        negative_slope (float): the LeakyReLU slope, used with 'leaky_relu' only. Default: 0.01.
        sync (bool): in training, compute the batch statistics over every process of
            `process_group`, as nn.SyncBatchNorm does; it takes effect only while torch.distributed
            is initialized and the group has more than one process. Default: False.
        process_group (ProcessGroup, optional): the group `sync` uses; None is the default
            (world) group.
        device (torch.device, optional): where to create the parameters and buffers.
        dtype (torch.dtype, optional): the dtype of weight, bias, running_mean and running_var.
        bias (bool, keyword-only): with affine=True, False leaves out the bias parameter (and its
            state_dict key). Default: True.

    Shape:
        Input x: (N, C, H, W), floating point. Output: the same shape and dtype.

    Raises:
        ValueError: an unknown `activation` (construction); in forward, an input that is not
            4-D or whose dim 1 is not num_features, or a training batch with a single value per
            channel.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, activation: str = "relu", negative_slope: float = 0.01,
                 sync: bool = False, process_group=None, device=None, dtype=None, *, bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, activation, negative_slope,
                         device, dtype, bias=bias)
        self.sync = sync
        self.process_group = process_group

    @classmethod
    def from_norm(cls, norm: nn.BatchNorm2d | nn.SyncBatchNorm, activation: str = "identity",
                  negative_slope: float = 0.01) -> BatchNormAct2d:
        """The fused module equal to ``norm`` followed by ``activation``.

        The result shares `norm`'s parameter and buffer tensors (nothing is copied) and its
        training flag; from an nn.SyncBatchNorm it gets sync=True and its process group.

        Args:
            norm (nn.BatchNorm2d or nn.SyncBatchNorm): the norm to take over.
            activation (str): 'relu', 'leaky_relu' or 'identity'. Default: 'identity'.
            negative_slope (float): the LeakyReLU slope, for 'leaky_relu'. Default: 0.01.

        Returns:
            BatchNormAct2d: the new module.

        Raises:
            TypeError: `norm` is not an nn.BatchNorm2d or nn.SyncBatchNorm instance.
            ValueError: an unknown `activation`.
        """
        if not isinstance(norm, (nn.BatchNorm2d, nn.SyncBatchNorm)):
            raise TypeError(f"BatchNormAct2d.from_norm expects nn.BatchNorm2d or nn.SyncBatchNorm, "
                            f"got {type(norm).__name__}")
        is_sync = isinstance(norm, nn.SyncBatchNorm)
        return cls._share(norm, activation, negative_slope, sync=is_sync,
                          process_group=norm.process_group if is_sync else None)

    def extra_repr(self) -> str:
        return super().extra_repr() + (", sync=True" if self.sync else "")

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"expected 4D input (got {x.dim()}D input)")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: input has {x.shape[1]} channels (dim 1 of shape "
                             f"{list(x.shape)}) but the module was built with num_features={self.num_features}")

    def _update_running_stats(self, mean: torch.Tensor | None, var: torch.Tensor | None, count: int) -> None:
        """torch's update after a batch of `count` values per channel; with none, torch only counts
        the batch. The counted update averages cumulatively (momentum=None) on the device."""
        if count == 0:
            if self.num_batches_tracked is not None:
                self.num_batches_tracked.add_(1)
            return
        if self.num_batches_tracked is not None:
            update_tracked_running_stats_(self.running_mean, self.running_var, self.num_batches_tracked, mean, var,
                                          count, self.momentum)
        else:  # torch: without a counter, momentum=None leaves the running statistics as they are
            update_running_stats_(self.running_mean, self.running_var, mean, var, count,
                                  0.0 if self.momentum is None else self.momentum)

    def _updates_in_one_op(self, x: torch.Tensor, num_batches_tracked: torch.Tensor | None) -> bool:
        """Whether the forward and the running-statistics update can be one op (with a GPU, the
        update rides in the forward's kernels): its autograd is C++, so the kernels must be
        loaded; and it takes torch's common case, a counter and a momentum."""
        return (_backend.kernels_loaded() and (x.is_cuda or x.is_cpu) and self.momentum is not None
                and num_batches_tracked is not None)

    def _sync_group(self):
        """The process group to share statistics with, or None when there is nothing to share."""
        if not (self.sync and self.training and dist.is_available() and dist.is_initialized()):
            return None
        group = self.process_group or dist.group.WORLD
        return group if dist.get_world_size(group) > 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        weight, bias, running_mean, running_var, tracked = self._registered()
        if implementation(x, "norm") == FALLBACK and not (self.sync and self._sync_group() is not None):
            return batch_norm_act(x, weight, bias, running_mean, running_var, tracked, self.training,
                                  self.track_running_stats, self.momentum, self.eps, self.activation,
                                  self.negative_slope)
        # like torch: batch statistics in training, and in eval when there are no running statistics
        if not self.training and running_mean is not None:
            if x.numel() == 0:
                return empty_output(x, weight, bias)
            return norm_act_apply(x, running_mean, running_var, weight, bias, self.eps, self.activation,
                                  self.negative_slope)
        update = self.training and self.track_running_stats and running_mean is not None
        group = self._sync_group()
        if group is not None:
            return sync_norm_act(x, weight, bias, self._update_running_stats if update else None, self.eps,
                                 self.activation, self.negative_slope, group)
        if x.numel() == 0:
            if update:
                self._update_running_stats(None, None, 0)
            return empty_output(x, weight, bias)
        if update and self._updates_in_one_op(x, tracked):
            y, _, _ = batch_norm_act_train_(x, weight, bias, running_mean, running_var, tracked, self.momentum,
                                            self.eps, self.activation, self.negative_slope)
            return y
        y, mean, var = norm_act_train(x, weight, bias, False, self.eps, self.activation, self.negative_slope)
        if update:
            self._update_running_stats(mean, var, x.numel() // x.shape[1])
        return y
