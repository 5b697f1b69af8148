"""genimg_fast::l1_loss — L1 loss whose forward pass also writes the gradient.

One pass over (input, target) computes `weight * sum|input - target|` (divided by the count
for 'mean') and stores `weight * sign(input - target)`; backward only scales that stored
gradient by grad_output (see stored_grad.py). The CUDA kernel lives in csrc/losses/.
"""
from __future__ import annotations

import numbers

import torch

from genimg_fast import _backend
from genimg_fast._implementation import FALLBACK, implementation
from genimg_fast.ops._checks import accumulation_dtype, check_loss_pair, is_mean_reduction
from genimg_fast.ops.stored_grad import _scale_one_stored_grad

_OP = "genimg_fast.l1_loss"


def _empty_grad(input: torch.Tensor, compute_grad: bool) -> torch.Tensor:
    # empty_like keeps a dense input's layout; the CUDA kernel allocates the same way.
    return torch.empty_like(input) if compute_grad else input.new_empty((0,))


@torch.library.custom_op("genimg_fast::l1_loss", mutates_args=())
def l1_loss_op(input: torch.Tensor, target: torch.Tensor, weight: float, reduction: str,
               compute_grad: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference implementation. Returns (loss, stored gradient or an empty tensor)."""
    check_loss_pair(input, target, _OP)
    mean = is_mean_reduction(reduction, _OP)
    if input.is_cuda:
        _backend.note_reference_on_cuda("l1_loss")
    n = input.numel()
    diff = input.to(accumulation_dtype(input.dtype)) - target.to(accumulation_dtype(input.dtype))
    if n == 0:  # like torch: the mean of nothing is NaN, the sum is 0
        loss = torch.full((), float("nan") if mean else 0.0, dtype=input.dtype, device=input.device)
    else:
        loss = (diff.abs().sum() * (weight / n if mean else weight)).to(input.dtype)
    grad = _empty_grad(input, compute_grad)
    if compute_grad:
        if grad.dtype == diff.dtype:
            torch.sign(diff, out=grad)
        else:
            grad.copy_(torch.sign(diff))
        if weight != 1.0:
            grad.mul_(weight)  # sign is exact in any dtype: one rounding, as in the kernel
    return loss, grad


@l1_loss_op.register_fake
def _l1_loss_fake(input, target, weight, reduction, compute_grad):
    check_loss_pair(input, target, _OP)
    is_mean_reduction(reduction, _OP)
    return input.new_empty(()), _empty_grad(input, compute_grad)


def _setup_context(ctx, inputs, output):
    input, _target, _weight, reduction, compute_grad = inputs
    _loss, stored = output
    ctx.mark_non_differentiable(stored)
    ctx.compute_grad = compute_grad
    n = input.numel()
    ctx.scale = 1.0 / n if reduction == "mean" and n > 0 else 1.0
    ctx.save_for_backward(stored)


def _backward(ctx, grad_loss, _grad_stored):
    needs_input, needs_target = ctx.needs_input_grad[:2]
    if (needs_input or needs_target) and not ctx.compute_grad:
        raise RuntimeError(f"{_OP} was called with compute_grad=False, so it stored no gradient; "
                           "call genimg_fast.ops.l1_loss, which sets it when a gradient is needed")
    (stored,) = ctx.saved_tensors
    grad_input = _scale_one_stored_grad(stored, grad_loss, ctx.scale) if needs_input else None
    grad_target = _scale_one_stored_grad(stored, grad_loss, -ctx.scale) if needs_target else None
    return grad_input, grad_target, None, None, None


l1_loss_op.register_autograd(_backward, setup_context=_setup_context)
# Like torch.nn.functional.l1_loss under autocast: compute in fp32.
for _device in ("cuda", "cpu"):
    torch.library.register_autocast("genimg_fast::l1_loss", _device, torch.float32)


def l1_loss(input: torch.Tensor, target: torch.Tensor, weight: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """`weight * l1_loss(input, target, reduction)`, with the gradient computed in the forward pass.

    Same value and gradients as `weight * torch.nn.functional.l1_loss(input, target, reduction=...)`,
    which is what runs where the kernels do not serve, for 'mean' and 'sum' ('none' gains nothing
    from fusion: use torch's). input and target must share shape, dtype (float32/float16/bfloat16/float64) and device; any strides are fine.

    Args:
        input (Tensor): any shape.
        target (Tensor): input's shape, dtype and device (no broadcasting); differentiable too.
        weight (float): a real number multiplying the loss. Default: 1.0.
        reduction (str): 'mean' or 'sum'. Default: 'mean'.

    Returns:
        Tensor: the 0-d loss in input's dtype outside autocast (float32 under autocast); the
        mean of no elements is NaN, their sum 0.

    Raises:
        ValueError: another reduction, or target's shape or device differs from input's.
        TypeError: weight is not a real number (a bool is refused), input or target is not a
            tensor, input's dtype is not one of the four, or target's differs.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"{_OP}: reduction must be 'mean' or 'sum', got {reduction!r}"
                         + (" (use torch.nn.functional.l1_loss for 'none')" if reduction == "none" else ""))
    if isinstance(weight, bool) or not isinstance(weight, numbers.Real):
        raise TypeError(f"{_OP}: weight must be a real number, got {type(weight).__name__}")
    if not isinstance(input, torch.Tensor) or not isinstance(target, torch.Tensor):
        bad = "input" if not isinstance(input, torch.Tensor) else "target"
        raise TypeError(f"{_OP}: {bad} must be a torch.Tensor")
    if implementation(input, "l1_loss") == FALLBACK:
        check_loss_pair(input, target, _OP)  # the fused op's contract: no broadcasting, one dtype
        # torch's op, as F.l1_loss calls it once it has broadcast the (here equal) shapes
        loss = torch._C._nn.l1_loss(input, target, 1 if reduction == "mean" else 2)
        return loss if weight == 1.0 else loss * float(weight)
    compute_grad = torch.is_grad_enabled() and (input.requires_grad or target.requires_grad)
    loss, _stored = l1_loss_op(input, target, float(weight), reduction, compute_grad)
    return loss
