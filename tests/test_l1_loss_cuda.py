"""The CUDA L1 kernels against the float64 reference: fresh random inputs, every element of
the loss and both gradients checked, odd sizes, all dtypes and layouts, bit-exact repeats."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from cuda_helpers import assert_raises_in_child, poison_allocator
from layouts import LAYOUTS, make_layout

from genimg_fast.ops import l1_loss
from genimg_fast.ops.l1_loss import l1_loss_op

pytestmark = pytest.mark.cuda

# (rtol on the loss, rtol on the gradients): fp32 accumulation for every dtype, one rounding
# of the result to the input dtype (plus the rounding of a non-unit weight in the stored
# gradient). The expected loss is rounded to the dtype too, so an fp16 overflow is inf on both sides.
TOLERANCES = {
    torch.float64: (1e-10, 1e-12),
    torch.float32: (1e-5, 1e-6),
    torch.float16: (2e-3, 1e-3),
    torch.bfloat16: (1e-2, 8e-3),
}
# A mean over more than 16384 elements makes fp16 gradients subnormal: half a subnormal step.
GRAD_ATOL = {torch.float16: 2.0**-25}
SIZES = [1, 3, 127, 1025, 4099, 65537, 1_000_003, 10_000_000]


def _run(a: torch.Tensor, b: torch.Tensor, weight: float, reduction: str, grad_output: float):
    poison_allocator(a.numel() * a.element_size())
    x = a.detach().requires_grad_()  # a view with a's strides: the layout under test
    y = b.detach().requires_grad_()
    loss = l1_loss(x, y, weight, reduction)
    gx, gy = torch.autograd.grad(loss, (x, y), torch.tensor(grad_output, dtype=a.dtype, device=a.device))
    return loss, gx, gy


def _expected(a, b, weight, reduction, grad_output):
    """float64 loss (rounded once to a's dtype, as the kernel rounds its result) and gradient."""
    d = a.detach().cpu().double() - b.detach().cpu().double()
    n = d.numel()
    loss = weight * (d.abs().mean() if reduction == "mean" else d.abs().sum())
    scale = grad_output * weight / (n if reduction == "mean" else 1)
    return loss.to(a.dtype).double(), torch.sign(d) * scale


def _assert_matches(loss, gx, gy, want_loss, want_grad, dtype):
    loss_tol, grad_tol = TOLERANCES[dtype]
    atol = GRAD_ATOL.get(dtype, 0.0)
    assert loss.dtype == dtype and gx.dtype == dtype and gy.dtype == dtype
    torch.testing.assert_close(loss.cpu().double(), want_loss, rtol=loss_tol, atol=0)
    torch.testing.assert_close(gx.cpu().double(), want_grad, rtol=grad_tol, atol=atol)
    torch.testing.assert_close(gy.cpu().double(), -want_grad, rtol=grad_tol, atol=atol)


@pytest.mark.parametrize("dtype", list(TOLERANCES))
@pytest.mark.parametrize("numel", SIZES)
def test_kernel_matches_float64_reference(cuda_kernels, numel, dtype):
    g = torch.Generator(device="cuda").manual_seed(numel)
    a = torch.randn(numel, generator=g, device="cuda").to(dtype)
    b = torch.randn(numel, generator=g, device="cuda").to(dtype)
    for reduction, weight, grad_output in (("mean", 1.0, 1.0), ("sum", 0.37, 4096.0)):
        loss, gx, gy = _run(a, b, weight, reduction, grad_output)
        _assert_matches(loss, gx, gy, *_expected(a, b, weight, reduction, grad_output), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("input_layout", LAYOUTS)
@pytest.mark.parametrize("target_layout", ["contiguous", "channels_last", "sliced"])
def test_layouts_without_copies(cuda_kernels, input_layout, target_layout, dtype):
    g = torch.Generator(device="cuda").manual_seed(11)
    shape = (3, 5, 17, 13)  # odd sizes, prime channel count
    a = make_layout(torch.randn(shape, generator=g, device="cuda").to(dtype), input_layout)
    b = make_layout(torch.randn(shape, generator=g, device="cuda").to(dtype), target_layout)
    loss, gx, gy = _run(a, b, 2.0, "mean", 1.0)
    _assert_matches(loss, gx, gy, *_expected(a, b, 2.0, "mean", 1.0), dtype)
    if input_layout == "channels_last":
        assert gx.is_contiguous(memory_format=torch.channels_last)


def test_expanded_target(cuda_kernels):
    a = torch.randn(8, 3, 16, 16, device="cuda")
    b = torch.randn(1, 3, 1, 16, device="cuda").expand(8, 3, 16, 16)
    loss, gx, _ = _run(a, b, 1.0, "sum", 1.0)
    want_loss, want_grad = _expected(a, b, 1.0, "sum", 1.0)
    torch.testing.assert_close(loss.cpu().double(), want_loss, rtol=1e-5, atol=0)
    torch.testing.assert_close(gx.cpu().double(), want_grad, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_repeated_calls_are_bit_identical(cuda_kernels, dtype):
    a = torch.randn(3_000_017, device="cuda").to(dtype)
    b = torch.randn(3_000_017, device="cuda").to(dtype)
    first = _run(a, b, 1.0, "mean", 1.0)
    for _ in range(3):
        again = _run(a, b, 1.0, "mean", 1.0)
        for x, y in zip(first, again):
            assert torch.equal(x, y)


def test_matches_torch_l1_loss(cuda_kernels):
    a = torch.randn(16, 3, 64, 64, device="cuda", requires_grad=True)
    b = torch.randn(16, 3, 64, 64, device="cuda")
    ours = l1_loss(a, b)
    (g_ours,) = torch.autograd.grad(ours, a)
    theirs = F.l1_loss(a, b)
    (g_theirs,) = torch.autograd.grad(theirs, a)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(g_ours, g_theirs)


def test_empty_and_nan_like_torch(cuda_kernels):
    e = torch.empty(0, 4, device="cuda")
    assert torch.isnan(l1_loss(e, e)).item()
    assert l1_loss(e, e, reduction="sum").item() == 0.0
    a = torch.randn(1000, device="cuda")
    a[500] = float("nan")
    assert torch.isnan(l1_loss(a, torch.zeros_like(a))).item()


def test_mismatched_devices_raise(cuda_kernels):
    a = torch.randn(4, device="cuda")
    with pytest.raises(ValueError, match="target must be on the same device"):
        l1_loss(a, torch.randn(4))


@pytest.mark.parametrize("call,error,message", [
    ("ops.l1_loss(torch.randn(3, device='cuda'), torch.randn(4, device='cuda'))", "ValueError",
     "target must have the same shape"),
    ("ops.l1_loss(torch.randn(3, device='cuda'), torch.randn(3, device='cuda').double())", "TypeError",
     "target must have the same dtype"),
    ("ops.l1_loss(torch.ones(3, device='cuda', dtype=torch.int32), torch.ones(3, device='cuda', dtype=torch.int32))",
     "TypeError", "input must be float32"),
    ("ops._scale_one_stored_grad(torch.randn(3, device='cuda'), torch.ones(2, device='cuda'), 1.0)", "ValueError",
     "grad_output must hold exactly one value"),
])
def test_bad_input_raises_not_crashes(cuda_kernels, call, error, message):
    assert_raises_in_child(call, error, message)


def test_opcheck_cuda(cuda_kernels):
    a = torch.randn(2, 3, 5, 7, device="cuda", requires_grad=True)
    b = torch.randn(2, 3, 5, 7, device="cuda")
    torch.library.opcheck(l1_loss_op, (a, b, 0.5, "mean", True))
    torch.library.opcheck(l1_loss_op, (a.detach(), b, 1.0, "sum", False))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_strided_path_over_many_grid_sweeps(cuda_kernels, dtype):
    """12.6M elements of a sliced view: every thread of the strided kernel loops many times."""
    a = make_layout(torch.randn(64, 3, 256, 256, device="cuda").to(dtype), "sliced")
    b = make_layout(torch.randn(64, 3, 256, 256, device="cuda").to(dtype), "transposed")
    loss, gx, gy = _run(a, b, 0.5, "sum", 1.0)
    _assert_matches(loss, gx, gy, *_expected(a, b, 0.5, "sum", 1.0), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_dense_but_misaligned_storage(cuda_kernels, dtype):
    """A dense view one element into its storage: the flat kernel without 16-byte vectors."""
    base_a = torch.randn(100_003, device="cuda").to(dtype)
    base_b = torch.randn(100_003, device="cuda").to(dtype)
    a, b = base_a[1:], base_b[1:]
    loss, gx, gy = _run(a, b, 1.0, "mean", 1.0)
    _assert_matches(loss, gx, gy, *_expected(a, b, 1.0, "mean", 1.0), dtype)


def test_more_non_mergeable_dims_than_the_strided_indexer_holds(cuda_kernels):
    # 17 dims of size 2 with strides 2^(k+1) - 1: no two dims merge, and no two elements overlap.
    dims = 17
    strides = [2 ** (dims - i) - 1 for i in range(dims)]
    a = torch.randn(2 ** (dims + 1), device="cuda").as_strided([2] * dims, strides)
    b = torch.randn([2] * dims, device="cuda")
    loss, gx, gy = _run(a, b, 1.0, "mean", 1.0)
    _assert_matches(loss, gx, gy, *_expected(a, b, 1.0, "mean", 1.0), torch.float32)


@pytest.mark.parametrize("layout", ["sliced", "transposed", "channels_last"])
def test_no_hidden_copy_of_the_inputs(cuda_kernels, layout):
    """Peak memory during the forward holds the outputs and a small workspace, no input copy."""
    a = make_layout(torch.randn(16, 3, 256, 256, device="cuda"), layout)
    b = make_layout(torch.randn(16, 3, 256, 256, device="cuda"), "sliced")
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    loss, stored = l1_loss_op(a, b, 1.0, "mean", True)
    torch.cuda.synchronize()
    extra = torch.cuda.max_memory_allocated() - before
    outputs = stored.numel() * stored.element_size()
    assert extra < outputs + 2**20, f"{extra} bytes allocated for {outputs} bytes of outputs"


def test_cuda_graph_capture(cuda_kernels):
    a = torch.randn(100_003, device="cuda", requires_grad=True)
    b = torch.randn(100_003, device="cuda")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm up outside the graph
        for _ in range(2):
            torch.autograd.grad(l1_loss(a, b), a)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        loss = l1_loss(a, b)
        (grad,) = torch.autograd.grad(loss, a)
    for _ in range(3):  # replays reuse the workspace: its ticket must be reset every time
        with torch.no_grad():
            a.copy_(torch.randn_like(a))
        graph.replay()
        torch.cuda.synchronize()
        want_loss, want_grad = _expected(a, b, 1.0, "mean", 1.0)
        torch.testing.assert_close(loss.cpu().double(), want_loss, rtol=1e-5, atol=0)
        torch.testing.assert_close(grad.cpu().double(), want_grad, rtol=1e-6, atol=0)


@pytest.mark.slow
def test_more_than_2_pow_31_elements(cuda_kernels):
    numel = 2**31 + 4099
    free, _ = torch.cuda.mem_get_info()
    if free < 24 * 2**30:
        pytest.skip("needs about 24 GiB of free GPU memory")
    a = torch.empty(numel, dtype=torch.bfloat16, device="cuda").uniform_(-1, 1)
    b = torch.empty(numel, dtype=torch.bfloat16, device="cuda").uniform_(-1, 1)
    x = a.detach().requires_grad_()
    loss = l1_loss(x, b, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    del x
    # Reference in float64 chunk by chunk (the whole tensor in fp64 would need 34 GB).
    total = torch.zeros((), dtype=torch.float64, device="cuda")
    chunk = 2**28
    with torch.no_grad():
        for start in range(0, numel, chunk):
            d = a[start:start + chunk].double() - b[start:start + chunk].double()
            total += d.abs().sum()
            assert torch.equal(grad[start:start + chunk].double(), torch.sign(d)), f"gradient wrong near {start}"
            del d
    # The loss is bf16: one rounding of the fp32-accumulated sum (a bf16 ulp is 2^-8 relative).
    torch.testing.assert_close(loss.double(), total.to(torch.bfloat16).double(), rtol=8e-3, atol=0)


def test_torch_compile_fullgraph_on_cuda(cuda_kernels):
    a = torch.randn(4, 3, 32, 32, device="cuda", requires_grad=True)
    b = torch.randn(4, 3, 32, 32, device="cuda")
    compiled = torch.compile(lambda x, y: l1_loss(x, y, 2.0) + 1.0, fullgraph=True)
    loss = compiled(a, b)
    (grad,) = torch.autograd.grad(loss, a)
    want_loss, want_grad = _expected(a, b, 2.0, "mean", 1.0)
    torch.testing.assert_close(loss.cpu().double(), want_loss + 1.0, rtol=1e-5, atol=0)
    torch.testing.assert_close(grad.cpu().double(), want_grad, rtol=1e-6, atol=0)


def test_autocast_mixed_dtypes_on_cuda(cuda_kernels):
    a = torch.randn(2, 3, 16, 16, device="cuda", dtype=torch.float16, requires_grad=True)
    b = torch.randn(2, 3, 16, 16, device="cuda")
    with torch.autocast("cuda", dtype=torch.float16):
        loss = l1_loss(a, b)
    assert loss.dtype == torch.float32
    (grad,) = torch.autograd.grad(loss, a)
    assert grad.dtype == torch.float16
    torch.testing.assert_close(loss, F.l1_loss(a.detach().float(), b))
