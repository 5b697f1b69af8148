"""Inference from trained checkpoints: sample (DCGAN, VAE) and translate (CycleGAN, pix2pix)."""
