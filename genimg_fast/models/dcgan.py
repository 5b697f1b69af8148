"""The DCGAN of pytorch/examples (dcgan/main.py): `main.<i>` keys, bias-free convolutions,
N(0, 0.02) conv weights and N(1, 0.02) batch-norm weights. image_size 64 is the reference;
32, 128 and 256 add or remove stride-2 stages (64 keeps the reference keys exactly)."""
from __future__ import annotations

import math

import torch
from torch import nn

from genimg_fast.models._fusing import check_image, finish

IMAGE_SIZES = (32, 64, 128, 256)


def _stages(image_size: int) -> int:
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size must be one of {IMAGE_SIZES}, got {image_size}")
    return int(math.log2(image_size)) - 2  # stride-2 stages between 4x4 and the image


def dcgan_init(module: nn.Module) -> None:
    """pytorch/examples' weights_init."""
    name = type(module).__name__
    if "Conv" in name:
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _place_and_init(model: nn.Module, device, init: bool) -> None:
    if device is not None:
        model.to(device)
    if init:
        model.apply(dcgan_init)


class DCGANGenerator(nn.Module):
    """pytorch/examples dcgan's Generator: the same layers and `main.<i>` state_dict keys.

    Its weights_init is already applied, after moving to `device` as the example does
    (`Generator().to(device)`, then `apply(weights_init)`): the same seed gives the example's
    weights. fused=True swaps each BatchNorm2d + ReLU pair for BatchNormAct2d + nn.Identity
    (same keys and numbers).

    Args:
        nz (int): the noise's length. Default: 100.
        ngf (int): the width of the last hidden layer (the example's ngf). Default: 64.
        nc (int): the image's channels. Default: 3.
        image_size (int): 64 (the example's network), or 32, 128 or 256 (a stride-2 stage fewer
            or more per halving or doubling; the first layer is then ngf * image_size / 8 wide).
            Default: 64.
        fused (bool, keyword-only): use the fused norm modules; False keeps the plain torch
            layers. Default: True.
        device (torch.device, optional, keyword-only): where to move the model before the
            weights are drawn.
        init (bool, keyword-only): apply weights_init; False keeps torch's default
            initialization (for code that applies weights_init itself). Default: True.

    Shape:
        Input z: (N, nz, 1, 1) or (N, nz). Output: (N, nc, image_size, image_size), in [-1, 1]
        (Tanh).

    Raises:
        ValueError: image_size not 32, 64, 128 or 256 (construction); noise of another shape
            (forward).
    """

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3, image_size: int = 64, *, fused: bool = True,
                 device=None, init: bool = True) -> None:
        super().__init__()
        self.nz, self.image_size = nz, image_size
        stages = _stages(image_size)
        width = ngf * 2 ** (stages - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False), nn.BatchNorm2d(width),
                                   nn.ReLU(True)]
        for _ in range(stages - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2),
                       nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        _place_and_init(self, device, init)
        finish(self, fused)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:  # (N, nz) noise is taken as (N, nz, 1, 1)
            z = z[:, :, None, None]
        if z.dim() != 4 or z.shape[1] != self.nz or z.shape[2:] != (1, 1):
            raise ValueError(f"DCGANGenerator: expected noise of shape (N, {self.nz}, 1, 1), got {list(z.shape)}")
        return self.main(z)


class DCGANDiscriminator(nn.Module):
    """pytorch/examples dcgan's Discriminator: the same layers and `main.<i>` state_dict keys.

    Initialized like DCGANGenerator (device, init); fused=True swaps each BatchNorm2d +
    LeakyReLU(0.2) pair for BatchNormAct2d + nn.Identity (same keys and numbers).

    Args:
        nc (int): the image's channels. Default: 3.
        ndf (int): the width of the first layer (the example's ndf). Default: 64.
        image_size (int): 64 (the example's network), 32, 128 or 256, as for DCGANGenerator.
            Default: 64.
        logits (bool, keyword-only): leave out the final Sigmoid (it has no parameters: the keys
            do not change) and return logits, for the numerically safe BCE with logits (gan_mode
            'vanilla'); False returns the example's probabilities (gan_mode 'bce'). Default: False.
        fused (bool, keyword-only): use the fused norm modules. Default: True.
        device (torch.device, optional, keyword-only): where to move the model before the
            weights are drawn.
        init (bool, keyword-only): apply the example's weights_init. Default: True.

    Shape:
        Input x: (N, nc, image_size, image_size). Output: (N,), as the example's
        view(-1, 1).squeeze(1).

    Raises:
        ValueError: image_size not 32, 64, 128 or 256 (construction); an input that is not 4-D,
            has not nc channels or is not image_size x image_size (forward).
    """

    def __init__(self, nc: int = 3, ndf: int = 64, image_size: int = 64, *, logits: bool = False,
                 fused: bool = True, device=None, init: bool = True) -> None:
        super().__init__()
        self.nc, self.image_size, self.logits = nc, image_size, logits
        stages = _stages(image_size)
        layers: list[nn.Module] = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        width = ndf
        for _ in range(stages - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2),
                       nn.LeakyReLU(0.2, inplace=True)]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, 1, 0, bias=False)]
        if not logits:
            layers.append(nn.Sigmoid())
        self.main = nn.Sequential(*layers)
        _place_and_init(self, device, init)
        finish(self, fused)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, self.nc, 1, "DCGANDiscriminator")
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"DCGANDiscriminator: built for {self.image_size}x{self.image_size} images, "
                             f"got {x.shape[-2]}x{x.shape[-1]}")
        return self.main(x).view(-1, 1).squeeze(1)
