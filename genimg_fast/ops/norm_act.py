"""Fused normalization + activation ops (batch norm and instance norm, training and eval).

Ops in the genimg_fast namespace, each with a reference (see _norm_act_math.py), a fake
impl, and a CUDA kernel registered from csrc/norm_act/:

- norm_act_train(x, weight, bias, per_sample, eps, activation, slope) -> (y, mean, var):
  batch statistics (per channel; per sample and channel when per_sample) and
  y = act((x - mean) * rsqrt(var + eps) * weight + bias) in one op. Differentiable in x,
  weight and bias through _norm_act_train_backward, which recomputes the activation's mask
  from x and the statistics instead of storing the output.
- norm_act_apply(x, mean, var, weight, bias, eps, activation, slope) -> y: given statistics
  (eval mode: running stats). Differentiable in x, weight, bias; the statistics are constants.
- norm_act_stats, _norm_act_backward_reduce, _norm_act_backward_apply: the pieces the two ops
  are made of, exposed so synchronized batch norm can all-reduce between them.
- update_running_stats_, update_tracked_running_stats_: the in-place running-statistics updates
  of torch.nn.InstanceNorm2d and torch.nn.BatchNorm2d (which also counts batches).

Where the kernels are loaded, the autograd of norm_act_train, norm_act_apply and the running-
statistics updates on CPU and CUDA tensors is the C++ one in csrc/norm_act/norm_act_autograd.cpp
(no Python between a module's call and the kernels); the Python formulas registered here serve
other devices and installs without the extension.
"""
from __future__ import annotations

import torch

from genimg_fast import _backend
from genimg_fast.ops import _norm_act_math
from genimg_fast.ops._checks import accumulation_dtype, check_float_tensor
from genimg_fast.ops.norm_act_differentiable_backward import _norm_act_differentiable_backward

Tensor = torch.Tensor


# ---- argument checks (mirrored by csrc/norm_act/norm_act_checks.h) ----

def _check_input(x: Tensor, op: str) -> None:
    check_float_tensor(x, "x", op)
    if x.dim() != 4:
        raise ValueError(f"{op}: x must be 4-D (N, C, H, W), got {x.dim()}-D input of shape {list(x.shape)}")


def _check_param(param: Tensor | None, name: str, x: Tensor, op: str) -> None:
    if param is None:
        return
    check_float_tensor(param, name, op)
    if param.shape != (x.shape[1],):
        raise ValueError(f"{op}: {name} must have shape [{x.shape[1]}] (one value per channel of x), "
                         f"got {list(param.shape)}")
    if param.device != x.device:
        raise ValueError(f"{op}: {name} must be on the same device as x ({x.device}), got {param.device}")


def _check_stats(mean: Tensor, var: Tensor, x: Tensor, op: str) -> None:
    n, c = x.shape[:2]
    for name, stat in (("mean", mean), ("var", var)):
        check_float_tensor(stat, name, op)
        if stat.shape not in ((c,), (n, c)):
            raise ValueError(f"{op}: {name} must have shape [{c}] or [{n}, {c}], got {list(stat.shape)}")
        if stat.device != x.device:
            raise ValueError(f"{op}: {name} must be on the same device as x ({x.device}), got {stat.device}")
    if mean.shape != var.shape:
        raise ValueError(f"{op}: mean and var must have the same shape, got {list(mean.shape)} and {list(var.shape)}")


def _check_activation(activation: str, op: str) -> None:
    if activation not in _norm_act_math.ACTIVATIONS:
        raise ValueError(f"{op}: activation must be one of {', '.join(_norm_act_math.ACTIVATIONS)}, got {activation!r}")


def _check_common(x, weight, bias, activation, op) -> None:
    _check_input(x, op)
    _check_param(weight, "weight", x, op)
    _check_param(bias, "bias", x, op)
    _check_activation(activation, op)


def check_training_count(x: Tensor, per_sample: bool) -> None:
    """torch's errors for batch statistics of a single value."""
    if _norm_act_math.group_count(x, per_sample) == 1:
        what = "spatial element" if per_sample else "value per channel"
        raise ValueError(f"Expected more than 1 {what} when training, got input size {x.shape}")


