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
    """nn.Conv2d followed by a fused norm + activation: ``norm(conv(x))``.

    Computes what ``nn.Sequential(nn.Conv2d(...), nn.BatchNorm2d(out_channels) or
    nn.InstanceNorm2d(out_channels), activation)`` computes; its state_dict keys are
    ``conv.*`` and ``norm.*`` (not that Sequential's ``0.*`` / ``1.*``).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode:
            nn.Conv2d's arguments, with its defaults (`bias` is the convolution's).
        norm (str, keyword-only): 'batch' (BatchNormAct2d) or 'instance' (InstanceNormAct2d,
            affine=False by default). Default: 'batch'.
        activation (str, keyword-only): 'relu', 'leaky_relu' or 'identity'. Default: 'relu'.
        negative_slope (float, keyword-only): the LeakyReLU slope. Default: 0.01.
        norm_kwargs (dict, optional, keyword-only): more arguments for the norm's constructor
            (eps, momentum, affine, track_running_stats, ...).
        device, dtype (keyword-only): where and in which dtype to create conv and norm.

    Shape:
        Input (N, in_channels, H, W); output (N, out_channels, H_out, W_out) as nn.Conv2d's.

    Raises:
        ValueError: `norm` is not 'batch' or 'instance', or an unknown `activation`; forward
            raises what nn.Conv2d and the norm raise.
    """

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
    """nn.ConvTranspose2d followed by a fused norm + activation: ``norm(conv(x))``.

    Computes what ``nn.Sequential(nn.ConvTranspose2d(...), nn.BatchNorm2d(out_channels) or
    nn.InstanceNorm2d(out_channels), activation)`` computes; its state_dict keys are
    ``conv.*`` and ``norm.*``.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias, dilation,
        padding_mode: nn.ConvTranspose2d's arguments, in its order and with its defaults (`bias` is
            the convolution's).
        norm (str, keyword-only): 'batch' (BatchNormAct2d) or 'instance' (InstanceNormAct2d,
            affine=False by default). Default: 'batch'.
        activation (str, keyword-only): 'relu', 'leaky_relu' or 'identity'. Default: 'relu'.
        negative_slope (float, keyword-only): the LeakyReLU slope. Default: 0.01.
        norm_kwargs (dict, optional, keyword-only): more arguments for the norm's constructor
            (eps, momentum, affine, track_running_stats, ...).
        device, dtype (keyword-only): where and in which dtype to create conv and norm.

    Shape:
        Input (N, in_channels, H, W); output (N, out_channels, H_out, W_out) as
        nn.ConvTranspose2d's.

    Raises:
        ValueError: `norm` is not 'batch' or 'instance', or an unknown `activation`; forward
            raises what nn.ConvTranspose2d and the norm raise.
    """

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
