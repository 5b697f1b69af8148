"""Conv2d / ConvTranspose2d followed by a fused norm + activation: the unit DCGAN, CycleGAN and
pix2pix are built from. The convolution stays in cuDNN; the fusion is in `norm`."""
from __future__ import annotations

import torch
from torch import nn

from genimg_fast.nn.batch_norm_act import BatchNormAct2d
from genimg_fast.nn.instance_norm_act import InstanceNormAct2d

NORMS = {"batch": BatchNormAct2d, "instance": InstanceNormAct2d}


def make_norm_act(norm: str, num_features: int, activation: str, negative_slope: float, norm_kwargs: dict | None,
                  device=None, dtype=None) -> nn.Module:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(map(repr, NORMS))}, got {norm!r}")
    return NORMS[norm](num_features, activation=activation, negative_slope=negative_slope, device=device,
                       dtype=dtype, **(norm_kwargs or {}))


class Conv2dNormAct(nn.Module):
    """norm(conv(x)); `conv` takes nn.Conv2d's arguments, `norm_kwargs` the norm's (eps, momentum, ...)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", *, norm: str = "batch",
                 activation: str = "relu", negative_slope: float = 0.01, norm_kwargs: dict | None = None,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                              padding_mode, device=device, dtype=dtype)
        self.norm = make_norm_act(norm, out_channels, activation, negative_slope, norm_kwargs, device, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class ConvTranspose2dNormAct(nn.Module):
    """norm(conv(x)); `conv` takes nn.ConvTranspose2d's arguments, `norm_kwargs` the norm's."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", *,
                 norm: str = "batch", activation: str = "relu", negative_slope: float = 0.01,
                 norm_kwargs: dict | None = None, device=None, dtype=None) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride, padding, output_padding,
                                       groups, bias, dilation, padding_mode, device=device, dtype=dtype)
        self.norm = make_norm_act(norm, out_channels, activation, negative_slope, norm_kwargs, device, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))
