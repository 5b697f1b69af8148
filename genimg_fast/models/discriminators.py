"""junyanz's discriminators: NLayerDiscriminator (PatchGAN; n_layers 3 is the 70x70 'basic') and
PixelDiscriminator (1x1 PatchGAN). No sigmoid: they output logits / scores."""
from __future__ import annotations

import torch
from torch import nn

from genimg_fast.models._fusing import check_image, finish
from genimg_fast.models.norm_layers import uses_bias


class NLayerDiscriminator(nn.Module):
    """junyanz's networks.NLayerDiscriminator, the PatchGAN (netD 'basic' is n_layers=3, the
    70x70 PatchGAN): the same layers, `model.<i>` state_dict keys and parameter count.

    fused=True swaps each torch norm + LeakyReLU(0.2) pair for the fused module and an
    nn.Identity: same keys and numbers.

    Args:
        input_nc (int): the input's channels (pix2pix: input and output images concatenated).
        ndf (int): the width of the first layer; later ones double, up to ndf * 8. Default: 64.
        n_layers (int): the depth, >= 0: after the first stride-2 convolution, n_layers - 1
            stride-2 conv-norm-LeakyReLU blocks, then one at stride 1 and the output
            convolution. Default: 3.
        norm_layer: a norm constructor called with a channel count: nn.BatchNorm2d, or what
            get_norm_layer returns; the convolutions carry a bias exactly when it is
            nn.InstanceNorm2d (as a functools.partial or itself), as in junyanz's.
            Default: nn.BatchNorm2d.
        fused (bool, keyword-only): use the fused norm modules. Default: True.

    Shape:
        Input x: (N, input_nc, H, W), H and W at least 3 * 2 ** max(n_layers, 1). Output:
        (N, 1, H', W'), one logit per patch (no Sigmoid).

    Raises:
        ValueError: n_layers < 0 (construction); an input that is not 4-D, has not input_nc
            channels, or is too small (forward).
    """

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm_layer=nn.BatchNorm2d, *,
                 fused: bool = True) -> None:
        super().__init__()
        if n_layers < 0:
            raise ValueError(f"n_layers must be >= 0, got {n_layers}")
        self.input_nc, self.n_layers = input_nc, n_layers
        bias = uses_bias(norm_layer)
        sequence: list[nn.Module] = [nn.Conv2d(input_nc, ndf, kernel_size=4, stride=2, padding=1),
                                     nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):  # stride 2
            previous, mult = mult, min(2 ** n, 8)
            sequence += [nn.Conv2d(ndf * previous, ndf * mult, kernel_size=4, stride=2, padding=1, bias=bias),
                         norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
        previous, mult = mult, min(2 ** n_layers, 8)  # then one block at stride 1
        sequence += [nn.Conv2d(ndf * previous, ndf * mult, kernel_size=4, stride=1, padding=1, bias=bias),
                     norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
        sequence += [nn.Conv2d(ndf * mult, 1, kernel_size=4, stride=1, padding=1)]
        self.model = nn.Sequential(*sequence)
        finish(self, fused)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, self.input_nc, 1, "NLayerDiscriminator")
        # the halvings (the first convolution and n_layers - 1 more), then two k4 stride-1
        # convolutions that take a pixel each
        smallest = 3 * 2 ** max(self.n_layers, 1)
        if min(x.shape[-2:]) < smallest:
            raise ValueError(f"NLayerDiscriminator: H and W must be at least {smallest} for n_layers="
                             f"{self.n_layers}, got {x.shape[-2]}x{x.shape[-1]}")
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """junyanz's networks.PixelDiscriminator (netD 'pixel', a 1x1 PatchGAN): the same layers and
    `net.<i>` state_dict keys.

    fused=True swaps the torch norm + LeakyReLU(0.2) pair for the fused module and an
    nn.Identity: same keys and numbers.

    Args:
        input_nc (int): the input's channels.
        ndf (int): the width of the first layer (the second is ndf * 2). Default: 64.
        norm_layer: a norm constructor called with a channel count: nn.BatchNorm2d, or what
            get_norm_layer returns; the convolutions carry a bias exactly when it is
            nn.InstanceNorm2d (as a functools.partial or itself), as in junyanz's.
            Default: nn.BatchNorm2d.
        fused (bool, keyword-only): use the fused norm modules. Default: True.

    Shape:
        Input x: (N, input_nc, H, W). Output: (N, 1, H, W), one logit per pixel (no Sigmoid).

    Raises:
        ValueError: an input that is not 4-D or has not input_nc channels (forward).
    """

    def __init__(self, input_nc: int, ndf: int = 64, norm_layer=nn.BatchNorm2d, *, fused: bool = True) -> None:
        super().__init__()
        self.input_nc = input_nc
        bias = uses_bias(norm_layer)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, kernel_size=1, stride=1, padding=0), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, kernel_size=1, stride=1, padding=0, bias=bias), norm_layer(ndf * 2),
            nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * 2, 1, kernel_size=1, stride=1, padding=0, bias=bias))
        finish(self, fused)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, self.input_nc, 1, "PixelDiscriminator")
        return self.net(x)
