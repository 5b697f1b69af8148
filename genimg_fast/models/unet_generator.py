"""junyanz's UnetGenerator (unet_128: 7 downs, unet_256: 8): nested UnetSkipConnectionBlocks with
`model.model.<i>` keys. Every block but the outermost returns cat([x, block(x)]); its in-place
LeakyReLU runs first, so the skip branch carries LeakyReLU(x), as in the reference."""
from __future__ import annotations

import torch
from torch import nn

from genimg_fast.models._fusing import check_image, finish
from genimg_fast.models.norm_layers import uses_bias
from genimg_fast.nn import BatchNormAct2d, InstanceNormAct2d


class UnetSkipConnectionBlock(nn.Module):
    """junyanz's networks.UnetSkipConnectionBlock: one U-Net level around `submodule`, keys
    `model.<i>`; every level but the outermost returns cat([x, model(x)], 1).

    Built from plain torch layers, as junyanz's: a UnetGenerator with fused=True converts them.

    Args:
        outer_nc (int): the channels this level outputs (its input's, unless input_nc is given).
        inner_nc (int): the channels of the down convolution's output.
        input_nc (int, optional): the input's channels; None: outer_nc.
        submodule (nn.Module, optional): the inner levels (None for the innermost).
        outermost (bool): the outer level: no norm, ReLU + transposed conv + Tanh on the way up,
            and no concatenation. Default: False.
        innermost (bool): the bottom level, without a submodule. Default: False.
        norm_layer: a norm constructor called with a channel count; the convolutions carry a bias
            exactly when it is nn.InstanceNorm2d. Default: nn.BatchNorm2d.
        use_dropout (bool): Dropout(0.5) at the end of a middle level. Default: False.

    Shape:
        Input x: (N, input_nc, H, W). Output: (N, outer_nc, H, W) for the outermost level,
        else (N, input_nc + outer_nc, H, W).
    """

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None,
                 submodule: nn.Module | None = None, outermost: bool = False, innermost: bool = False,
                 norm_layer=nn.BatchNorm2d, use_dropout: bool = False) -> None:
        super().__init__()
        self.outermost = outermost
        bias = uses_bias(norm_layer)
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, nn.ReLU(True), upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            model = [nn.LeakyReLU(0.2, True), downconv, nn.ReLU(True), upconv, norm_layer(outer_nc)]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            model = [nn.LeakyReLU(0.2, True), downconv, norm_layer(inner_nc), submodule, nn.ReLU(True), upconv,
                     norm_layer(outer_nc)] + ([nn.Dropout(0.5)] if use_dropout else [])
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


def fold_down_activations(outermost: UnetSkipConnectionBlock) -> None:
    """Each middle level's down norm takes over the LeakyReLU(0.2) its submodule applies first.
    That in-place LeakyReLU turned the submodule's input, and so its skip branch, into
    LeakyReLU(norm(.)) anyway: the fused norm writes it directly (one pass less per level, each
    way) and the submodule's slot becomes nn.Identity (no parameters: the keys stay the same).
    genimg_fast.to_reference() puts the LeakyReLU back."""
    level = outermost.model[1]  # the outermost level has no down norm
    while isinstance(level, UnetSkipConnectionBlock) and not level.outermost and len(level.model) > 3:
        norm, submodule = level.model[2], level.model[3]
        if not isinstance(submodule, UnetSkipConnectionBlock):
            break
        first = submodule.model[0]
        if isinstance(norm, (BatchNormAct2d, InstanceNormAct2d)) and norm.activation == "identity" \
                and type(first) is nn.LeakyReLU:
            norm.activation, norm.negative_slope = "leaky_relu", float(first.negative_slope)
            submodule.model[0] = nn.Identity()
        level = submodule


class UnetGenerator(nn.Module):
    """junyanz's networks.UnetGenerator (netG 'unet_128': num_downs 7, 'unet_256': 8): the same
    nested UnetSkipConnectionBlocks, `model.model.<i>` state_dict keys and parameter count.

    fused=True swaps each torch norm (+ the ReLU after it) for the fused module and an
    nn.Identity, and each middle level's down norm also applies the LeakyReLU(0.2) the next
    level starts with (that level's first slot becoming nn.Identity): same keys and numbers,
    and genimg_fast.to_reference puts the LeakyReLU back.

    Args:
        input_nc (int): the input images' channels.
        output_nc (int): the output images' channels.
        num_downs (int): the number of stride-2 levels, >= 5; the innermost ones are ngf * 8 wide.
        ngf (int): the width of the outermost level. Default: 64.
        norm_layer: a norm constructor called with a channel count: nn.BatchNorm2d, or what
            get_norm_layer returns; the convolutions carry a bias exactly when it is
            nn.InstanceNorm2d (as a functools.partial or itself), as in junyanz's.
            Default: nn.BatchNorm2d.
        use_dropout (bool): Dropout(0.5) in the num_downs - 5 innermost middle levels, as
            junyanz's. Default: False.
        fused (bool, keyword-only): use the fused norm modules. Default: True.

    Shape:
        Input x: (N, input_nc, H, W), H and W multiples of 2 ** num_downs. Output:
        (N, output_nc, H, W), in [-1, 1].

    Raises:
        ValueError: num_downs < 5 (construction; junyanz's builds 5 levels then); an input that
            is not 4-D, has not input_nc channels, or H or W not a multiple of 2 ** num_downs
            (forward).
    """

    def __init__(self, input_nc: int, output_nc: int, num_downs: int, ngf: int = 64, norm_layer=nn.BatchNorm2d,
                 use_dropout: bool = False, *, fused: bool = True) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs must be >= 5, got {num_downs}")
        self.input_nc, self.num_downs = input_nc, num_downs
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm_layer=norm_layer, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer,
                                            use_dropout=use_dropout)
        for outer, inner in ((ngf * 4, ngf * 8), (ngf * 2, ngf * 4), (ngf, ngf * 2)):
            block = UnetSkipConnectionBlock(outer, inner, submodule=block, norm_layer=norm_layer)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True,
                                             norm_layer=norm_layer)
        finish(self, fused)
        if fused:
            fold_down_activations(self.model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, self.input_nc, 2 ** self.num_downs, "UnetGenerator")
        return self.model(x)
