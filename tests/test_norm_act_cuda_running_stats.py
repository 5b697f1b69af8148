"""The CUDA running-statistics update kernel (the running_stats kernel path) against the
float64 reference: instance norm's rule and BatchNorm2d's with its batch counter, and the buffers
a training forward cannot update in its own pass. (The forward that updates them in its own pass
is tested with each training path.)"""
from __future__ import annotations

import pytest
import torch
from norm_act_cuda_helpers import make

from genimg_fast.ops import batch_norm_act_train_, norm_act_train, update_running_stats_, update_tracked_running_stats_
from genimg_fast.ops import _norm_act_math as ref

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("per_sample", [False, True])
def test_running_stats_update(cuda_kernels, per_sample):
    x, _, _, _ = make((6, 10, 5, 5), torch.float32, "contiguous", 6)
    _, mean, var = norm_act_train(x, None, None, per_sample, 1e-5, "identity", 0.0)
    rm, rv = torch.randn(10, device="cuda"), torch.rand(10, device="cuda") + 0.5
    rm_ref, rv_ref = rm.cpu().double(), rv.cpu().double()
    count = 25 if per_sample else 150
    update_running_stats_(rm, rv, mean, var, count, 0.3)
    ref.update_running_stats(rm_ref, rv_ref, mean.cpu().double(), var.cpu().double(), count, 0.3)
    torch.testing.assert_close(rm.double().cpu(), rm_ref, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(rv.double().cpu(), rv_ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("buffers", ["float32", "float16"])  # fp16 buffers (model.half()) take the tensor-math path
def test_running_stats_with_batch_counter(cuda_kernels, momentum, buffers):
    dtype = getattr(torch, buffers)
    rm, rv = torch.randn(10, device="cuda").to(dtype), (torch.rand(10, device="cuda") + 0.5).to(dtype)
    tracked = torch.tensor(3, device="cuda")
    rm_ref, rv_ref, tracked_ref = rm.cpu().double(), rv.cpu().double(), tracked.clone().cpu()
    for seed in (7, 8):
        x, _, _, _ = make((6, 10, 5, 5), torch.float32, "contiguous", seed)
        _, mean, var = norm_act_train(x, None, None, False, 1e-5, "identity", 0.0)
        update_tracked_running_stats_(rm, rv, tracked, mean, var, 150, momentum)
        ref.update_running_stats(rm_ref, rv_ref, mean.cpu().double(), var.cpu().double(), 150, momentum, tracked_ref)
    assert tracked.item() == tracked_ref.item() == 5
    tol = 1e-6 if buffers == "float32" else 2e-3
    torch.testing.assert_close(rm.double().cpu(), rm_ref, rtol=tol, atol=tol)
    torch.testing.assert_close(rv.double().cpu(), rv_ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("buffers", ["float16", "view"])
def test_forward_that_updates_running_stats_of_other_buffers(cuda_kernels, buffers):
    """Buffers the kernels cannot write (model.half()'s fp16, strided views) are updated after them."""
    x, w, b, _ = make((6, 10, 5, 5), torch.float32, "contiguous", 22)
    if buffers == "float16":
        rm, rv = torch.randn(10, device="cuda").half(), (torch.rand(10, device="cuda") + 0.5).half()
    else:
        rm, rv = torch.randn(20, device="cuda")[::2], (torch.rand(20, device="cuda") + 0.5)[::2]
    tracked = torch.tensor(0, device="cuda")
    # the expected values are updated in buffers of the same kind: a clone of a strided view is
    # contiguous, which the update kernel writes (rounding its blend otherwise than tensor math)
    rm_ref, rv_ref = (t.clone() if buffers == "float16" else t._base.clone()[::2] for t in (rm, rv))
    tracked_ref = tracked.clone()
    assert rm_ref.is_contiguous() == rm.is_contiguous()
    _, mean, var = batch_norm_act_train_(x, w, b, rm, rv, tracked, 0.1, 1e-5, "relu", 0.0)
    update_tracked_running_stats_(rm_ref, rv_ref, tracked_ref, mean, var, 150, 0.1)
    assert torch.equal(rm, rm_ref) and torch.equal(rv, rv_ref) and tracked.item() == tracked_ref.item() == 1
