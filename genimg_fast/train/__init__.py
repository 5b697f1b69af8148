"""Trainers that follow the reference recipes: pytorch/examples' DCGAN and VAE, junyanz's
CycleGAN and pix2pix."""
from genimg_fast.train.dcgan import DCGANConfig, train_dcgan

__all__ = ["DCGANConfig", "train_dcgan"]