def _note_cuda(x: Tensor, op: str) -> None:
    if x.is_cuda:
        _backend.note_reference_on_cuda(op)


def _stat_shape(x: Tensor, per_sample: bool) -> tuple[int, ...]:
    return tuple(x.shape[:2]) if per_sample else (x.shape[1],)


# ---- the pieces ----

@torch.library.custom_op("genimg_fast::norm_act_stats", mutates_args=())
def norm_act_stats(x: Tensor, per_sample: bool) -> tuple[Tensor, Tensor]:
    """(mean, biased var) per channel, or per sample and channel; fp32 (fp64 for fp64 x).

    Args:
        x (Tensor): (N, C, H, W); float32, float16, bfloat16 or float64.
        per_sample (bool): statistics per (sample, channel), shape (N, C), as instance norm
            takes them, instead of per channel, shape (C,), as batch norm does.

    Returns:
        (Tensor, Tensor): mean and biased variance; NaN for an x with no elements.

    Raises:
        TypeError: x is not float32, float16, bfloat16 or float64.
        ValueError: x is not 4-D.
    """
    _check_input(x, "genimg_fast.norm_act_stats")
    _note_cuda(x, "norm_act_stats")
    return _norm_act_math.stats(x, per_sample)


@norm_act_stats.register_fake
def _(x, per_sample):
    _check_input(x, "genimg_fast.norm_act_stats")
    acc = accumulation_dtype(x.dtype)
    shape = _stat_shape(x, per_sample)
    return x.new_empty(shape, dtype=acc), x.new_empty(shape, dtype=acc)


@torch.library.custom_op("genimg_fast::norm_act_apply", mutates_args=())
def norm_act_apply(x: Tensor, mean: Tensor, var: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float,
                   activation: str, slope: float) -> Tensor:
    """y = act((x - mean) * rsqrt(var + eps) * weight + bias) with given statistics (eval mode).

    Differentiable in x, weight and bias; the statistics are constants (a gradient with respect
    to them raises RuntimeError in backward).

    Args:
        x (Tensor): (N, C, H, W); float32, float16, bfloat16 or float64.
        mean, var (Tensor): (C,) or (N, C), one shape, on x's device (running statistics, say).
        weight, bias (Tensor or None): (C,) per-channel scale and shift on x's device; None
            means 1 and 0.
        eps (float): added to the variance before its square root.
        activation (str): 'identity', 'relu' or 'leaky_relu'.
        slope (float): the leaky_relu negative slope (unused by the others).

    Returns:
        Tensor: y, x's shape and dtype, laid out like torch.empty_like(x).

    Raises:
        TypeError: a tensor argument that is not float32, float16, bfloat16 or float64.
        ValueError: x not 4-D, a tensor argument of the wrong shape or on another device, or an
            unknown activation.
    """
    op = "genimg_fast.norm_act_apply"
    _check_common(x, weight, bias, activation, op)
    _check_stats(mean, var, x, op)
    _note_cuda(x, "norm_act_apply")
    return _norm_act_math.apply(x, mean, var, weight, bias, eps, activation, slope)


@norm_act_apply.register_fake
def _(x, mean, var, weight, bias, eps, activation, slope):
    op = "genimg_fast.norm_act_apply"
    _check_common(x, weight, bias, activation, op)
    _check_stats(mean, var, x, op)
    return torch.empty_like(x)


