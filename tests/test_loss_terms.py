"""genimg_fast.ops.loss_terms on the reference path: every kind against torch's own loss,
gradients (float64 gradcheck, grad_output != 1, gradients through the per-term values), the op
contract (opcheck), torch.compile, autocast and bad input."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genimg_fast.ops import LossTerm, _scale_term_stored_grads, loss_terms
from genimg_fast.ops.loss_terms import loss_terms_op
# The fused op's contract, through its reference here (its kernels on a GPU): the public functions
# would otherwise take torch's own losses on CPU tensors (those: test_loss_fallback.py).
pytestmark = pytest.mark.usefixtures("fused_op_path")


def _rand(*shape, seed=0, dtype=torch.float64, low=None, high=None):
    g = torch.Generator().manual_seed(seed)
    if low is not None:
        return torch.rand(shape, generator=g, dtype=dtype) * (high - low) + low
    return torch.randn(shape, generator=g, dtype=dtype) * 1.5


# (kind, target: "tensor" | number | None, torch's value of weight * loss)
CASES = [
    ("l1", "tensor", lambda a, b, r: F.l1_loss(a, b, reduction=r)),
    ("mse", "tensor", lambda a, b, r: F.mse_loss(a, b, reduction=r)),
    ("mse", 1.0, lambda a, b, r: F.mse_loss(a, torch.full_like(a, b), reduction=r)),
    ("bce", "tensor", lambda a, b, r: F.binary_cross_entropy(a, b, reduction=r)),
    ("bce", 0.0, lambda a, b, r: F.binary_cross_entropy(a, torch.full_like(a, b), reduction=r)),
    ("bce_logits", 1.0, lambda a, b, r: F.binary_cross_entropy_with_logits(a, torch.full_like(a, b), reduction=r)),
    ("bce_logits", "tensor", lambda a, b, r: F.binary_cross_entropy_with_logits(a, b, reduction=r)),
    ("linear", None, lambda a, b, r: a.mean() if r == "mean" else a.sum()),
    ("half_square", None, lambda a, b, r: (0.5 * a * a).mean() if r == "mean" else (0.5 * a * a).sum()),
    ("kl_logvar", None, lambda a, b, r: (0.5 * (a.exp() - 1 - a)).mean() if r == "mean"
     else (0.5 * (a.exp() - 1 - a)).sum()),
]


def _case_inputs(kind, target, shape=(2, 3, 5, 7), seed=0):
    probabilities = kind == "bce"
    a = _rand(*shape, seed=seed, low=0.02, high=0.98) if probabilities else _rand(*shape, seed=seed)
    if target == "tensor":
        b = _rand(*shape, seed=seed + 1, low=0.0, high=1.0) if kind.startswith("bce") else _rand(*shape, seed=seed + 1)
    else:
        b = target
    return a, b


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("kind,target,torch_loss", CASES)
def test_each_kind_matches_torch(kind, target, torch_loss, reduction):
    a, b = _case_inputs(kind, target)
    a.requires_grad_()
    ours, values = loss_terms([LossTerm(a, kind, b, 0.7, reduction)])
    theirs = 0.7 * torch_loss(a, b, reduction)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(values, theirs.reshape(1))
    g = _rand(seed=5)  # grad_output != 1
    torch.testing.assert_close(torch.autograd.grad(ours, a, g)[0], torch.autograd.grad(theirs, a, g)[0])


def test_bce_clamps_like_torch_at_zero_and_one():
    a = torch.tensor([0.0, 1.0, 0.5, 1e-30], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([1.0, 0.0, 0.5, 1.0], dtype=torch.float64)
    ours = loss_terms([LossTerm(a, "bce", b)])[0]
    theirs = F.binary_cross_entropy(a, b)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(torch.autograd.grad(ours, a)[0], torch.autograd.grad(theirs, a)[0])


def test_bce_logits_is_stable_for_large_logits():
    a = torch.tensor([-1e4, -50.0, 50.0, 1e4], requires_grad=True)
    ours = loss_terms([LossTerm(a, "bce_logits", 1.0)])[0]
    theirs = F.binary_cross_entropy_with_logits(a, torch.ones_like(a))
    assert torch.isfinite(ours)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(torch.autograd.grad(ours, a)[0], torch.autograd.grad(theirs, a)[0])


def test_nan_and_inf_behave_like_torch():
    a = torch.tensor([1.0, float("nan"), 2.0], requires_grad=True)
    b = torch.tensor([0.0, 1.0, float("inf")])
    for kind, torch_loss in (("l1", F.l1_loss), ("mse", F.mse_loss)):
        ours = loss_terms([LossTerm(a, kind, b)])[0]
        theirs = torch_loss(a, b)
        assert torch.isnan(ours) and torch.isnan(theirs) or torch.equal(ours, theirs)
        got, want = torch.autograd.grad(ours, a)[0], torch.autograd.grad(theirs, a)[0]
        torch.testing.assert_close(got, want, equal_nan=True)


def test_several_terms_are_their_sum_and_the_gradients_add_up():
    d = _rand(1, 1, 30, 30, seed=1).requires_grad_()
    img, real = _rand(1, 3, 8, 8, seed=2).requires_grad_(), _rand(1, 3, 8, 8, seed=3)
    total, values = loss_terms([LossTerm(d, "mse", 1.0), LossTerm(img, "l1", real, 10.0),
                                LossTerm(d, "bce_logits", 0.0, 0.5), LossTerm(d, "linear", None, -1.0)])
    ref = [F.mse_loss(d, torch.ones_like(d)), 10 * F.l1_loss(img, real),
           0.5 * F.binary_cross_entropy_with_logits(d, torch.zeros_like(d)), -d.mean()]
    torch.testing.assert_close(values, torch.stack(ref))
    torch.testing.assert_close(total, sum(ref))
    for a, e in zip(torch.autograd.grad(total, [d, img]), torch.autograd.grad(sum(ref), [d, img])):
        torch.testing.assert_close(a, e)


def test_gradcheck_through_total_and_terms():
    a, b = _rand(3, 4, seed=7).requires_grad_(), _rand(3, 4, seed=8, low=0.1, high=0.9).requires_grad_()
    t = _rand(3, 4, seed=9)

    def f(a, b):
        total, values = loss_terms([LossTerm(a, "mse", t, 2.0), LossTerm(b, "bce", t.clamp(0, 1), 1.0, "sum"),
                                    LossTerm(a, "kl_logvar", None, 0.3, "sum")])
        return total, values

    assert torch.autograd.gradcheck(lambda a, b: f(a, b)[0], (a, b))
    assert torch.autograd.gradcheck(lambda a, b: f(a, b)[1], (a, b))


def test_only_some_inputs_require_grad():
    a, c = _rand(4, 5, seed=1).requires_grad_(), _rand(4, 5, seed=2)
    total, _ = loss_terms([LossTerm(a, "mse", 0.0), LossTerm(c, "l1", 1.0)])
    (ga,) = torch.autograd.grad(total, a)
    torch.testing.assert_close(ga, 2 * a.detach() / a.numel())


def test_no_grad_stores_no_gradient():
    a = _rand(4, 5, seed=1).requires_grad_()
    with torch.no_grad():
        _, _, stored = loss_terms_op([a], [None], [0.0], "mse:mean", [1.0], False)
    assert stored[0].numel() == 0


def test_empty_inputs_give_torch_s_values():
    empty = torch.empty(0, 3)
    total, values = loss_terms([LossTerm(empty, "mse", 1.0), LossTerm(empty, "l1", 0.0, 1.0, "sum")])
    assert torch.isnan(values[0]) and values[1] == 0 and torch.isnan(total)


def test_channels_last_and_sliced_inputs_keep_their_layout():
    x = _rand(2, 3, 4, 5).contiguous(memory_format=torch.channels_last).requires_grad_()
    t = _rand(2, 3, 4, 5, seed=3)[:, :, :, :]  # contiguous target against a channels_last input
    total, _ = loss_terms([LossTerm(x, "l1", t)])
    (g,) = torch.autograd.grad(total, x)
    assert g.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(g, torch.sign(x.detach() - t) / x.numel())


@pytest.mark.parametrize("terms,error,match", [
    (lambda a, b: [LossTerm(a, "huber", b)], ValueError, "loss kind must be one of"),
    (lambda a, b: [LossTerm(a, "mse", b, 1.0, "none")], ValueError, "reduction must be 'mean' or 'sum'"),
    (lambda a, b: [LossTerm(a, "mse", b[:2])], ValueError, r"targets\[0\] must match inputs\[0\]"),
    (lambda a, b: [LossTerm(a, "mse", b), LossTerm(a.float(), "l1", 0.0)], TypeError, "dtype of inputs"),
    (lambda a, b: [LossTerm(a, "linear", b)], ValueError, "takes no target"),
    (lambda a, b: [LossTerm(a, "mse", 1.0)] * 9, ValueError, "between 1 and 8 terms"),
    (lambda a, b: [LossTerm(a.long(), "mse", 1.0)], TypeError, "must be float32"),
    (lambda a, b: [LossTerm(a, "mse", "1")], TypeError, "target must be a tensor, a number or None"),
    (lambda a, b: [LossTerm(a, "mse", b.requires_grad_())], RuntimeError, "requires grad"),
])
def test_bad_input_raises_naming_the_term(terms, error, match):
    a, b = _rand(3, 4), _rand(3, 4, seed=1)
    with pytest.raises(error, match=match):
        loss_terms(terms(a, b))


def test_opcheck():
    a, b = _rand(3, 4, dtype=torch.float32).requires_grad_(), _rand(3, 4, seed=1, dtype=torch.float32)
    torch.library.opcheck(loss_terms_op, ([a, a], [b, None], [0.0, 1.0], "l1:mean,bce_logits:sum", [2.0, 0.5], True))
    torch.library.opcheck(_scale_term_stored_grads, ([a.detach(), b], torch.tensor(2.0), torch.tensor([0.0, 1.0]),
                                               "l1:mean,mse:sum"))


def test_compile_fullgraph():
    a, t = _rand(2, 3, 4, seed=1, dtype=torch.float32), _rand(2, 3, 4, seed=2, dtype=torch.float32)

    def step(a):
        total, values = loss_terms([LossTerm(a, "mse", 1.0), LossTerm(a, "l1", t, 10.0)])
        return total, values

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    x1, x2 = a.clone().requires_grad_(), a.clone().requires_grad_()
    (total1, values1), (total2, values2) = step(x1), compiled(x2)
    torch.testing.assert_close(total2, total1)
    torch.testing.assert_close(values2, values1)
    torch.testing.assert_close(torch.autograd.grad(total2, x2)[0], torch.autograd.grad(total1, x1)[0])


def test_autocast_computes_in_float32():
    a = _rand(4, 4, dtype=torch.float32).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total, _ = loss_terms([LossTerm(a.to(torch.bfloat16), "mse", 1.0)])
    assert total.dtype == torch.float32


PYTHON_FORMULA = """
import torch
from genimg_fast import _backend
from genimg_fast.ops import LossTerm, loss_terms
assert not _backend.kernels_loaded()
g = torch.Generator().manual_seed(3)
a, b = (torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2))
t = torch.rand(3, 4, generator=g, dtype=torch.float64)
def f(a, b):
    return loss_terms([LossTerm(a, "l1", t, 2.0), LossTerm(b, "bce_logits", t, 0.5, "sum"),
                       LossTerm(a, "half_square", None, 0.3)])
