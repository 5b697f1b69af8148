"""genimg_fast: fused CUDA kernels and drop-in models for DCGAN, VAE, CycleGAN and pix2pix."""
from genimg_fast import models, nn, ops
from genimg_fast._backend import backend_info, load_kernels
from genimg_fast.convert import convert, fold_batchnorm, sync_batchnorm
from genimg_fast.export import to_reference
from genimg_fast.inference.optimize import optimize_for_inference
from genimg_fast.training_graph import capture_training_step

__version__ = "0.1.0"
__all__ = ["backend_info", "ops", "nn", "models", "convert", "fold_batchnorm", "sync_batchnorm", "to_reference",
           "optimize_for_inference", "capture_training_step", "__version__"]

load_kernels()  # after the ops are defined, so their CUDA kernels attach to existing schemas