@torch.library.custom_op("genimg_fast::_norm_act_backward_reduce", mutates_args=())
def _norm_act_backward_reduce(grad_y: Tensor, x: Tensor, mean: Tensor, var: Tensor, weight: Tensor | None,
                             bias: Tensor | None, eps: float, activation: str, slope: float) -> tuple[Tensor, Tensor]:
    """Per-group (sum(dz), sum(dz * xhat)) with dz = grad_y * act'(z); shape of mean.

    The first half of the norm's backward, exposed so that synchronized batch norm can
    all-reduce the sums before _norm_act_backward_apply. Not differentiable (double backward
    raises RuntimeError).

    Args:
        grad_y (Tensor): the gradient of y, x's shape, dtype and device.
        x (Tensor): (N, C, H, W); float32, float16, bfloat16 or float64.
        mean, var (Tensor): the statistics used, (C,) or (N, C), on x's device.
        weight, bias (Tensor or None): (C,) per-channel scale and shift on x's device; None
            means 1 and 0.
        eps (float): added to the variance before its square root.
        activation (str): 'identity', 'relu' or 'leaky_relu'.
        slope (float): the leaky_relu negative slope (unused by the others).

    Returns:
        (Tensor, Tensor): sum_dz and sum_dz_xhat, mean's shape, float32 (float64 for float64 x).

    Raises:
        TypeError: a tensor argument that is not float32, float16, bfloat16 or float64, or
            grad_y of another dtype than x.
        ValueError: x not 4-D, a tensor argument of the wrong shape or on another device, or an
            unknown activation.
    """
    op = "genimg_fast._norm_act_backward_reduce"
    _check_backward(grad_y, x, mean, var, weight, bias, activation, op)
    _note_cuda(x, "_norm_act_backward_reduce")
    return _norm_act_math.backward_reduce(grad_y, x, mean, var, weight, bias, eps, activation, slope)


@_norm_act_backward_reduce.register_fake
def _(grad_y, x, mean, var, weight, bias, eps, activation, slope):
    op = "genimg_fast._norm_act_backward_reduce"
    _check_backward(grad_y, x, mean, var, weight, bias, activation, op)
    acc = accumulation_dtype(x.dtype)  # the sums are in x's accumulation type, whatever the statistics' type
    return mean.new_empty(mean.shape, dtype=acc), mean.new_empty(mean.shape, dtype=acc)


@torch.library.custom_op("genimg_fast::_norm_act_backward_apply", mutates_args=())
def _norm_act_backward_apply(grad_y: Tensor, x: Tensor, mean: Tensor, var: Tensor, weight: Tensor | None,
                            bias: Tensor | None, sum_dz: Tensor | None, sum_dz_xhat: Tensor | None, count: float,
                            eps: float, activation: str, slope: float) -> Tensor:
    """dx, with the per-group sums of batch statistics (over `count` values per group, all
    processes together for synchronized batch norm), or without them for fixed statistics.

    The second half of the norm's backward. Not differentiable (double backward raises
    RuntimeError).

    Args:
        grad_y (Tensor): the gradient of y, x's shape, dtype and device.
        x (Tensor): (N, C, H, W); float32, float16, bfloat16 or float64.
        mean, var (Tensor): the statistics used, (C,) or (N, C), on x's device.
        weight, bias (Tensor or None): (C,) per-channel scale and shift on x's device; None
            means 1 and 0.
        sum_dz, sum_dz_xhat (Tensor or None): _norm_act_backward_reduce's sums, mean's shape
            (batch statistics), or both None (fixed statistics).
        count (float): the number of values each group's statistics were taken over.
        eps (float): added to the variance before its square root.
        activation (str): 'identity', 'relu' or 'leaky_relu'.
        slope (float): the leaky_relu negative slope (unused by the others).

    Returns:
        Tensor: dx, x's shape and dtype.

    Raises:
        TypeError: a tensor argument that is not float32, float16, bfloat16 or float64, or
            grad_y of another dtype than x.
        ValueError: x not 4-D, a tensor argument of the wrong shape or on another device, an
            unknown activation, or only one of sum_dz and sum_dz_xhat given.
    """
    op = "genimg_fast._norm_act_backward_apply"
    _check_backward(grad_y, x, mean, var, weight, bias, activation, op)
    _check_sums(sum_dz, sum_dz_xhat, mean, op)
    _note_cuda(x, "_norm_act_backward_apply")
    return _norm_act_math.backward_apply(grad_y, x, mean, var, weight, bias, sum_dz, sum_dz_xhat, count, eps,
                                         activation, slope)


