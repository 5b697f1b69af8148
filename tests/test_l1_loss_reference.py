"""genimg_fast.ops.l1_loss on CPU (the reference path): values and gradients against
torch.nn.functional.l1_loss, the op contract (opcheck, gradcheck, torch.compile), bad input."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from layouts import LAYOUTS, make_layout

from genimg_fast.ops import l1_loss
from genimg_fast.ops.l1_loss import l1_loss_op
# The fused op's contract, through its reference here (its kernels on a GPU): the public functions
# would otherwise take torch's own losses on CPU tensors (those: test_loss_fallback.py).
pytestmark = pytest.mark.usefixtures("fused_op_path")


def _pair(shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=dtype), torch.randn(shape, generator=g, dtype=dtype)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("weight", [1.0, 0.5, -3.0])
@pytest.mark.parametrize("shape", [(1,), (7,), (2, 3, 5, 7), (1, 3, 64, 64)])
def test_matches_torch_value_and_gradients(shape, weight, reduction):
    a, b = _pair(shape, torch.float64, seed=len(shape))
    a1, b1 = a.clone().requires_grad_(), b.clone().requires_grad_()
    a2, b2 = a.clone().requires_grad_(), b.clone().requires_grad_()
    ours = l1_loss(a1, b1, weight, reduction)
    theirs = weight * F.l1_loss(a2, b2, reduction=reduction)
    torch.testing.assert_close(ours, theirs)
    grad_out = torch.rand((), dtype=torch.float64) + 0.5
    ours.backward(grad_out)
    theirs.backward(grad_out)
    torch.testing.assert_close(a1.grad, a2.grad)
    torch.testing.assert_close(b1.grad, b2.grad)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 1e-2), (torch.float16, 1e-3)])
def test_low_precision_accumulates_in_fp32(dtype, tol):
    a, b = _pair((4, 3, 32, 32), dtype)
    a.requires_grad_()
    loss = l1_loss(a, b)
    assert loss.dtype == dtype
    exact = (a.double() - b.double()).abs().mean()
    torch.testing.assert_close(loss.double(), exact, rtol=tol, atol=0)
    loss.backward()
    assert a.grad.dtype == dtype
    expected = torch.sign(a.detach().double() - b.double()) / a.numel()
    torch.testing.assert_close(a.grad.double(), expected, rtol=tol, atol=0)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_any_layout_gives_the_same_answer(layout):
    a, b = _pair((2, 3, 8, 9), torch.float64)
    x = make_layout(a, layout).requires_grad_()
    y = make_layout(b, "transposed")
    loss = l1_loss(x, y, 2.0)
    torch.testing.assert_close(loss, 2.0 * F.l1_loss(a, b))
    loss.backward()
    torch.testing.assert_close(x.grad, 2.0 * torch.sign(a - b) / a.numel())


def test_expanded_target_is_read_through_its_strides():
    a, _ = _pair((4, 3, 5, 5), torch.float64)
    row = torch.randn(1, 3, 1, 5, dtype=torch.float64)
    target = row.expand(4, 3, 5, 5)
    a.requires_grad_()
    l1_loss(a, target).backward()
    torch.testing.assert_close(a.grad, torch.sign(a.detach() - target) / a.numel())


def test_gradient_keeps_the_input_memory_format():
    a, b = _pair((2, 3, 4, 5))
    x = a.to(memory_format=torch.channels_last).requires_grad_()
    l1_loss(x, b.to(memory_format=torch.channels_last)).backward()
    assert x.grad.is_contiguous(memory_format=torch.channels_last)


def test_empty_input_behaves_like_torch():
    a = torch.empty(0, 3, requires_grad=True)
    assert torch.isnan(l1_loss(a, torch.empty(0, 3)))
    total = l1_loss(a, torch.empty(0, 3), reduction="sum")
    assert total.item() == 0.0
    total.backward()
    assert a.grad.shape == (0, 3)


def test_nan_propagates_to_the_loss_like_torch():
    a, b = _pair((10,))
    a[3] = float("nan")
    a.requires_grad_()
    loss = l1_loss(a, b)
    assert torch.isnan(loss)
    loss.backward()
    a_ref = a.detach().clone().requires_grad_()
    F.l1_loss(a_ref, b).backward()
    torch.testing.assert_close(a.grad, a_ref.grad, equal_nan=True)


def test_no_gradient_work_when_none_is_needed():
    a, b = _pair((3, 4))
    _, stored = l1_loss_op(a, b, 1.0, "mean", False)
    assert stored.numel() == 0
    with torch.no_grad():
        loss = l1_loss(a.requires_grad_(), b)
    assert loss.grad_fn is None


def test_backward_without_a_stored_gradient_is_a_clear_error():
    a, b = _pair((3, 4))
    loss, _ = l1_loss_op(a.requires_grad_(), b, 1.0, "mean", False)
    with pytest.raises(RuntimeError, match="compute_grad=False"):
        loss.backward()


@pytest.mark.parametrize(
    "make_args,error,match",
    [
        (lambda a, b: (a, b[:2]), ValueError, "target must have the same shape"),
        (lambda a, b: (a, b.double()), TypeError, "target must have the same dtype"),
        (lambda a, b: (a.long(), b.long()), TypeError, "input must be float32"),
        (lambda a, b: (a, b.to("meta")), ValueError, "target must be on the same device"),
        (lambda a, b: (a.numpy(), b), TypeError, "input must be a torch.Tensor"),
    ],
)
def test_bad_tensors_raise_errors_naming_the_argument(make_args, error, match):
    a, b = _pair((3, 4))
    with pytest.raises(error, match=match):
        l1_loss(*make_args(a, b))


def test_bad_options_raise_errors_naming_the_argument():
    a, b = _pair((3, 4))
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum'.*'none'"):
        l1_loss(a, b, reduction="none")
    with pytest.raises(TypeError, match="weight must be a real number"):
        l1_loss(a, b, weight="2")
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum'"):
        l1_loss_op(a, b, 1.0, "avg", True)


def test_gradcheck_float64_reference():
    a, b = _pair((3, 5), torch.float64, seed=7)
    a.requires_grad_()
    b.requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: l1_loss(x, y, 0.7, "mean"), (a, b))
    assert torch.autograd.gradcheck(lambda x, y: l1_loss(x, y, 1.3, "sum"), (a, b))


@pytest.mark.parametrize("compute_grad", [True, False])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_opcheck(reduction, compute_grad):
    a, b = _pair((2, 3, 4, 5))
    a.requires_grad_(compute_grad)  # without a stored gradient there is nothing to backpropagate
    torch.library.opcheck(l1_loss_op, (a, b, 0.5, reduction, compute_grad))
    cl = a.detach().to(memory_format=torch.channels_last).requires_grad_(compute_grad)
    torch.library.opcheck(l1_loss_op, (cl, b, 1.0, reduction, compute_grad))


def test_torch_compile_fullgraph_matches_eager():
    a, b = _pair((4, 3, 8, 8))
    compiled = torch.compile(lambda x, y: l1_loss(x, y, 2.0), fullgraph=True, backend="aot_eager")
    x = a.clone().requires_grad_()
    loss = compiled(x, b)
    loss.backward()
    torch.testing.assert_close(loss, 2.0 * F.l1_loss(a, b))
    torch.testing.assert_close(x.grad, 2.0 * torch.sign(a - b) / a.numel())


def test_autocast_computes_in_fp32_like_torch():
    a, b = _pair((2, 3, 8, 8))
    x = a.to(torch.bfloat16).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = l1_loss(x, b)  # mixed bf16 input / fp32 target, as an autocast model produces
    assert loss.dtype == torch.float32
    loss.backward()
    assert x.grad.dtype == torch.bfloat16
    torch.testing.assert_close(loss, F.l1_loss(x.detach().float(), b))


PYTHON_FORMULA = """
import torch
from genimg_fast import _backend
from genimg_fast.ops import l1_loss
assert not _backend.kernels_loaded()
g = torch.Generator().manual_seed(3)
a, t = (torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2))
loss = l1_loss(a, t, 2.0)
assert "GeneratedBackward" in type(loss.grad_fn).__name__, type(loss.grad_fn)
for reduction in ("mean", "sum"):
    assert torch.autograd.gradcheck(lambda a, t: l1_loss(a, t, 0.5, reduction), (a, t))
print("ok")
"""


def test_python_formula_without_the_extension():
    """The Python autograd formula (where the extension is loaded, CPU and CUDA use the C++ one)."""
    import os
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", PYTHON_FORMULA], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "GENIMG_FAST_IMPL": "reference"})
    assert out.returncode == 0 and "ok" in out.stdout, out.stdout + out.stderr[-3000:]
