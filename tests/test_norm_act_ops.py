"""The norm_act ops on the reference path: agreement with torch's batch_norm / instance_norm
+ activation, gradients (float64 gradcheck), the op contract (opcheck), bad input."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genimg_fast import _backend
from genimg_fast.nn import BatchNormAct2d

from genimg_fast.ops import (_norm_act_backward_apply, _norm_act_backward_reduce, _norm_act_train_backward,
                             batch_norm_act_train_, norm_act_apply, norm_act_stats, norm_act_train,
                             update_running_stats_, update_tracked_running_stats_)

ACTIVATIONS = [("identity", 0.0), ("relu", 0.0), ("leaky_relu", 0.2)]


def torch_activation(y, activation, slope):
    return {"identity": y, "relu": F.relu(y), "leaky_relu": F.leaky_relu(y, slope)}[activation]


def _inputs(shape=(4, 5, 6, 7), dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype) * 2 + 0.5
    c = shape[1]
    return x, torch.randn(c, generator=g, dtype=dtype), torch.randn(c, generator=g, dtype=dtype)


@pytest.mark.parametrize("activation,slope", ACTIVATIONS)
@pytest.mark.parametrize("per_sample", [False, True])
def test_train_matches_torch_forward_and_backward(per_sample, activation, slope):
    x, w, b = _inputs()
    ours_in = [t.clone().requires_grad_() for t in (x, w, b)]
    theirs_in = [t.clone().requires_grad_() for t in (x, w, b)]
    y, mean, var = norm_act_train(*ours_in, per_sample, 1e-5, activation, slope)
    norm = F.instance_norm if per_sample else F.batch_norm
    expected = torch_activation(norm(theirs_in[0], None, None, theirs_in[1], theirs_in[2], True, 0.1, 1e-5),
                                activation, slope)
    torch.testing.assert_close(y, expected)
    dims = (2, 3) if per_sample else (0, 2, 3)
    torch.testing.assert_close(mean, x.mean(dims))
    torch.testing.assert_close(var, x.var(dims, unbiased=False))
    g = torch.randn_like(y)
    for ours, theirs in zip(torch.autograd.grad(y, ours_in, g), torch.autograd.grad(expected, theirs_in, g)):
        torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("activation,slope", ACTIVATIONS)
def test_apply_with_running_stats_matches_torch_eval(activation, slope):
    x, w, b = _inputs()
    rm, rv = torch.randn(5, dtype=torch.float64), torch.rand(5, dtype=torch.float64) + 0.5
    ours_in = [t.clone().requires_grad_() for t in (x, w, b)]
    theirs_in = [t.clone().requires_grad_() for t in (x, w, b)]
    y = norm_act_apply(ours_in[0], rm, rv, ours_in[1], ours_in[2], 1e-5, activation, slope)
    expected = torch_activation(F.batch_norm(theirs_in[0], rm, rv, theirs_in[1], theirs_in[2], False, 0.1, 1e-5),
                                activation, slope)
    torch.testing.assert_close(y, expected)
    g = torch.randn_like(y)
    for ours, theirs in zip(torch.autograd.grad(y, ours_in, g), torch.autograd.grad(expected, theirs_in, g)):
        torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("per_sample", [False, True])
def test_pieces_compose_to_the_fused_op(per_sample):
    x, w, b = _inputs(seed=3)
    y, mean, var = norm_act_train(x, w, b, per_sample, 1e-5, "leaky_relu", 0.1)
    mean2, var2 = norm_act_stats(x, per_sample)
    torch.testing.assert_close(mean, mean2)
    torch.testing.assert_close(y, norm_act_apply(x, mean2, var2, w, b, 1e-5, "leaky_relu", 0.1))
    gy = torch.randn_like(x)
    dx, dw, db = _norm_act_train_backward(gy, x, mean, var, w, b, 1e-5, "leaky_relu", 0.1)
    sum_dz, sum_dz_xhat = _norm_act_backward_reduce(gy, x, mean, var, w, b, 1e-5, "leaky_relu", 0.1)
    count = x.shape[2] * x.shape[3] * (1 if per_sample else x.shape[0])
    dx2 = _norm_act_backward_apply(gy, x, mean, var, w, b, sum_dz, sum_dz_xhat, float(count), 1e-5, "leaky_relu", 0.1)
    torch.testing.assert_close(dx, dx2)
    torch.testing.assert_close(dw, sum_dz_xhat.sum(0) if per_sample else sum_dz_xhat)
    torch.testing.assert_close(db, sum_dz.sum(0) if per_sample else sum_dz)


def test_gradcheck_float64():
    x, w, b = _inputs((3, 2, 3, 4), seed=5)
    args = [t.requires_grad_() for t in (x, w, b)]
    for per_sample in (False, True):
        assert torch.autograd.gradcheck(lambda *a: norm_act_train(*a, per_sample, 1e-5, "leaky_relu", 0.3)[0], args)
    rm, rv = torch.randn(2, dtype=torch.float64), torch.rand(2, dtype=torch.float64) + 0.5
    assert torch.autograd.gradcheck(lambda *a: norm_act_apply(a[0], rm, rv, a[1], a[2], 1e-5, "relu", 0.0), args)


def test_update_running_stats_matches_torch():
    x, _, _ = _inputs((6, 4, 3, 3), seed=9)
    rm, rv = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    ref_rm, ref_rv = rm.clone(), rv.clone()
    for momentum in (0.1, 0.5):
        _, mean, var = norm_act_train(x, None, None, False, 1e-5, "identity", 0.0)
        update_running_stats_(rm, rv, mean, var, 6 * 9, momentum)
        F.batch_norm(x, ref_rm, ref_rv, None, None, True, momentum, 1e-5)
        torch.testing.assert_close(rm, ref_rm)
        torch.testing.assert_close(rv, ref_rv)
    # per-sample statistics: averaged over the batch, like instance_norm with running stats
    _, mean, var = norm_act_train(x, None, None, True, 1e-5, "identity", 0.0)
    update_running_stats_(rm, rv, mean, var, 9, 0.1)
    F.instance_norm(x, ref_rm, ref_rv, None, None, True, 0.1, 1e-5)
    torch.testing.assert_close(rm, ref_rm)
    torch.testing.assert_close(rv, ref_rv)


def test_update_running_stats_counts_batches_and_averages_cumulatively():
    """momentum=None: num_batches_tracked += 1, then factor 1 / num_batches_tracked, like
    nn.BatchNorm2d(momentum=None); with a fixed momentum the counter still counts."""
    ref = torch.nn.BatchNorm2d(4, momentum=None, dtype=torch.float64)
    rm, rv, tracked = ref.running_mean.clone(), ref.running_var.clone(), ref.num_batches_tracked.clone()
    for step in range(3):
        x, _, _ = _inputs((6, 4, 3, 3), seed=20 + step)
        ref(x)
        _, mean, var = norm_act_train(x, None, None, False, 1e-5, "identity", 0.0)
        update_tracked_running_stats_(rm, rv, tracked, mean, var, 6 * 9, None)
        torch.testing.assert_close(rm, ref.running_mean)
        torch.testing.assert_close(rv, ref.running_var)
        assert tracked.item() == ref.num_batches_tracked.item() == step + 1
    update_tracked_running_stats_(rm, rv, tracked, mean, var, 6 * 9, 0.1)
    assert tracked.item() == 4


@pytest.mark.parametrize("activation,slope", ACTIVATIONS)
def test_batch_norm_forward_with_its_update_is_the_two_ops(activation, slope):
    """batch_norm_act_train_ = norm_act_train + update_tracked_running_stats_ (momentum given)."""
    x, w, b = _inputs()
    running = [torch.randn(5, dtype=torch.float64), torch.rand(5, dtype=torch.float64) + 0.5, torch.tensor(7)]
    expected = [t.clone() for t in running]
    y, mean, var = batch_norm_act_train_(x, w, b, *running, 0.2, 1e-5, activation, slope)
    y_p, mean_p, var_p = norm_act_train(x, w, b, False, 1e-5, activation, slope)
    update_tracked_running_stats_(*expected, mean_p, var_p, x.numel() // 5, 0.2)
    for got, want in zip((y, mean, var, *running), (y_p, mean_p, var_p, *expected)):
        assert torch.equal(got, want)
    empty = x[:0]
    y0, mean0, _ = batch_norm_act_train_(empty, w, b, *running, 0.2, 1e-5, activation, slope)
    assert y0.shape == empty.shape and torch.isnan(mean0).all() and running[2].item() == 9  # counted, like torch
    assert torch.equal(running[0], expected[0])


def test_low_precision_input_keeps_fp32_stats_and_its_dtype():
    x, w, b = _inputs((4, 3, 8, 8), torch.float32)
    y, mean, var = norm_act_train(x.to(torch.bfloat16), w, b, False, 1e-5, "relu", 0.0)
    assert y.dtype == torch.bfloat16 and mean.dtype == torch.float32 and var.dtype == torch.float32
    expected = F.relu(F.batch_norm(x.to(torch.bfloat16).float(), None, None, w, b, True, 0.1, 1e-5))
    torch.testing.assert_close(y.float(), expected, rtol=1e-2, atol=1e-2)


def test_channels_last_in_channels_last_out():
    x, w, b = _inputs((2, 3, 4, 5))
    x = x.to(memory_format=torch.channels_last).requires_grad_()
    y, _, _ = norm_act_train(x, w, b, False, 1e-5, "relu", 0.0)
    assert y.is_contiguous(memory_format=torch.channels_last)
    (dx,) = torch.autograd.grad(y, x, torch.randn_like(y))
    assert dx.is_contiguous(memory_format=torch.channels_last)


def test_empty_batch_gives_empty_output():
    x = torch.empty(0, 3, 4, 4)
    y, mean, var = norm_act_train(x, None, None, False, 1e-5, "relu", 0.0)
    assert y.shape == x.shape and mean.shape == (3,)


def test_nan_propagates_within_its_channel():
    x, w, b = _inputs((2, 3, 4, 4), torch.float32)
    x[0, 1, 2, 2] = float("nan")
    y, _, _ = norm_act_train(x, w, b, False, 1e-5, "identity", 0.0)
    assert torch.isnan(y[:, 1]).all() and not torch.isnan(y[:, [0, 2]]).any()


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda x, w, b: norm_act_train(x[0], w, b, False, 1e-5, "relu", 0.0), ValueError, "x must be 4-D"),
        (lambda x, w, b: norm_act_train(x, w[:2], b, False, 1e-5, "relu", 0.0), ValueError, "weight must have shape"),
        (lambda x, w, b: norm_act_train(x.long(), None, None, False, 1e-5, "relu", 0.0), TypeError, "x must be float"),
        (lambda x, w, b: norm_act_train(x, w, b, False, 1e-5, "gelu", 0.0), ValueError, "activation must be one of"),
        (lambda x, w, b: norm_act_train(x[:1, :, :1, :1], w, b, False, 1e-5, "relu", 0.0), ValueError,
         "Expected more than 1 value per channel when training"),
        (lambda x, w, b: norm_act_train(x[:, :, :1, :1], w, b, True, 1e-5, "relu", 0.0), ValueError,
         "Expected more than 1 spatial element when training"),
        (lambda x, w, b: norm_act_apply(x, w[:3], b, w, b, 1e-5, "relu", 0.0), ValueError, "mean must have shape"),
        (lambda x, w, b: norm_act_train(x, w.to("meta"), b, False, 1e-5, "relu", 0.0), ValueError,
         "weight must be on the same device"),
        (lambda x, w, b: batch_norm_act_train_(x, w, b, w[:2].clone(), w.clone(), torch.tensor(0), 0.1, 1e-5, "relu",
                                               0.0), ValueError, "running_mean must have shape"),
        (lambda x, w, b: batch_norm_act_train_(x, w, b, w.clone(), w.clone(), torch.tensor(0.0), 0.1, 1e-5, "relu",
                                               0.0), ValueError, "num_batches_tracked must be a one-element int64"),
        (lambda x, w, b: batch_norm_act_train_(x[:1, :, :1, :1], w, b, w.clone(), w.clone(), torch.tensor(0), 0.1,
                                               1e-5, "relu", 0.0), ValueError,
         "Expected more than 1 value per channel when training"),
    ],
)
def test_bad_input_raises_errors_naming_the_argument(call, error, match):
    x, w, b = _inputs()
    with pytest.raises(error, match=match):
        call(x, w, b)


@pytest.mark.parametrize("stats_dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_opcheck_backward_ops_with_statistics_of_another_type(stats_dtype):
    """Eval mode hands the running statistics of a .half()/.bfloat16() model to the backward ops:
    their outputs are in the input's accumulation type all the same (the fake impls too, or
    torch.compile breaks)."""
    x = torch.randn(2, 3, 4, 5, dtype=torch.bfloat16)
    mean, var = torch.randn(3, dtype=stats_dtype), torch.rand(3, dtype=stats_dtype) + 0.5
    gy = torch.randn_like(x)
    torch.library.opcheck(_norm_act_backward_reduce, (gy, x, mean, var, None, None, 1e-5, "relu", 0.0))
    sums = _norm_act_backward_reduce(gy, x, mean, var, None, None, 1e-5, "relu", 0.0)
    assert all(s.dtype == torch.float32 for s in sums)
    torch.library.opcheck(_norm_act_backward_apply, (gy, x, mean, var, None, None, *sums, 60.0, 1e-5, "relu", 0.0))


def test_compiled_eval_backward_of_a_bfloat16_module():
    norm = BatchNormAct2d(8).to(torch.bfloat16).eval()
    x = torch.randn(4, 8, 6, 6, dtype=torch.bfloat16, requires_grad=True)
    norm(x).float().sum().backward()
    expected, x.grad = x.grad, None
    with torch._inductor.config.patch(force_disable_caches=True):  # a cached graph would keep an old fake's dtypes
        torch.compile(norm)(x).float().sum().backward()
    torch.testing.assert_close(x.grad, expected)


@pytest.mark.parametrize("per_sample", [False, True])
def test_opcheck(per_sample):
    x, w, b = _inputs((2, 3, 4, 5), torch.float32)
    args = (x.requires_grad_(), w.requires_grad_(), b.requires_grad_())
    torch.library.opcheck(norm_act_train, (*args, per_sample, 1e-5, "leaky_relu", 0.2))
    mean, var = norm_act_stats(x.detach(), per_sample)
    torch.library.opcheck(norm_act_stats, (x.detach(), per_sample))
    torch.library.opcheck(norm_act_apply, (x, mean, var, w, b, 1e-5, "relu", 0.0))
    gy = torch.randn_like(x)
    torch.library.opcheck(_norm_act_train_backward, (gy, x.detach(), mean, var, w.detach(), b.detach(), 1e-5,
                                                    "relu", 0.0))
    torch.library.opcheck(_norm_act_backward_reduce, (gy, x.detach(), mean, var, None, None, 1e-5, "identity", 0.0))
    torch.library.opcheck(_norm_act_backward_apply, (gy, x.detach(), mean, var, None, None, None, None, 1.0, 1e-5,
                                                    "identity", 0.0))
    torch.library.opcheck(update_running_stats_, (torch.zeros(3), torch.ones(3), mean, var, 20, 0.1))
    torch.library.opcheck(update_tracked_running_stats_, (torch.zeros(3), torch.ones(3), torch.tensor(2), mean, var,
                                                          20, None))
    if not per_sample and _backend.kernels_loaded():  # its autograd is C++ only
        torch.library.opcheck(batch_norm_act_train_, (*args, torch.zeros(3), torch.ones(3), torch.tensor(2), 0.1,
                                                      1e-5, "leaky_relu", 0.2))


@pytest.mark.parametrize("op", ["reduce", "apply", "train_backward"])
def test_a_grad_y_of_another_dtype_is_refused(op):
    """The kernels read grad_y at x's precision (autograd always passes y's dtype, which is x's):
    a float32 grad_y for a bfloat16 x would be rounded there and not in the reference."""
    x = torch.randn(2, 3, 4, 5, dtype=torch.bfloat16)
    mean, var = norm_act_stats(x, False)
    gy = torch.randn(2, 3, 4, 5)
    call = {"reduce": lambda: _norm_act_backward_reduce(gy, x, mean, var, None, None, 1e-5, "relu", 0.0),
            "apply": lambda: _norm_act_backward_apply(gy, x, mean, var, None, None, None, None, 1.0, 1e-5, "relu", 0.0),
            "train_backward": lambda: _norm_act_train_backward(gy, x, mean, var, None, None, 1e-5, "relu", 0.0)}[op]
    with pytest.raises(TypeError, match=r"grad_y must have the dtype of x \(torch.bfloat16\), got torch.float32"):
        call()