@_norm_act_backward_apply.register_fake
def _(grad_y, x, mean, var, weight, bias, sum_dz, sum_dz_xhat, count, eps, activation, slope):
    op = "genimg_fast._norm_act_backward_apply"
    _check_backward(grad_y, x, mean, var, weight, bias, activation, op)
    _check_sums(sum_dz, sum_dz_xhat, mean, op)
    return torch.empty_like(x)


def _check_backward(grad_y, x, mean, var, weight, bias, activation, op) -> None:
    """The arguments every backward op shares."""
    _check_common(x, weight, bias, activation, op)
    _check_stats(mean, var, x, op)
    _check_grad(grad_y, x, op)


def _check_grad(grad_y: Tensor, x: Tensor, op: str) -> None:
    check_float_tensor(grad_y, "grad_y", op)
    if grad_y.dtype != x.dtype:  # autograd passes y's (= x's) dtype; another would be read at x's precision
        raise TypeError(f"{op}: grad_y must have the dtype of x ({x.dtype}), got {grad_y.dtype}")
    if grad_y.shape != x.shape:
        raise ValueError(f"{op}: grad_y must have the shape of x {list(x.shape)}, got {list(grad_y.shape)}")
    if grad_y.device != x.device:
        raise ValueError(f"{op}: grad_y must be on the same device as x ({x.device}), got {grad_y.device}")


def _check_sums(sum_dz: Tensor | None, sum_dz_xhat: Tensor | None, mean: Tensor, op: str) -> None:
    if (sum_dz is None) != (sum_dz_xhat is None):
        raise ValueError(f"{op}: pass both sum_dz and sum_dz_xhat (batch statistics) or neither (fixed statistics)")
    for name, s in (("sum_dz", sum_dz), ("sum_dz_xhat", sum_dz_xhat)):
        if s is None:
            continue
        check_float_tensor(s, name, op)
        if s.shape != mean.shape:
            raise ValueError(f"{op}: {name} must have the shape of mean {list(mean.shape)}, got {list(s.shape)}")
        if s.device != mean.device:
            raise ValueError(f"{op}: {name} must be on the device of x ({mean.device}), got {s.device}")


# ---- the fused training op and its backward ----

@torch.library.custom_op("genimg_fast::norm_act_train", mutates_args=())
def norm_act_train(x: Tensor, weight: Tensor | None, bias: Tensor | None, per_sample: bool, eps: float,
                   activation: str, slope: float) -> tuple[Tensor, Tensor, Tensor]:
    """Batch (or instance) statistics and y = act((x - mean) * rsqrt(var + eps) * weight + bias)
    in one op: a training-mode norm + activation forward.

    Differentiable in x, weight and bias; backward recomputes the activation's mask from x and
    the statistics instead of saving y.

    Args:
        x (Tensor): (N, C, H, W); float32, float16, bfloat16 or float64.
        weight, bias (Tensor or None): (C,) per-channel scale and shift on x's device; None
            means 1 and 0.
        per_sample (bool): statistics per (sample, channel) (instance norm) instead of per
            channel (batch norm).
        eps (float): added to the variance before its square root.
        activation (str): 'identity', 'relu' or 'leaky_relu'.
        slope (float): the leaky_relu negative slope (unused by the others).

    Returns:
        (Tensor, Tensor, Tensor): y (x's shape and dtype, laid out like torch.empty_like(x)),
        and the mean and biased variance, (C,) or (N, C) for per_sample, float32 (float64 for
        float64 x); not differentiable.

    Raises:
        TypeError: a tensor argument that is not float32, float16, bfloat16 or float64.
        ValueError: x not 4-D, a tensor argument of the wrong shape or on another device, an
            unknown activation, or a single value per group (torch's error for training on one value).
    """
    op = "genimg_fast.norm_act_train"
    _check_common(x, weight, bias, activation, op)
    check_training_count(x, per_sample)
    _note_cuda(x, "norm_act_train")
    mean, var = _norm_act_math.stats(x, per_sample)
    return _norm_act_math.apply(x, mean, var, weight, bias, eps, activation, slope), mean, var


