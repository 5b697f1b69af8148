"""The two autograd paths of the norm ops: the C++ functions the extension registers for CPU and
CUDA tensors, and the Python formulas of the custom ops (installs without the extension, other
devices). Both must give torch's gradients, refuse what they cannot differentiate, and leave
running statistics' version counters as in-place ops do."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from op_counter import OpCounter
from torch import nn

from genimg_fast._implementation import KERNELS, forced
from genimg_fast import _backend
from genimg_fast.nn import BatchNormAct2d, InstanceNormAct2d
from genimg_fast.ops import (batch_norm_act_train_, norm_act_apply, norm_act_stats, norm_act_train,
                             update_running_stats_, update_tracked_running_stats_)

needs_kernels = pytest.mark.skipif(not _backend.kernels_loaded(), reason="the extension is not loaded")


def _inputs(shape=(3, 4, 5, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 1.5 + 0.2
    c = shape[1]
    return x, torch.randn(c, generator=g, dtype=torch.float64), torch.randn(c, generator=g, dtype=torch.float64)


@pytest.fixture
def kernel_path():
    """The modules take their kernel path on CPU tensors too (whose kernel slot is the reference)."""
    with forced(KERNELS):
        yield


@needs_kernels
def test_cpu_training_step_uses_the_cpp_autograd(kernel_path):
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    assert "NormActTrainFunction" in BatchNormAct2d(3)(x).grad_fn.name()
    assert "NormActApplyFunction" in BatchNormAct2d(3).eval()(x).grad_fn.name()


PYTHON_FORMULAS = """
import torch
from genimg_fast import _backend
from genimg_fast.ops import norm_act_apply, norm_act_stats, norm_act_train
assert not _backend.kernels_loaded()
g = torch.Generator().manual_seed(3)
x, w, b = (torch.randn(s, generator=g, dtype=torch.float64, requires_grad=True) for s in ((3, 4, 5, 5), 4, 4))
y = norm_act_train(x, w, b, False, 1e-5, "leaky_relu", 0.2)[0]
assert "GeneratedBackward" in type(y.grad_fn).__name__, type(y.grad_fn)
for per_sample in (False, True):
    assert torch.autograd.gradcheck(lambda *a: norm_act_train(*a, per_sample, 1e-5, "leaky_relu", 0.2)[0], (x, w, b))
    mean, var = norm_act_stats(x.detach(), per_sample)
    assert torch.autograd.gradcheck(lambda x, w, b: norm_act_apply(x, mean, var + 0.5, w, b, 1e-5, "relu", 0.0),
                                    (x, w, b))
