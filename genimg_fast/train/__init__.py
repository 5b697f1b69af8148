"""Trainers that follow the reference recipes (../shared/reference-models.md)."""
from genimg_fast.train.dcgan import DCGANConfig, train_dcgan

__all__ = ["DCGANConfig", "train_dcgan"]
