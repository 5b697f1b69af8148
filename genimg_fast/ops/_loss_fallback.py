"""The loss terms where no kernel serves (CPU, CUDA without verified kernels): torch's own loss
ops, one per term, with torch's autograd (so double backward too). The same terms as the
fused op (genimg_fast.ops.loss_terms: weight * reduction(f(input, target))), computed the way the
recipes' eager torch code computes them: a constant target is a tensor of labels, as junyanz's
GANLoss makes it (at the size of a discriminator's output the cheapest form in host time).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from genimg_fast.ops import _loss_math
from genimg_fast.ops._checks import is_real

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
    return torch.full_like(x, float(target))


# torch's reduction codes. The losses are torch's own ops, called as torch.nn.functional's
# wrappers call them, less the wrappers' broadcasting of input and target: _target has made their
# shapes equal already, and the wrappers' checks cost more host time than a small loss takes.
_REDUCTIONS = {"mean": 1, "sum": 2}

# kinds whose value carries a factor 1/2, folded into the term's weight (one multiply fewer)
_HALVED = ("half_square", "kl_logvar")


def _unweighted(x: Tensor, kind: str, target: Tensor | float | None, reduction: str, index: int) -> Tensor:
    """reduction(f(x, target)), without the weight (and without the 1/2 of the _HALVED kinds)."""
    mode = _REDUCTIONS.get(reduction)
    if mode is None:
        raise ValueError(f"{_OP}: reduction must be 'mean' or 'sum', got {reduction!r} (term {kind!r})")
    if kind == "mse":
        return torch._C._nn.mse_loss(x, _target(x, target, kind, index), mode)
    if kind == "l1":
        return torch._C._nn.l1_loss(x, _target(x, target, kind, index), mode)
    if kind == "bce_logits":
        return torch.binary_cross_entropy_with_logits(x, _target(x, target, kind, index), None, None, mode)
    if kind == "bce":
        return torch._C._nn.binary_cross_entropy(x, _target(x, target, kind, index), None, mode)
    if kind not in ("linear", "half_square", "kl_logvar"):
        raise ValueError(f"{_OP}: loss kind must be one of {', '.join(_loss_math.KINDS)}, got {kind!r}")
    if target is not None:
        raise ValueError(f"{_OP}: a {kind!r} term takes no target, but targets[{index}] is given")
    if kind == "half_square":
        x = x.square()
    elif kind == "kl_logvar":
        x = torch.expm1(x) - x
    return x.mean() if reduction == "mean" else x.sum()


def gan_value(prediction: Tensor, mode: str, target_is_real: bool, real_label: float = 1.0,
              fake_label: float = 0.0) -> Tensor:
    """A GAN loss term (unweighted) as junyanz's GANLoss computes it: lsgan = MSE, vanilla = BCE
    with logits, bce = BCE on probabilities, against a constant label; wgangp = -mean for real,
    +mean for fake. `mode` is checked by the caller."""
    if mode == "wgangp":
        return -prediction.mean() if target_is_real else prediction.mean()
    label = torch.full_like(prediction, float(real_label if target_is_real else fake_label))
    if mode == "lsgan":
        return torch._C._nn.mse_loss(prediction, label, 1)
    if mode == "vanilla":
        return torch.binary_cross_entropy_with_logits(prediction, label, None, None, 1)
    return torch._C._nn.binary_cross_entropy(prediction, label, None, 1)


def l1_value(input: Tensor, target: Tensor, index: int) -> Tensor:
    """mean |input - target| of an objective's L1 term; shapes must agree, as for the fused op."""
    return torch._C._nn.l1_loss(input, _target(input, target, "l1", index), 1)


def term_value(x: Tensor, kind: str, target: Tensor | float | None, weight: float, reduction: str,
               index: int = 0) -> Tensor:
    """weight * reduction(f(x, target)) for one term, with torch's functions."""
    value = _unweighted(x, kind, target, reduction, index)
    if kind in _HALVED:
        weight *= 0.5
    return value if weight == 1.0 else value * weight


class ScaledValues(Sequence[Tensor]):
    """The per-term values when every term has the same weight w: the total is w * sum(raw), one
    multiply, and each value is w * raw[i], computed only when read (the steps that log)."""

    __slots__ = ("_raw", "_weight")

    def __init__(self, raw: list[Tensor], weight: float) -> None:
        self._raw, self._weight = raw, weight

    def __getitem__(self, i):
        return self._raw[i] * self._weight

    def __len__(self) -> int:
        return len(self._raw)


def sum_terms(values: Sequence[Tensor]) -> Tensor:
    """values[0] + values[1] + ..., in order (as the recipes add their terms)."""
    total = values[0]
    for value in values[1:]:
        total = total + value
    return total


def loss_terms(terms) -> tuple[Tensor, Sequence[Tensor]]:
    """(total, each term's weighted value) of LossTerm-like tuples (input, kind, target, weight,
    reduction)."""
    raw, weights = [], []
    for i, (x, kind, target, weight, reduction) in enumerate(terms):
        if not isinstance(x, Tensor):
            raise TypeError(f"{_OP}: term {i} ({kind}): input must be a torch.Tensor, got {type(x).__name__}")
        if not is_real(weight):
            raise TypeError(f"{_OP}: term {i} ({kind}): weight must be a real number")
        raw.append(_unweighted(x, kind, target, reduction, i))
        weights.append(float(weight) * 0.5 if kind in _HALVED else float(weight))
    shared = weights[0] if all(w == weights[0] for w in weights) else None
    values = raw if shared is not None else [v if w == 1.0 else v * w for v, w in zip(raw, weights)]
    total = sum_terms(values)
    if shared is None or shared == 1.0:
        return total, values
    return total * shared, ScaledValues(raw, shared)