total, _ = f(a, b)
assert "GeneratedBackward" in type(total.grad_fn).__name__, type(total.grad_fn)
assert torch.autograd.gradcheck(lambda a, b: f(a, b)[0], (a, b))
assert torch.autograd.gradcheck(lambda a, b: f(a, b)[1], (a, b))
try:  # a recorded backward through a curved kind is refused here too
    torch.autograd.grad(f(a, b)[0], a, create_graph=True)
    raise SystemExit("double backward was not refused")
except RuntimeError as exc:
    assert "double backward" in str(exc) and "bce_logits, half_square" in str(exc), exc
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


def test_a_target_that_requires_grad_is_fine_without_a_graph():
    a, t = _rand(3, 4), _rand(3, 4, seed=1).requires_grad_()
    with torch.no_grad():
        total, _ = loss_terms([LossTerm(a, "l1", t)])
    torch.testing.assert_close(total, F.l1_loss(a, t.detach()))


@pytest.mark.parametrize("kind,target,torch_loss", [c for c in CASES if c[0] not in ("l1", "linear")])
def test_double_backward_through_a_curved_kind_is_refused_not_wrong(kind, target, torch_loss):
    """Its stored gradient would be a constant in a recorded backward: a silently wrong second
    derivative (an R1-style penalty) if it were let through."""
    a, b = _case_inputs(kind, target)
    a.requires_grad_()
    total, _ = loss_terms([LossTerm(a, kind, b)])
    with pytest.raises(RuntimeError, match=f"double backward .*fused {kind} loss.*torch's own functions"):
        torch.autograd.grad(total, a, create_graph=True)


