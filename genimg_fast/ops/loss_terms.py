"""genimg_fast::loss_terms — a sum of weighted loss terms in one pass, gradients included.

A term is (input, target, kind, weight, reduction): weight * reduce(f(input, target)) with f one
of _loss_math.KINDS and the target a tensor or a constant (a Python number, never
materialized). One op call (one kernel launch on a GPU) computes every term, their total and
each input's stored gradient `weight * df/da`; backward is one more launch
(_scale_term_stored_grads) that multiplies each stored gradient by the incoming gradient and the
1/n of a mean in fp32. Objectives such as CycleGAN's six-term generator loss are one call.

The op's arguments are lists plus a spec string "kind:reduction,..." (one entry per term), so
that its schema stays within what torch.library supports. Use `loss_terms(terms)` with
`LossTerm` values instead of calling it directly.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from genimg_fast import _backend
from genimg_fast._implementation import FALLBACK, implementation
from genimg_fast.ops import _loss_fallback, _loss_math
from genimg_fast.ops._checks import accumulation_dtype, check_float_tensor, check_probabilities, is_real

Tensor = torch.Tensor
_OP = "genimg_fast.loss_terms"
MAX_TERMS = 8  # the kernel carries the term table in its launch arguments


def parse_spec(spec: str, count: int, op: str = _OP) -> list[tuple[str, bool]]:
    """[(kind, is_mean)] from "kind:reduction,..."; raises naming the bad entry."""
    entries = spec.split(",") if spec else []
    if len(entries) != count:
        raise ValueError(f"{op}: spec must have one 'kind:reduction' entry per input ({count}), got {spec!r}")
    parsed = []
    for entry in entries:
        kind, _, reduction = entry.partition(":")
        if kind not in _loss_math.KINDS:
            raise ValueError(f"{op}: loss kind must be one of {', '.join(_loss_math.KINDS)}, got {kind!r}")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"{op}: reduction must be 'mean' or 'sum', got {reduction!r} (term {kind!r})")
        parsed.append((kind, reduction == "mean"))
    return parsed


def _check(inputs, targets, target_values, spec, weights) -> list[tuple[str, bool]]:
    count = len(inputs)
    if not 1 <= count <= MAX_TERMS:
        raise ValueError(f"{_OP}: between 1 and {MAX_TERMS} terms, got {count}")
    if not len(targets) == len(target_values) == len(weights) == count:
        raise ValueError(f"{_OP}: inputs, targets, target_values and weights must have one entry per term")
    parsed = parse_spec(spec, count)
    first = inputs[0]
    for i, (x, t, (kind, _)) in enumerate(zip(inputs, targets, parsed)):
        check_float_tensor(x, f"inputs[{i}]", _OP)
        if x.dtype != first.dtype:
            raise TypeError(f"{_OP}: every input must have the dtype of inputs[0] ({first.dtype}), "
                            f"inputs[{i}] is {x.dtype}")
        if x.device != first.device:
            raise ValueError(f"{_OP}: every input must be on the device of inputs[0] ({first.device}), "
                             f"inputs[{i}] is on {x.device}")
        if t is None:
            continue
        if not _loss_math.KINDS[kind]:
            raise ValueError(f"{_OP}: a {kind!r} term takes no target, but targets[{i}] is a tensor")
        if t.dtype != x.dtype or t.device != x.device or t.shape != x.shape:
            raise ValueError(f"{_OP}: targets[{i}] must match inputs[{i}] in shape, dtype and device "
                             f"({list(x.shape)}, {x.dtype}, {x.device}), got ({list(t.shape)}, {t.dtype}, {t.device})")
    return parsed


def _refuse_target_grads(targets, kinds, index: int = 0) -> None:
    """Targets are data or labels in every objective here; a target that requires grad would
    silently get none, so it is an error (genimg_fast.ops.l1_loss does differentiate its target)."""
    for i, (t, kind) in enumerate(zip(targets, kinds), start=index):
        if t is not None and t.requires_grad and torch.is_grad_enabled():
            raise RuntimeError(f"{_OP}: targets[{i}] (a {kind!r} term) requires grad, but gradients with respect "
                               "to targets are not computed; detach it, or use genimg_fast.ops.l1_loss / torch's "
                               "loss for that term")


def _grad_like(x: Tensor, compute_grad: bool) -> Tensor:
    return torch.empty_like(x) if compute_grad else x.new_empty((0,))


@torch.library.custom_op("genimg_fast::loss_terms", mutates_args=())
def loss_terms_op(inputs: list[Tensor], targets: list[Tensor | None], target_values: list[float], spec: str,
                  weights: list[float], compute_grad: bool) -> tuple[Tensor, Tensor, list[Tensor]]:
    """Reference. Returns (per-term values [T], total, stored gradients weight * df/da per input
    (empty tensors without compute_grad)); values in the inputs' dtype. A 'bce' input outside
    [0, 1] (or NaN) raises on CPU tensors, as torch's BCELoss does; on CUDA tensors, reference and
    kernels alike, it gives a non-finite value instead (a check there would cost a host sync)."""
    parsed = _check(inputs, targets, target_values, spec, weights)
    for i, (x, (kind, _)) in enumerate(zip(inputs, parsed)):
        if kind == "bce":
            check_probabilities(x, f"inputs[{i}]", _OP)
    if inputs[0].is_cuda:
        _backend.note_reference_on_cuda("loss_terms")
    acc = accumulation_dtype(inputs[0].dtype)
    values, grads = [], []
    for x, t, t_value, (kind, mean), weight in zip(inputs, targets, target_values, parsed, weights):
        b = t.to(acc) if t is not None else t_value
        value, grad = _loss_math.element(kind, x.to(acc), b)
        n = x.numel()
        if n == 0:  # like torch: the mean of nothing is NaN, the sum 0
            values.append(torch.tensor(float("nan") if mean else 0.0, dtype=acc, device=x.device))
        else:
            values.append(value.sum() * (weight / n if mean else weight))
        out = _grad_like(x, compute_grad)
        if compute_grad:
            out.copy_(grad * weight)
        grads.append(out)
    terms = torch.stack(values)
    return terms.to(inputs[0].dtype), terms.sum().to(inputs[0].dtype), grads


@loss_terms_op.register_fake
def _(inputs, targets, target_values, spec, weights, compute_grad):
    _check(inputs, targets, target_values, spec, weights)
    x = inputs[0]
    return x.new_empty((len(inputs),)), x.new_empty(()), [_grad_like(t, compute_grad) for t in inputs]


def _setup_context(ctx, inputs, output):
    inputs_, targets, _values, spec, _weights, compute_grad = inputs
    _terms, _total, stored = output
    ctx.mark_non_differentiable(*stored)
    ctx.compute_grad = compute_grad
    ctx.spec = spec
    _refuse_target_grads(targets, [kind for kind, _ in parse_spec(spec, len(inputs_))])
    # custom_op's autograd treats a list of tensors as tensors, any other list as one constant
    ctx.target_grads = [None] * len(targets) if all(t is not None for t in targets) else None
    ctx.save_for_backward(*stored)


def _refuse_double_backward(spec: str) -> None:
    """A backward being recorded (create_graph=True, e.g. an R1 penalty on a loss's gradient)
    would take the stored gradients for constants: wrong for every kind whose gradient depends
    on its input. Refused with the way out, instead of a silently wrong second derivative."""
    curved = sorted({kind for kind, _ in parse_spec(spec, len(spec.split(",")), _OP)} -
                    set(_loss_math.LINEAR_GRADIENT_KINDS))
    if curved:
        raise RuntimeError(
            f"{_OP}: double backward (create_graph=True through the fused {', '.join(curved)} loss) is not "
            "supported: the fused loss computes its gradient in the forward, and a graph of its backward would "
            "treat that gradient as a constant. Compute a loss you differentiate twice with torch's own "
            "functions (torch.nn.functional, or impl='reference' in the recipes)")


def _backward(ctx, grad_terms, grad_total, _grad_stored):
    if not ctx.compute_grad:
        raise RuntimeError(f"{_OP} was called with compute_grad=False, so it stored no gradient; call "
                           "genimg_fast.ops.loss_terms, which sets it when a gradient is needed")
    if torch.is_grad_enabled():
        _refuse_double_backward(ctx.spec)
    grads = _scale_term_stored_grads(list(ctx.saved_tensors), grad_total, grad_terms, ctx.spec)
    return grads, ctx.target_grads, None, None, None, None


loss_terms_op.register_autograd(_backward, setup_context=_setup_context)
for _device in ("cuda", "cpu"):  # like torch's losses under autocast: compute in fp32
    torch.library.register_autocast("genimg_fast::loss_terms", _device, torch.float32)


# ---- backward: every stored gradient times its incoming gradient, one launch ----

def _check_scale(stored, grad_total, grad_terms, spec) -> list[tuple[str, bool]]:
    op = "genimg_fast._scale_term_stored_grads"
    parsed = parse_spec(spec, len(stored), op)
    if grad_terms is not None and grad_terms.shape != (len(stored),):
        raise ValueError(f"{op}: one grad_terms entry per stored gradient ({len(stored)}), got grad_terms of "
                         f"shape {list(grad_terms.shape)}")
    if grad_total.numel() != 1:
        raise ValueError(f"{op}: grad_total must hold one value, got shape {list(grad_total.shape)}")
    for i, s in enumerate(stored):
        check_float_tensor(s, f"stored[{i}]", op)
        if s.device != grad_total.device or (grad_terms is not None and grad_terms.device != grad_total.device):
            raise ValueError(f"{op}: stored[{i}], grad_total and grad_terms must share a device")
    return parsed


@torch.library.custom_op("genimg_fast::_scale_term_stored_grads", mutates_args=())
def _scale_term_stored_grads(stored: list[Tensor], grad_total: Tensor, grad_terms: Tensor | None,
                             spec: str) -> list[Tensor]:
    """out[i] = stored[i] * (grad_total + grad_terms[i]) (no grad_terms: grad_total alone), divided
    by stored[i].numel() for the 'mean' terms of the loss spec; in fp32 (fp64 for fp64), rounded
    once: a tiny 1/n never has to survive fp16/bf16 storage. (The count is taken here, not passed
    in, so that the op also traces with symbolic shapes.) The backward of loss_terms.

    Args:
        stored (list[Tensor]): the gradients the loss_terms op stored, one per term.
        grad_total (Tensor): the incoming gradient of the total, one element.
        grad_terms (Tensor, optional): the incoming gradients of the per-term values, shape [T].
        spec (str): the loss's "kind:reduction,..." spec, one entry per stored gradient.

    Returns:
        list[Tensor]: one gradient per stored tensor, of its shape and dtype.

    Raises:
        ValueError: a spec entry that is malformed or does not match stored in number,
            grad_terms not of shape [T], grad_total not one element, or tensors on different devices.
        TypeError: a stored gradient that is not a tensor of a supported float dtype.
    """
    parsed = _check_scale(stored, grad_total, grad_terms, spec)
    outs = []
    for i, (s, (_, mean)) in enumerate(zip(stored, parsed)):
        scale = 1.0 / s.numel() if mean and s.numel() > 0 else 1.0
        acc = accumulation_dtype(s.dtype)
        factor = grad_total.reshape(()).to(acc) + (grad_terms[i].to(acc) if grad_terms is not None else 0.0)
        factor = factor * scale
        out = torch.empty_like(s)
        out.copy_(s.to(acc) * factor)
        outs.append(out)
    return outs


@_scale_term_stored_grads.register_fake
def _(stored, grad_total, grad_terms, spec):
    _check_scale(stored, grad_total, grad_terms, spec)
    return [torch.empty_like(s) for s in stored]


# ---- the Python API ----

class LossTerm(NamedTuple):
    """One loss term, weight * reduction(f(input, target)), for loss_terms.

    (A NamedTuple: objectives build several per training step, and a tuple costs a fraction of a
    frozen dataclass.)

    Fields:
        input (Tensor): the term's input, any shape, floating point.
        kind (str): f: 'l1' |a - b|, 'mse' (a - b)^2, 'bce' (BCE on probabilities, as
            nn.BCELoss), 'bce_logits' (BCE with logits), or, without a target, 'linear' a,
            'half_square' a^2 / 2, 'kl_logvar' (exp(a) - 1 - a) / 2.
        target (Tensor, float or None): a tensor of input's shape, dtype and device, or a
            constant; None for the kinds without one (loss_terms says what each implementation
            does otherwise). Default: None.
        weight (float): the term's weight. Default: 1.0.
        reduction (str): 'mean' or 'sum' over input's elements. Default: 'mean'.
    """
    input: Tensor
    kind: str
    target: Tensor | float | None = None
    weight: float = 1.0
    reduction: str = "mean"


def loss_terms(terms: list[LossTerm]) -> tuple[Tensor, Tensor]:
    """(total, per-term values [T]) of a list of LossTerms, in one fused op where the kernels serve
    (torch's own loss functions elsewhere). The per-term values are for logging; gradients flow
    through both.

    Args:
        terms (list[LossTerm]): the terms, at least one.

    Returns:
        (Tensor, Tensor): the 0-d total and the weighted per-term values, shape [T], in the
        inputs' dtype outside autocast (float32 under autocast).

    Raises:
        ValueError: no terms, an unknown kind or reduction, a target tensor of another shape
            than its input, or a target tensor for a kind without one.
        TypeError: an input that is not a tensor, or a weight that is not a real number.
        RuntimeError: 'bce' with CPU inputs outside [0, 1] or NaN.

    Beyond these the two implementations check differently. The fused op also raises
    ValueError for more than 8 terms (MAX_TERMS) or a target of another dtype or device,
    TypeError for a non-float input, inputs of different dtypes or a target that is not a
    tensor, number or None, and RuntimeError for a target that requires grad or a double
    backward through a term whose gradient depends on its input (any kind but 'l1' and
    'linear'); it ignores a number given to a kind without a target and compares a target
    kind given None with 0. torch's path takes any number of terms, promotes mixed dtypes and
    differentiates targets; it raises ValueError for None as a needed target or any target of
    a kind without one, and torch's own errors otherwise.
    """
    total, values = evaluate_terms(terms)
    return total, values if isinstance(values, Tensor) else torch.stack(list(values))


def evaluate_terms(terms: list[LossTerm]) -> tuple[Tensor, Tensor | Sequence[Tensor]]:
    """loss_terms(), with the per-term values as the implementation that served left them: a
    tensor from the fused op, a sequence of 0-d tensors from torch's functions (the objectives'
    LoggedTerms reads either, and stacking would cost every step an op)."""
    if not terms:
        raise ValueError(f"{_OP}: no terms")
    first = terms[0][0]
    if isinstance(first, Tensor) and implementation(first, "loss_terms") == FALLBACK:
        return _loss_fallback.loss_terms(terms)
    return _fused_loss_terms(terms)


def _fused_loss_terms(terms: list[LossTerm]) -> tuple[Tensor, Tensor]:
    inputs, targets, values, weights, spec = [], [], [], [], []
    grad_enabled = torch.is_grad_enabled()
    grad_needed = False
    for i, (x, kind, target, weight, reduction) in enumerate(terms):
        if not isinstance(x, Tensor):
            raise TypeError(f"{_OP}: term {i} ({kind}): input must be a torch.Tensor, got {type(x).__name__}")
        if not is_real(weight):
            raise TypeError(f"{_OP}: term {i} ({kind}): weight must be a real number")
        if isinstance(target, Tensor):
            if grad_enabled and target.requires_grad:
                _refuse_target_grads([target], [kind], index=i)
            targets.append(target)
            values.append(0.0)
        elif target is None or is_real(target):
            targets.append(None)
            values.append(0.0 if target is None else float(target))
        else:
            raise TypeError(f"{_OP}: term {i} ({kind}): target must be a tensor, a number or None, "
                            f"got {type(target).__name__}")
        inputs.append(x)
        weights.append(float(weight))
        spec.append(f"{kind}:{reduction}")
        grad_needed = grad_needed or (grad_enabled and x.requires_grad)
    half = grad_needed and inputs[0].dtype == torch.float16 and not torch.is_autocast_enabled(inputs[0].device.type)
    if half:
        # fp16 cannot hold every stored gradient weight * df/da before the backward's 1/n of a mean
        # (bce at p = 1e-5 stores -1e5): computed in fp32, as autocast would, the casts' backward
        # rounds the finished gradient to fp16, as torch's own losses do
        inputs = [x.float() for x in inputs]
        targets = [None if t is None else t.float() for t in targets]
    term_values, total, _stored = loss_terms_op(inputs, targets, values, ",".join(spec), weights, grad_needed)
    return (total.half(), term_values.half()) if half else (total, term_values)