@norm_act_train.register_fake
def _(x, weight, bias, per_sample, eps, activation, slope):
    _check_common(x, weight, bias, activation, "genimg_fast.norm_act_train")
    check_training_count(x, per_sample)
    acc = accumulation_dtype(x.dtype)
    shape = _stat_shape(x, per_sample)
    return torch.empty_like(x), x.new_empty(shape, dtype=acc), x.new_empty(shape, dtype=acc)


@torch.library.custom_op("genimg_fast::_norm_act_train_backward", mutates_args=())
def _norm_act_train_backward(grad_y: Tensor, x: Tensor, mean: Tensor, var: Tensor, weight: Tensor | None,
                            bias: Tensor | None, eps: float, activation: str,
                            slope: float) -> tuple[Tensor, Tensor, Tensor]:
    """(dx, dweight, dbias) of norm_act_train; dweight/dbias per channel in the accumulation dtype.

    Not differentiable (double backward raises RuntimeError).

    Args:
        grad_y (Tensor): the gradient of y, x's shape, dtype and device.
        x (Tensor): (N, C, H, W); float32, float16, bfloat16 or float64.
        mean, var (Tensor): norm_act_train's statistics, (C,) or (N, C).
        weight, bias (Tensor or None): (C,) per-channel scale and shift on x's device; None
            means 1 and 0.
        eps (float): added to the variance before its square root.
        activation (str): 'identity', 'relu' or 'leaky_relu'.
        slope (float): the leaky_relu negative slope (unused by the others).

    Returns:
        (Tensor, Tensor, Tensor): dx (x's shape and dtype) and dweight, dbias, shape (C,),
        float32 (float64 for float64 x), computed whether or not weight and bias are None.

    Raises:
        TypeError: a tensor argument that is not float32, float16, bfloat16 or float64, or
            grad_y of another dtype than x.
        ValueError: x not 4-D, a tensor argument of the wrong shape or on another device, or an
            unknown activation.
    """
    op = "genimg_fast._norm_act_train_backward"
    _check_backward(grad_y, x, mean, var, weight, bias, activation, op)
    _note_cuda(x, "_norm_act_train_backward")
    sum_dz, sum_dz_xhat = _norm_act_math.backward_reduce(grad_y, x, mean, var, weight, bias, eps, activation, slope)
    count = _norm_act_math.group_count(x, mean.dim() == 2)
    dx = _norm_act_math.backward_apply(grad_y, x, mean, var, weight, bias, sum_dz, sum_dz_xhat, count, eps, activation,
                                       slope)
    dweight, dbias = _norm_act_math.param_grads(sum_dz, sum_dz_xhat)
    return dx, dweight, dbias


@_norm_act_train_backward.register_fake
def _(grad_y, x, mean, var, weight, bias, eps, activation, slope):
    op = "genimg_fast._norm_act_train_backward"
    _check_backward(grad_y, x, mean, var, weight, bias, activation, op)
    acc = accumulation_dtype(x.dtype)
    c = x.shape[1]
    return torch.empty_like(x), x.new_empty((c,), dtype=acc), x.new_empty((c,), dtype=acc)


def _param_grad(grad: Tensor, param: Tensor | None, needed: bool) -> Tensor | None:
    return grad.to(param.dtype) if needed and param is not None else None


def _train_setup_context(ctx, inputs, output):
    x, weight, bias, _per_sample, eps, activation, slope = inputs
    _y, mean, var = output
    ctx.mark_non_differentiable(mean, var)
    ctx.save_for_backward(x, weight, bias, mean, var)
    ctx.options = (eps, activation, slope)


def _train_backward(ctx, grad_y, _grad_mean, _grad_var):
    x, weight, bias, mean, var = ctx.saved_tensors
    if torch.is_grad_enabled():  # a backward to differentiate (create_graph=True): torch ops
        dx, dweight, dbias = _norm_act_differentiable_backward(grad_y, x, mean, var, weight, bias, True, *ctx.options)
    else:
        dx, dweight, dbias = _norm_act_train_backward(grad_y, x, mean, var, weight, bias, *ctx.options)
    needs = ctx.needs_input_grad
    return (dx if needs[0] else None, _param_grad(dweight, weight, needs[1]), _param_grad(dbias, bias, needs[2]),
            None, None, None, None)


