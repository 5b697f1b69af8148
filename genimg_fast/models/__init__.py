"""Drop-in networks of the reference recipes (pytorch/examples, junyanz/pytorch-CycleGAN-and-pix2pix),
built on the fused norm + activation modules with the reference's exact state_dict keys, shapes and parameter
counts: reference checkpoints load with strict=True and ours load into the reference.

- pytorch/examples: DCGANGenerator, DCGANDiscriminator (dcgan), VAE (vae, an MLP: nothing to fuse).
- AntixK/PyTorch-VAE: ConvVAE, the layers and keys of its VanillaVAE; VAEDecoder wraps a VAE's decode.
- junyanz/pytorch-CycleGAN-and-pix2pix (models/networks.py): ResnetGenerator and ResnetBlock, UnetGenerator
  and UnetSkipConnectionBlock, NLayerDiscriminator, PixelDiscriminator, and its define_G, define_D,
  get_norm_layer and init_weights.

The networks with norm layers, define_G and define_D take fused=False to keep the plain torch layers (the
reference itself).
"""
from genimg_fast.models.dcgan import DCGANDiscriminator, DCGANGenerator
from genimg_fast.models.discriminators import NLayerDiscriminator, PixelDiscriminator
from genimg_fast.models.factories import define_D, define_G
from genimg_fast.models.norm_layers import get_norm_layer, init_weights
from genimg_fast.models.resnet_generator import ResnetBlock, ResnetGenerator
from genimg_fast.models.unet_generator import UnetGenerator, UnetSkipConnectionBlock
from genimg_fast.models.vae import VAE, ConvVAE, VAEDecoder

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "VAE", "ConvVAE", "VAEDecoder", "ResnetGenerator", "ResnetBlock",
           "UnetGenerator", "UnetSkipConnectionBlock", "NLayerDiscriminator", "PixelDiscriminator", "define_G",
           "define_D", "get_norm_layer", "init_weights"]
