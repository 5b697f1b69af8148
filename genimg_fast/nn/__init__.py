"""Drop-in modules built on the fused ops: normalization layers with the same parameters,
buffers and state_dict keys as the torch layers they replace (the activation folded in), and
the recipes' loss modules."""
from genimg_fast.nn.batch_norm_act import BatchNormAct2d
from genimg_fast.nn.conv_norm_act import Conv2dNormAct, ConvTranspose2dNormAct
from genimg_fast.nn.instance_norm_act import InstanceNormAct2d
from genimg_fast.nn.losses import (CycleGANGeneratorLoss, DiscriminatorLoss, GANLoss, Pix2PixGeneratorLoss,
                                   VAELoss)

__all__ = ["BatchNormAct2d", "InstanceNormAct2d", "Conv2dNormAct", "ConvTranspose2dNormAct", "GANLoss",
           "DiscriminatorLoss", "CycleGANGeneratorLoss", "Pix2PixGeneratorLoss", "VAELoss"]