norm_act_train.register_autograd(_train_backward, setup_context=_train_setup_context)


def _apply_setup_context(ctx, inputs, output):
    x, mean, var, weight, bias, eps, activation, slope = inputs
    ctx.save_for_backward(x, mean, var, weight, bias)
    ctx.options = (eps, activation, slope)


def _apply_backward(ctx, grad_y):
    x, mean, var, weight, bias = ctx.saved_tensors
    needs = ctx.needs_input_grad
    if needs[1] or needs[2]:
        raise RuntimeError("genimg_fast.norm_act_apply: gradients with respect to mean and var are not supported "
                           "(they are treated as constants, like running statistics)")
    eps, activation, slope = ctx.options
    dx = dweight = dbias = None
    if torch.is_grad_enabled():  # a backward to differentiate (create_graph=True): torch ops
        dx, dw, db = _norm_act_differentiable_backward(grad_y, x, mean, var, weight, bias, False, *ctx.options)
        return (dx if needs[0] else None, None, None, _param_grad(dw, weight, needs[3]),
                _param_grad(db, bias, needs[4]), None, None, None)
    if needs[0]:
        dx = _norm_act_backward_apply(grad_y, x, mean, var, weight, bias, None, None, 1.0, eps, activation, slope)
    if (needs[3] and weight is not None) or (needs[4] and bias is not None):
        sum_dz, sum_dz_xhat = _norm_act_backward_reduce(grad_y, x, mean, var, weight, bias, eps, activation, slope)
        dw, db = _norm_act_math.param_grads(sum_dz, sum_dz_xhat)
        dweight, dbias = _param_grad(dw, weight, needs[3]), _param_grad(db, bias, needs[4])
    return dx, None, None, dweight, dbias, None, None, None


norm_act_apply.register_autograd(_apply_backward, setup_context=_apply_setup_context)


# ---- running statistics ----

# No op takes an optional mutable tensor: custom ops' in-place bookkeeping (version bumps) fails on
# one passed as None (torch 2.14) or left at its default (torch 2.11). Hence two ops.

@torch.library.custom_op("genimg_fast::update_running_stats_", mutates_args=("running_mean", "running_var"))
def update_running_stats_(running_mean: Tensor, running_var: Tensor, mean: Tensor, var: Tensor, count: int,
                          momentum: float) -> None:
    """running = (1 - momentum) * running + momentum * batch statistic (unbiased variance over
    `count` values per group); per-sample statistics are averaged over the batch first. Instance
    norm's rule (no batch counter).

    Args:
        running_mean, running_var (Tensor): (C,) float tensors on the statistics' device,
            updated in place.
        mean, var (Tensor): the batch's mean and biased variance, (C,) or (N, C), one shape.
        count (int): values per group behind them (for the unbiased correction count / (count - 1)).
        momentum (float): the new batch's weight.

    Returns:
        None.

    Raises:
        TypeError: a tensor argument that is not float32, float16, bfloat16 or float64.
        ValueError: mean not 1-D or 2-D, var not of mean's shape, or running statistics not of
            shape (C,) or not on the statistics' device.
    """
    _check_batch_stats(mean, var, "genimg_fast.update_running_stats_")
    _check_running(running_mean, running_var, None, mean.shape[-1], mean.device, "genimg_fast.update_running_stats_")
    _note_cuda(mean, "update_running_stats_")
    _norm_act_math.update_running_stats(running_mean, running_var, mean, var, count, momentum)


@update_running_stats_.register_fake
def _(running_mean, running_var, mean, var, count, momentum):
    _check_batch_stats(mean, var, "genimg_fast.update_running_stats_")
    _check_running(running_mean, running_var, None, mean.shape[-1], mean.device, "genimg_fast.update_running_stats_")


@torch.library.custom_op("genimg_fast::update_tracked_running_stats_",
                         mutates_args=("running_mean", "running_var", "num_batches_tracked"))
