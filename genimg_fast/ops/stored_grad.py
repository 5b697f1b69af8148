"""genimg_fast::_scale_one_stored_grad — the backward of a fused loss with one stored gradient.

A fused loss writes its per-element gradient (without grad_output, and without the 1/n of a
mean) in the forward pass; backward is then one elementwise pass:
`stored * (grad_output * scale)`, computed in fp32 (fp64 for fp64) and rounded once, so a
tiny 1/n never has to survive fp16/bf16 storage. grad_output stays on the device (no sync).
"""
from __future__ import annotations

import torch

from genimg_fast import _backend
from genimg_fast.ops._checks import accumulation_dtype, check_float_tensor

_OP = "genimg_fast._scale_one_stored_grad"


def _check(stored: torch.Tensor, grad_output: torch.Tensor) -> None:
    check_float_tensor(stored, "stored", _OP)
    if grad_output.numel() != 1:
        raise ValueError(f"{_OP}: grad_output must hold exactly one value, got shape {list(grad_output.shape)}")
    if grad_output.device != stored.device:
        raise ValueError(f"{_OP}: grad_output must be on {stored.device}, got {grad_output.device}")


@torch.library.custom_op("genimg_fast::_scale_one_stored_grad", mutates_args=())
def _scale_one_stored_grad(stored: torch.Tensor, grad_output: torch.Tensor, scale: float) -> torch.Tensor:
    """Reference implementation (runs wherever no CUDA kernel is registered)."""
    _check(stored, grad_output)
    if stored.is_cuda:
        _backend.note_reference_on_cuda("_scale_one_stored_grad")
    acc = accumulation_dtype(stored.dtype)
    factor = grad_output.reshape(()).to(acc) * scale
    out = torch.empty_like(stored)
    if stored.dtype == acc:
        torch.mul(stored, factor, out=out)
    else:
        out.copy_(stored.to(acc) * factor)
    return out


@_scale_one_stored_grad.register_fake
def _scale_one_stored_grad_fake(stored: torch.Tensor, grad_output: torch.Tensor, scale: float) -> torch.Tensor:
    _check(stored, grad_output)
    return torch.empty_like(stored)