print("ok")
"""


def test_python_formulas_without_the_extension():
    """gradcheck of the Python autograd formulas in a process that never loads the extension
    (in this process, where it may be loaded, the C++ functions answer on CPU)."""
    env = {**os.environ, "GENIMG_FAST_IMPL": "reference"}
    out = subprocess.run([sys.executable, "-c", PYTHON_FORMULAS], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0 and "ok" in out.stdout, out.stdout + out.stderr[-3000:]


@pytest.mark.parametrize("per_sample", [False, True])
def test_gradcheck_train_and_apply(per_sample):
    x, w, b = (t.requires_grad_() for t in _inputs())
    assert torch.autograd.gradcheck(lambda *a: norm_act_train(*a, per_sample, 1e-5, "leaky_relu", 0.2)[0], (x, w, b))
    mean, var = norm_act_stats(x.detach(), per_sample)
    assert torch.autograd.gradcheck(lambda x, w, b: norm_act_apply(x, mean, var + 0.5, w, b, 1e-5, "relu", 0.0),
                                    (x, w, b))


@pytest.mark.parametrize("needs", [(True, False, False), (False, True, False), (False, False, True),
                                   (False, True, True)])
def test_only_the_requested_gradients(needs):
    """Any subset of x, weight, bias may require grad (the autograd edges shift with it)."""
    base = _inputs()
    ins = [t.clone().requires_grad_(n) for t, n in zip(base, needs)]
    refs = [t.clone().requires_grad_(n) for t, n in zip(base, needs)]
    y = norm_act_train(*ins, False, 1e-5, "relu", 0.0)[0]
    y_ref = torch.relu(nn.functional.batch_norm(refs[0], None, None, refs[1], refs[2], True, 0.0, 1e-5))
    gy = torch.randn_like(y)
    wanted = [t for t in ins if t.requires_grad]
    got = torch.autograd.grad(y, wanted, gy)
    want = torch.autograd.grad(y_ref, [t for t in refs if t.requires_grad], gy)
    for a, e in zip(got, want):
        torch.testing.assert_close(a, e)


def test_parameters_without_weight_or_bias():
    x, _, b = _inputs()
    x.requires_grad_()
    b.requires_grad_()
    y = norm_act_train(x, None, b, True, 1e-5, "relu", 0.0)[0]
    y_ref = torch.relu(nn.functional.instance_norm(x, eps=1e-5) + b.reshape(1, -1, 1, 1))
    gy = torch.randn_like(y)
    for a, e in zip(torch.autograd.grad(y, [x, b], gy), torch.autograd.grad(y_ref, [x, b], gy)):
        torch.testing.assert_close(a, e)


@pytest.mark.parametrize("per_sample", [False, True])
def test_double_backward_equals_torchs(per_sample):
    """A recorded backward (create_graph=True) goes through the differentiable composite: its
    second derivatives are torch's batch norm / instance norm + leaky_relu's."""
    x, w, b = (t.requires_grad_() for t in _inputs())
    y = norm_act_train(x, w, b, per_sample, 1e-5, "leaky_relu", 0.2)[0]
    norm = torch.nn.functional.instance_norm if per_sample else torch.nn.functional.batch_norm
    y_ref = torch.nn.functional.leaky_relu(norm(x, None, None, w, b, True, 0.1, 1e-5), 0.2)
    second = []
    for out in (y, y_ref):
        (gx,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
        second.append(torch.autograd.grad(gx.square().sum(), (x, w, b)))
    for got, expected in zip(*second):
        torch.testing.assert_close(got, expected)


def test_apply_refuses_gradients_for_the_statistics():
    x, w, b = _inputs()
    mean, var = norm_act_stats(x, False)
    y = norm_act_apply(x.requires_grad_(), mean.requires_grad_(), var, w, b, 1e-5, "relu", 0.0)
    with pytest.raises(RuntimeError, match="gradients with respect to mean and var are not supported"):
        y.sum().backward()


@needs_kernels
@pytest.mark.parametrize("momentum,ops", [(0.1, ["genimg_fast.batch_norm_act_train_.default"]),
                                          (None, ["genimg_fast.norm_act_train.default",
                                                  "genimg_fast.update_tracked_running_stats_.default"])])
def test_batch_norm_training_forward_is_one_op_with_a_momentum(momentum, ops, kernel_path):
    """With the kernels, BatchNormAct2d's training forward and its running-statistics update are
    one op (one dispatch; on a GPU no launch of its own); momentum=None keeps the separate update."""
    module = BatchNormAct2d(4, momentum=momentum, dtype=torch.float64)
    x, _, _ = _inputs()
    x.requires_grad_()
    with OpCounter() as counter:
        y = module(x)
    assert counter.ops == ops
    assert "NormActTrainFunction" in y.grad_fn.name()


@needs_kernels
def test_forward_with_update_bumps_versions_and_refuses_grad_on_buffers():
    x, w, b = _inputs()
    rm, rv, tracked = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64), torch.tensor(0)
    versions = (rm._version, rv._version, tracked._version)
    batch_norm_act_train_(x, w, b, rm, rv, tracked, 0.1, 1e-5, "relu", 0.0)
    assert all(t._version > v for t, v in zip((rm, rv, tracked), versions)) and tracked.item() == 1
    with pytest.raises(RuntimeError, match="running statistics are buffers"):
        batch_norm_act_train_(x, w, b, rm.clone().requires_grad_(), rv, tracked, 0.1, 1e-5, "relu", 0.0)


@needs_kernels  # the C++ update refuses at once; the Python op would only fail at backward
def test_running_stats_update_bumps_versions_and_refuses_grad():
    x, _, _ = _inputs()
    _, mean, var = norm_act_train(x, None, None, False, 1e-5, "identity", 0.0)
    rm, rv, tracked = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64), torch.tensor(0)
    versions = (rm._version, rv._version, tracked._version)
    update_tracked_running_stats_(rm, rv, tracked, mean, var, 75, None)
    assert all(t._version > v for t, v in zip((rm, rv, tracked), versions))
    with pytest.raises(RuntimeError):
        update_running_stats_(rm, rv, mean.clone().requires_grad_(), var, 75, 0.1)


@pytest.mark.parametrize("cls,torch_cls", [(BatchNormAct2d, nn.BatchNorm2d), (InstanceNormAct2d, nn.InstanceNorm2d)])
def test_module_step_gradients_match_torch(cls, torch_cls):
    ref = torch_cls(4, affine=True, dtype=torch.float64)
    fused = cls.from_norm(ref, activation="leaky_relu", negative_slope=0.2)
    x, _, _ = _inputs()
    x.requires_grad_()
    y, y_ref = fused(x), nn.functional.leaky_relu(ref(x), 0.2)
    gy = torch.randn_like(y)
    params = [x, ref.weight, ref.bias]
    for a, e in zip(torch.autograd.grad(y, params, gy), torch.autograd.grad(y_ref, params, gy)):
        torch.testing.assert_close(a, e)


def test_backward_after_the_running_stats_changed_is_refused(kernel_path):
    """Eval mode saves the running statistics for backward; a training step that updates them in
    place before that backward (with the kernels: inside batch_norm_act_train_) makes it fail
    instead of using the new values. (torch's own batch norm, the fallback, does not check.)"""
    module = BatchNormAct2d(4, dtype=torch.float64)
    x, _, _ = _inputs()
    x.requires_grad_()
    y = module.eval()(x)
    module.train()(x.detach())
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


@needs_kernels  # the C++ autograd's set_materialize_grads(False); custom_op's Python autograd zero-fills
def test_backward_allocates_no_zero_gradients_for_unused_outputs():
    """mean and var (and a loss's stored gradients) get no gradient: nothing zero-filled for them."""
    from torch.profiler import profile

    from genimg_fast.ops import LossTerm, loss_terms
    x, w, b = (t.requires_grad_() for t in _inputs())
    y = norm_act_train(x, w, b, False, 1e-5, "relu", 0.0)[0]
    total, _ = loss_terms([LossTerm(y, "mse", 0.0), LossTerm(x, "l1", 1.0)])
    with profile() as prof:
        total.backward()
    zeros = [e for e in prof.events() if e.name in ("aten::zeros", "aten::zeros_like")]
    assert len(zeros) <= 1, [e.name for e in zeros]  # at most the per-term gradient vector (one value a term)


def test_update_checks_the_batch_statistics():
    rm, rv = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    mean = torch.zeros(4, dtype=torch.float64)
    with pytest.raises(ValueError, match="var must have the shape of mean"):
        update_running_stats_(rm, rv, mean, torch.ones(1, dtype=torch.float64), 10, 0.1)
    with pytest.raises(ValueError, match=r"mean must have shape \[C\] or \[N, C\]"):
        update_running_stats_(rm, rv, mean.reshape(1, 1, 4), mean.reshape(1, 1, 4), 10, 0.1)
