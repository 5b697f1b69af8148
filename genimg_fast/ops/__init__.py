"""Fused ops in the `genimg_fast` torch.library namespace.

Each module defines one op family: schema, PyTorch reference (every device without a
kernel), fake impl (torch.compile), autograd; the CUDA kernels register from csrc/.
"""
from genimg_fast.ops.l1_loss import l1_loss
from genimg_fast.ops.stored_grad import scale_stored_grad

__all__ = ["l1_loss", "scale_stored_grad"]
