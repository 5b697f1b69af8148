"""Argument checks shared by the references and fake impls; they mirror csrc/common/tensor_checks.h
so that every implementation rejects the same inputs with a message naming the argument."""
from __future__ import annotations

import numbers

import torch

SUPPORTED_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp32 accumulation for fp32/fp16/bf16 (as the kernels do), fp64 for fp64."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def check_float_tensor(tensor: torch.Tensor, name: str, op: str) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dtype not in SUPPORTED_FLOAT_DTYPES:
        raise TypeError(f"{op}: {name} must be float32, float16, bfloat16 or float64, got {tensor.dtype}")


def check_loss_pair(input: torch.Tensor, target: torch.Tensor, op: str) -> None:
    """input/target of a loss: same shape, dtype and device; a floating dtype we support."""
    check_float_tensor(input, "input", op)
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"{op}: target must be a torch.Tensor, got {type(target).__name__}")
    if target.dtype != input.dtype:
        raise TypeError(f"{op}: target must have the same dtype as input ({input.dtype}), got {target.dtype}")
    if target.device != input.device:
        raise ValueError(f"{op}: target must be on the same device as input ({input.device}), got {target.device}")
    if target.shape != input.shape:
        raise ValueError(f"{op}: target must have the same shape as input {list(input.shape)}, "
                         f"got {list(target.shape)}")


def check_probabilities(tensor: torch.Tensor, name: str, op: str) -> None:
    """torch's BCELoss check: every element in [0, 1] (NaN and Inf fail it), on CPU tensors only.

    On a GPU the answer would have to be read back to the host, a sync on every loss call; there
    an out-of-range probability gives a non-finite loss instead (NaN), which the trainer's
    non-finite stop reports (docs/implementations.md)."""
    if tensor.device.type != "cpu" or tensor.numel() == 0:
        return
    if not bool(((tensor >= 0) & (tensor <= 1)).all()):  # written so that NaN fails too
        raise RuntimeError(f"{op}: all elements of {name} should be between 0 and 1 (probabilities, as for "
                           "torch's BCELoss), got values outside [0, 1] or NaN")


def is_mean_reduction(reduction: str, op: str) -> bool:
    if reduction not in ("mean", "sum"):
        raise ValueError(f"{op}: reduction must be 'mean' or 'sum', got {reduction!r}")
    return reduction == "mean"


def is_real(value) -> bool:
    """A real number that is not a bool (exact float/int first: the ABC check is slow)."""
    return type(value) in (float, int) or (isinstance(value, numbers.Real) and not isinstance(value, bool))
