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
    """`stored * (grad_output * scale)`: a fused loss's backward (see the module docstring).

    This body is the reference implementation (it runs wherever no CUDA kernel is registered).

    Args:
        stored (Tensor): the gradient a fused loss stored in its forward; float32, float16,
            bfloat16 or float64.
        grad_output (Tensor): the incoming gradient, one element, on stored's device.
        scale (float): a further factor (a mean's 1/n, -1/n for a target).

    Returns:
        Tensor: stored's shape and dtype, computed in float32 (float64 for float64) and rounded once.

    Raises:
        TypeError: stored is not a tensor of a supported dtype.
        ValueError: grad_output does not hold exactly one element or is on another device.
    """
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
