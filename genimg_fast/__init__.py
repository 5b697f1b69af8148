"""genimg_fast: fused CUDA kernels and drop-in models for DCGAN, VAE, CycleGAN and pix2pix."""
from genimg_fast import ops
from genimg_fast._backend import backend_info, load_kernels

__version__ = "0.1.0"
__all__ = ["backend_info", "ops", "__version__"]

load_kernels()  # after the ops are defined, so their CUDA kernels attach to existing schemas
