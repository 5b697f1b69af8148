"""The loss terms where no kernel serves (CPU, CUDA without verified kernels): torch's own loss
functions, one per term, with torch's autograd (so double backward too). The same terms as the
fused op (genimg_fast.ops.loss_terms: weight * reduction(f(input, target))), computed the way the
recipes' eager torch code computes them, with no extra pass: a constant target is a 0-d tensor
expanded to the input's shape, never a full tensor of labels.
"""
from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F

from genimg_fast.ops import _loss_math

Tensor = torch.Tensor
_OP = "genimg_fast.loss_terms"


def _target(x: Tensor, target: Tensor | float | None, kind: str, index: int) -> Tensor:
    if isinstance(target, Tensor):
        if target.shape != x.shape:
            raise ValueError(f"{_OP}: targets[{index}] must match inputs[{index}] in shape ({list(x.shape)}), "
                             f"got {list(target.shape)}")
        return target
    if target is None:
        raise ValueError(f"{_OP}: term {index} ({kind}) needs a target")
    return x.new_full((), float(target)).expand_as(x)


def term_value(x: Tensor, kind: str, target: Tensor | float | None, weight: float, reduction: str,
               index: int = 0) -> Tensor:
    """weight * reduction(f(x, target)) for one term, with torch's functions."""
    if reduction not in ("mean", "sum"):
        raise ValueError(f"{_OP}: reduction must be 'mean' or 'sum', got {reduction!r} (term {kind!r})")
    if kind == "mse":
        value = F.mse_loss(x, _target(x, target, kind, index), reduction=reduction)
    elif kind == "l1":
        value = F.l1_loss(x, _target(x, target, kind, index), reduction=reduction)
    elif kind == "bce_logits":
        value = F.binary_cross_entropy_with_logits(x, _target(x, target, kind, index), reduction=reduction)
    elif kind == "bce":
        value = F.binary_cross_entropy(x, _target(x, target, kind, index), reduction=reduction)
    elif kind in ("linear", "half_square", "kl_logvar"):
        if target is not None:
            raise ValueError(f"{_OP}: a {kind!r} term takes no target, but targets[{index}] is given")
        if kind == "half_square":
            x, weight = x.square(), weight * 0.5
        elif kind == "kl_logvar":
            x, weight = torch.expm1(x) - x, weight * 0.5
        value = x.mean() if reduction == "mean" else x.sum()
    else:
        raise ValueError(f"{_OP}: loss kind must be one of {', '.join(_loss_math.KINDS)}, got {kind!r}")
    return value if weight == 1.0 else value * weight


def loss_terms(terms) -> tuple[Tensor, list[Tensor]]:
    """(total, [each term's weighted value]) of LossTerm-like tuples."""
    values = []
    for i, (x, kind, target, weight, reduction) in enumerate(terms):
        if not isinstance(x, Tensor):
            raise TypeError(f"{_OP}: term {i} ({kind}): input must be a torch.Tensor, got {type(x).__name__}")
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real):
            raise TypeError(f"{_OP}: term {i} ({kind}): weight must be a real number")
        values.append(term_value(x, kind, target, float(weight), reduction, i))
    total = values[0]
    for value in values[1:]:
        total = total + value
    return total, values