def update_tracked_running_stats_(running_mean: Tensor, running_var: Tensor, num_batches_tracked: Tensor,
                                  mean: Tensor, var: Tensor, count: int, momentum: float | None) -> None:
    """torch.nn.BatchNorm2d's rule: num_batches_tracked += 1, then the update above with factor
    momentum, or 1 / num_batches_tracked for momentum=None (a cumulative average, computed on the
    device: no host sync).

    Args:
        running_mean, running_var (Tensor): (C,) float tensors on the statistics' device,
            updated in place.
        num_batches_tracked (Tensor): one-element int64 counter, incremented in place.
        mean, var (Tensor): the batch's mean and biased variance, (C,) or (N, C), one shape.
        count (int): values per group behind them (for the unbiased correction count / (count - 1)).
        momentum (float or None): the new batch's weight, or None for the cumulative average.

    Returns:
        None.

    Raises:
        TypeError: a tensor argument that is not float32, float16, bfloat16 or float64.
        ValueError: mean not 1-D or 2-D, var not of mean's shape, or running statistics not of
            shape (C,) or not on the statistics' device, or num_batches_tracked not a one-element
            int64 tensor on that device.
    """
    op = "genimg_fast.update_tracked_running_stats_"
    _check_batch_stats(mean, var, op)
    _check_running(running_mean, running_var, num_batches_tracked, mean.shape[-1], mean.device, op)
    _note_cuda(mean, "update_tracked_running_stats_")
    _norm_act_math.update_running_stats(running_mean, running_var, mean, var, count, momentum, num_batches_tracked)


@update_tracked_running_stats_.register_fake
def _(running_mean, running_var, num_batches_tracked, mean, var, count, momentum):
    _check_batch_stats(mean, var, "genimg_fast.update_tracked_running_stats_")
    _check_running(running_mean, running_var, num_batches_tracked, mean.shape[-1], mean.device,
                   "genimg_fast.update_tracked_running_stats_")


@torch.library.custom_op("genimg_fast::batch_norm_act_train_",
                         mutates_args=("running_mean", "running_var", "num_batches_tracked"))
def batch_norm_act_train_(x: Tensor, weight: Tensor | None, bias: Tensor | None, running_mean: Tensor,
                          running_var: Tensor, num_batches_tracked: Tensor, momentum: float, eps: float,
                          activation: str, slope: float) -> tuple[Tensor, Tensor, Tensor]:
    """norm_act_train with batch statistics, then update_tracked_running_stats_ with `momentum`:
    BatchNorm2d's whole training forward in one op. On a GPU the update happens in the forward's
    own kernels (the pass that publishes a channel's statistics blends them into its running
    statistics), so a training step saves a launch and a dispatch. The same numbers as the two
    ops, bit for bit. Its autograd is C++ (CPU and CUDA tensors; torch refuses a Python formula
    for an op that mutates its inputs): without the kernels, a backward through it raises, so
    genimg_fast.nn.BatchNormAct2d uses it only when they are loaded and the two ops otherwise.

    Args:
        x (Tensor): (N, C, H, W); float32, float16, bfloat16 or float64.
        weight, bias (Tensor or None): (C,) per-channel scale and shift on x's device; None
            means 1 and 0.
        running_mean, running_var (Tensor): (C,), on x's device, updated in place.
        num_batches_tracked (Tensor): one-element int64 counter on x's device, incremented.
        momentum (float): the new batch's weight in the running statistics (not None).
        eps (float): added to the variance before its square root.
        activation (str): 'identity', 'relu' or 'leaky_relu'.
        slope (float): the leaky_relu negative slope (unused by the others).

    Returns:
        (Tensor, Tensor, Tensor): as norm_act_train: y and the batch mean and biased variance
        (C,). An x with no elements only counts the batch: y is empty, the statistics are NaN
        and the running statistics stay as they are.

    Raises:
        TypeError: a tensor argument that is not float32, float16, bfloat16 or float64.
        ValueError: x not 4-D, a tensor argument of the wrong shape or on another device, an
            unknown activation, a single value per channel, or num_batches_tracked not a
            one-element int64 tensor.
    """
    op = "genimg_fast.batch_norm_act_train_"
    _check_common(x, weight, bias, activation, op)
    check_training_count(x, False)
    _check_running(running_mean, running_var, num_batches_tracked, x.shape[1], x.device, op)
    _note_cuda(x, "batch_norm_act_train_")
    if x.numel() == 0:  # like torch: the batch is counted, the running statistics stay
        num_batches_tracked.add_(1)
        nan = torch.full((x.shape[1],), float("nan"), dtype=accumulation_dtype(x.dtype), device=x.device)
        return torch.empty_like(x), nan, nan.clone()
    mean, var = _norm_act_math.stats(x, False)
    y = _norm_act_math.apply(x, mean, var, weight, bias, eps, activation, slope)
    _norm_act_math.update_running_stats(running_mean, running_var, mean, var, x.numel() // x.shape[1], momentum,
                                        num_batches_tracked)
    return y, mean, var


