"""Drop-in modules built on the fused ops: normalization layers with the same parameters,
buffers and state_dict keys as the torch layers they replace (the activation folded in), and
the recipes' loss modules.

- BatchNormAct2d, InstanceNormAct2d: nn.BatchNorm2d / nn.InstanceNorm2d followed by ReLU,
  LeakyReLU or nothing (BatchNormAct2d also synchronizes across processes with sync=True).
- Conv2dNormAct, ConvTranspose2dNormAct: a convolution followed by one of them.
- GANLoss (junyanz's, plus the DCGAN example's BCE), DiscriminatorLoss, CycleGANGeneratorLoss,
  Pix2PixGeneratorLoss, VAELoss: the recipes' objectives, each one fused op where the CUDA
  kernels serve (genimg_fast.ops.objectives).

Where the kernels do not serve (CPU, a GPU without them) every module runs torch's own ops.
"""
from genimg_fast.nn.batch_norm_act import BatchNormAct2d
from genimg_fast.nn.conv_norm_act import Conv2dNormAct, ConvTranspose2dNormAct
from genimg_fast.nn.instance_norm_act import InstanceNormAct2d
from genimg_fast.nn.losses import (CycleGANGeneratorLoss, DiscriminatorLoss, GANLoss, Pix2PixGeneratorLoss,
                                   VAELoss)

__all__ = ["BatchNormAct2d", "InstanceNormAct2d", "Conv2dNormAct", "ConvTranspose2dNormAct", "GANLoss",
           "DiscriminatorLoss", "CycleGANGeneratorLoss", "Pix2PixGeneratorLoss", "VAELoss"]
