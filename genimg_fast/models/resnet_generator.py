"""junyanz's ResnetGenerator (resnet_6blocks / resnet_9blocks): `model.<i>` keys, reflection
padding, residual blocks `model.<i>.conv_block.<j>`."""
from __future__ import annotations

import torch
from torch import nn

from genimg_fast.models._fusing import check_image, finish
from genimg_fast.models.norm_layers import uses_bias

PADDINGS = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d}


class ResnetBlock(nn.Module):
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
