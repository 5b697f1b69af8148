"""junyanz's ResnetGenerator (resnet_6blocks / resnet_9blocks): `model.<i>` keys, reflection
padding, residual blocks `model.<i>.conv_block.<j>`."""
from __future__ import annotations

import torch
from torch import nn

from genimg_fast.models._fusing import check_image, finish
from genimg_fast.models.norm_layers import uses_bias

PADDINGS = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d}


class ResnetBlock(nn.Module):
    """junyanz's networks.ResnetBlock: x + conv_block(x), conv_block =
    [pad, conv3x3, norm, ReLU, (Dropout(0.5)), pad, conv3x3, norm], keys `conv_block.<i>`.

    Built from plain torch layers; a ResnetGenerator with fused=True converts them.

    Args:
        dim (int): the channel count, in and out.
        padding_type (str): 'reflect', 'replicate' or 'zero' (the convolution pads by 1 itself).
        norm_layer: a norm constructor called with the channel count.
        use_dropout (bool): insert Dropout(0.5) between the two convolutions.
        use_bias (bool): give the convolutions a bias.

    Shape:
        Input x: (N, dim, H, W). Output: the same shape.

    Raises:
        ValueError: an unknown padding_type (junyanz's raises NotImplementedError).
    """

    def __init__(self, dim: int, padding_type: str, norm_layer, use_dropout: bool, use_bias: bool) -> None:
        super().__init__()
        if padding_type not in (*PADDINGS, "zero"):
            raise ValueError(f"padding_type must be one of reflect, replicate, zero, got {padding_type!r}")

        def padded_conv() -> list[nn.Module]:
            pad = [PADDINGS[padding_type](1)] if padding_type in PADDINGS else []
            return pad + [nn.Conv2d(dim, dim, 3, padding=0 if pad else 1, bias=use_bias)]

        layers = padded_conv() + [norm_layer(dim), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += padded_conv() + [norm_layer(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """junyanz's networks.ResnetGenerator (netG 'resnet_9blocks' / 'resnet_6blocks'): the same
    layers, `model.<i>` state_dict keys (blocks: `model.<i>.conv_block.<j>`) and parameter count.

    Reflection-padded 7x7 convolution, two stride-2 downsamplings, n_blocks ResnetBlocks at
    ngf * 4 channels, two transposed-convolution upsamplings, 7x7 convolution, Tanh.
    fused=True swaps each torch norm (+ the ReLU after it) for the fused module and an
    nn.Identity: same keys and numbers.

    Args:
        input_nc (int): the input images' channels.
        output_nc (int): the output images' channels.
        ngf (int): the width of the first layer. Default: 64.
        norm_layer: a norm constructor called with a channel count: nn.BatchNorm2d, or what
            get_norm_layer returns; the convolutions carry a bias exactly when it is
            nn.InstanceNorm2d (as a functools.partial or itself), as in junyanz's.
            Default: nn.BatchNorm2d.
        use_dropout (bool): Dropout(0.5) inside each block. Default: False.
        n_blocks (int): the number of ResnetBlocks, >= 0. Default: 6.
        padding_type (str): the blocks' padding, 'reflect', 'replicate' or 'zero'. Default: 'reflect'.
        fused (bool, keyword-only): use the fused norm modules. Default: True.

    Shape:
        Input x: (N, input_nc, H, W), H and W multiples of 4. Output: (N, output_nc, H, W), in
        [-1, 1].

    Raises:
        ValueError: n_blocks < 0 or (with n_blocks > 0) an unknown padding_type (construction);
            an input that is not 4-D, has not input_nc channels, or H or W not a multiple of 4
            (forward).
    """

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, norm_layer=nn.BatchNorm2d,
                 use_dropout: bool = False, n_blocks: int = 6, padding_type: str = "reflect", *,
                 fused: bool = True) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        self.input_nc = input_nc
        bias = uses_bias(norm_layer)
        model: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, padding=0, bias=bias),
                                  norm_layer(ngf), nn.ReLU(True)]
        for i in range(2):  # downsampling
            mult = 2 ** i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                      norm_layer(ngf * mult * 2), nn.ReLU(True)]
        model += [ResnetBlock(ngf * 4, padding_type, norm_layer, use_dropout, bias) for _ in range(n_blocks)]
        for i in range(2):  # upsampling
            mult = 2 ** (2 - i)
            model += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1,
                                         bias=bias), norm_layer(ngf * mult // 2), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)
        finish(self, fused)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, self.input_nc, 4, "ResnetGenerator")
        return self.model(x)