@pytest.mark.parametrize("kind,target,torch_loss", [c for c in CASES if c[0] in ("l1", "linear")])
def test_double_backward_through_a_linear_gradient_kind_matches_torch(kind, target, torch_loss):
    """l1's and linear's gradients do not depend on the input: a recorded backward is exact."""
    a, b = _case_inputs(kind, target)
    a.requires_grad_()
    w = _rand(2, 3, 5, 7, seed=9)
    results = []
    for loss in (loss_terms([LossTerm(a, kind, b, 0.7)])[0], 0.7 * torch_loss(a, b, "mean")):
        (ga,) = torch.autograd.grad(loss, a, create_graph=True)
        penalty = (ga * w).sum() + loss  # depends on a through the gradient and the loss itself
        results.append(torch.autograd.grad(penalty, a)[0])
    torch.testing.assert_close(results[0], results[1])


@pytest.mark.parametrize("kind,value,target,torch_loss", [
    ("bce", 1e-5, "ones", lambda a, b: F.binary_cross_entropy(a, b)),  # stores -1e5 before the 1/n
    ("kl_logvar", 11.0, None, lambda a, b: (0.5 * (a.exp() - 1 - a)).mean()),  # stores 3e4: fits
])
def test_float16_gradients_do_not_overflow_where_torch_s_do_not(kind, value, target, torch_loss):
    """A stored gradient weight * df/da can pass fp16's range before the 1/n of a mean (bce at
    p = 1e-5: -1e5) where torch's fp16 gradient (scaled first) is finite. Ours must be too."""
    a = torch.full((128,), value, dtype=torch.float16, requires_grad=True)
    b = torch.ones(128, dtype=torch.float16) if target == "ones" else target
    ours, _ = loss_terms([LossTerm(a, kind, b)])
    (got,) = torch.autograd.grad(ours, a)
    a64 = a.detach().double().requires_grad_()
    reference = torch_loss(a64, b.double() if isinstance(b, torch.Tensor) else b)
    (want,) = torch.autograd.grad(reference, a64)
    assert ours.dtype == torch.float16 and got.dtype == torch.float16 and torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), want, rtol=2e-3, atol=0)
    torch.testing.assert_close(ours.double(), reference, rtol=2e-3, atol=0)
