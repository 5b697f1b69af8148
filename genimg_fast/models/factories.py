"""junyanz-style factories: define_G / define_D with the reference's names, defaults and weight
initialization, returning fused models (fused=False: the plain reference layers)."""
from __future__ import annotations

from torch import nn

from genimg_fast.models.discriminators import NLayerDiscriminator, PixelDiscriminator
from genimg_fast.models.norm_layers import get_norm_layer, init_weights
from genimg_fast.models.resnet_generator import ResnetGenerator
from genimg_fast.models.unet_generator import UnetGenerator

GENERATORS = ("resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256")
DISCRIMINATORS = ("basic", "n_layers", "pixel")


def _place(net: nn.Module, gpu_ids) -> nn.Module:
    """junyanz's gpu_ids: the network goes to the first listed GPU. Several GPUs: use DDP (torchrun)
    instead of the reference's DataParallel, whose 'module.' prefix would change the keys."""
    gpu_ids = list(gpu_ids or [])
    if len(gpu_ids) > 1:
        raise ValueError(f"gpu_ids={gpu_ids}: genimg_fast trains on several GPUs with DDP (torchrun), not "
                         "DataParallel; pass one GPU id per process")
    return net.to(f"cuda:{gpu_ids[0]}") if gpu_ids else net


def define_G(input_nc: int, output_nc: int, ngf: int, netG: str, norm: str = "batch", use_dropout: bool = False,
             init_type: str = "normal", init_gain: float = 0.02, gpu_ids=(), *, fused: bool = True) -> nn.Module:
    """junyanz's networks.define_G: a generator by name, placed and initialized as init_net does.

    Same arguments and defaults as junyanz's (plus `fused`); the network is moved to the GPU
    first, then its weights are drawn there by init_weights, so a seed gives the reference's
    weights.

    Args:
        input_nc (int): the input images' channels.
        output_nc (int): the output images' channels.
        ngf (int): the width of the first layer.
        netG (str): 'resnet_9blocks', 'resnet_6blocks' (ResnetGenerator), 'unet_128' or
            'unet_256' (UnetGenerator with 7 or 8 downsamplings).
        norm (str): 'batch', 'instance' or 'none' (see get_norm_layer). Default: 'batch'.
        use_dropout (bool): the generators' Dropout(0.5). Default: False.
        init_type (str): 'normal', 'xavier', 'kaiming' or 'orthogonal'. Default: 'normal'.
        init_gain (float): the scale of normal, xavier and orthogonal. Default: 0.02.
        gpu_ids (sequence of int): empty (stay on the CPU) or one CUDA device index. Default: ().
        fused (bool, keyword-only): use the fused norm modules; False builds the plain
            reference layers. Default: True.

    Returns:
        nn.Module: the ResnetGenerator or UnetGenerator (not wrapped in DataParallel, so the
        state_dict keys have no 'module.' prefix).

    Raises:
        ValueError: an unknown netG, norm or init_type, or more than one GPU id (use DDP, one
            process per GPU); junyanz's raises NotImplementedError for unknown names.
    """
    norm_layer = get_norm_layer(norm)
    if netG.startswith("resnet_") and netG in GENERATORS:
        blocks = 9 if netG == "resnet_9blocks" else 6
        net = ResnetGenerator(input_nc, output_nc, ngf, norm_layer, use_dropout, n_blocks=blocks, fused=fused)
    elif netG in GENERATORS:
        downs = 7 if netG == "unet_128" else 8
        net = UnetGenerator(input_nc, output_nc, downs, ngf, norm_layer, use_dropout, fused=fused)
    else:
        raise ValueError(f"netG must be one of {', '.join(GENERATORS)}, got {netG!r}")
    # junyanz's init_net: to the GPU first, then draw the weights there (fused norms included, in
    # the same module order as the plain layers, so the draws are the reference's)
    return init_weights(_place(net, gpu_ids), init_type, init_gain)


def define_D(input_nc: int, ndf: int, netD: str, n_layers_D: int = 3, norm: str = "batch",
             init_type: str = "normal", init_gain: float = 0.02, gpu_ids=(), *, fused: bool = True) -> nn.Module:
    """junyanz's networks.define_D: a discriminator by name, placed and initialized as
    define_G's.

    Args:
        input_nc (int): the input's channels (pix2pix: input_nc + output_nc of the generator).
        ndf (int): the width of the first layer.
        netD (str): 'basic' (NLayerDiscriminator, n_layers 3), 'n_layers' (NLayerDiscriminator,
            n_layers_D) or 'pixel' (PixelDiscriminator).
        n_layers_D (int): the depth for 'n_layers' (unused otherwise). Default: 3.
        norm (str): 'batch', 'instance' or 'none'. Default: 'batch'.
        init_type (str): 'normal', 'xavier', 'kaiming' or 'orthogonal'. Default: 'normal'.
        init_gain (float): the scale of normal, xavier and orthogonal. Default: 0.02.
        gpu_ids (sequence of int): empty (stay on the CPU) or one CUDA device index. Default: ().
        fused (bool, keyword-only): use the fused norm modules. Default: True.

    Returns:
        nn.Module: the NLayerDiscriminator or PixelDiscriminator, which output logits.

    Raises:
        ValueError: an unknown netD, norm or init_type, or more than one GPU id.
    """
    norm_layer = get_norm_layer(norm)
    if netD == "basic":
        net = NLayerDiscriminator(input_nc, ndf, n_layers=3, norm_layer=norm_layer, fused=fused)
    elif netD == "n_layers":
        net = NLayerDiscriminator(input_nc, ndf, n_layers_D, norm_layer=norm_layer, fused=fused)
    elif netD == "pixel":
        net = PixelDiscriminator(input_nc, ndf, norm_layer=norm_layer, fused=fused)
    else:
        raise ValueError(f"netD must be one of {', '.join(DISCRIMINATORS)}, got {netD!r}")
    return init_weights(_place(net, gpu_ids), init_type, init_gain)