@batch_norm_act_train_.register_fake
def _(x, weight, bias, running_mean, running_var, num_batches_tracked, momentum, eps, activation, slope):
    op = "genimg_fast.batch_norm_act_train_"
    _check_common(x, weight, bias, activation, op)
    check_training_count(x, False)
    _check_running(running_mean, running_var, num_batches_tracked, x.shape[1], x.device, op)
    acc = accumulation_dtype(x.dtype)
    return torch.empty_like(x), x.new_empty((x.shape[1],), dtype=acc), x.new_empty((x.shape[1],), dtype=acc)


def _check_batch_stats(mean, var, op) -> None:
    for name, t in (("mean", mean), ("var", var)):
        check_float_tensor(t, name, op)
    if mean.dim() not in (1, 2):
        raise ValueError(f"{op}: mean must have shape [C] or [N, C], got {list(mean.shape)}")
    if var.shape != mean.shape:
        raise ValueError(f"{op}: var must have the shape of mean {list(mean.shape)}, got {list(var.shape)}")
    if var.device != mean.device:
        raise ValueError(f"{op}: var must be on the device of mean ({mean.device}), got {var.device}")


def _check_running(running_mean, running_var, num_batches_tracked, channels, device, op) -> None:
    for name, t in (("running_mean", running_mean), ("running_var", running_var)):
        check_float_tensor(t, name, op)
        if t.shape != (channels,):
            raise ValueError(f"{op}: {name} must have shape [{channels}], got {list(t.shape)}")
        if t.device != device:
            raise ValueError(f"{op}: {name} must be on the same device as the statistics ({device}), got {t.device}")
    if num_batches_tracked is not None:
        if num_batches_tracked.dtype != torch.long or num_batches_tracked.numel() != 1:
            raise ValueError(f"{op}: num_batches_tracked must be a one-element int64 tensor, got "
                             f"{num_batches_tracked.dtype} of shape {list(num_batches_tracked.shape)}")
        if num_batches_tracked.device != device:
            raise ValueError(f"{op}: num_batches_tracked must be on the same device as the statistics ({device}), "
                             f"got {num_batches_tracked.device}")


# ---- double backward of the pieces synchronized batch norm is made of: refused ----

DOUBLE_BACKWARD_MESSAGE = (
    "genimg_fast: double backward through synchronized batch norm (BatchNormAct2d with sync=True across "
    "processes) is not supported: its backward all-reduces per-channel sums between the pieces of the fused "
    "backward, which are not differentiable. A gradient penalty such as WGAN-GP's differentiates the critic's "
    "input gradient: build the critic without synchronized batch norm (WGAN-GP recommends no batch norm).")


def _refuse_double_backward(ctx, *grads):
    raise RuntimeError(DOUBLE_BACKWARD_MESSAGE)


for _backward_op in (_norm_act_train_backward, _norm_act_backward_reduce, _norm_act_backward_apply):
    _backward_op.register_autograd(_refuse_double_backward, setup_context=lambda ctx, inputs, output: None)
