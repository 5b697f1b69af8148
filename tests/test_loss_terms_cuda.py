"""The multi-term loss kernels (loss_terms, _scale_term_stored_grads) against the float64 reference:
every kind, dtype and layout, odd sizes and sizes spanning many blocks, several terms in one
launch, every output element (NaN-poisoned outputs), bit-identical repeats, graph capture,
torch.compile and no host synchronization."""
from __future__ import annotations

import pytest
import torch
from cuda_helpers import assert_raises_in_child, poison_allocator

from genimg_fast.ops import LossTerm, _scale_term_stored_grads, loss_terms
from genimg_fast.ops.loss_terms import loss_terms_op

pytestmark = pytest.mark.cuda

KINDS = [("l1", "tensor"), ("mse", "tensor"), ("mse", 1.0), ("bce", "tensor"), ("bce", 0.0), ("bce_logits", 1.0),
         ("bce_logits", "tensor"), ("linear", None), ("half_square", None), ("kl_logvar", None)]
# relative to the largest reference magnitude
TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def _layout(t: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "channels_last" and t.dim() == 4:
        return t.contiguous(memory_format=torch.channels_last)
    if layout == "sliced":  # not dense: the op works on dense copies, results keep empty_like's layout
        wide = torch.empty(*t.shape[:-1], t.shape[-1] + 3, dtype=t.dtype, device=t.device)
        wide[..., 1:-2] = t
        return wide[..., 1:-2]
    return t.contiguous()


def _term_tensors(kind, target, shape, dtype, layout, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    if kind == "bce":
        x = torch.rand(shape, generator=g, device="cuda") * 0.96 + 0.02
    elif kind == "kl_logvar":
        x = torch.randn(shape, generator=g, device="cuda") * 0.5
    else:
        x = torch.randn(shape, generator=g, device="cuda") * 1.5
    if target == "tensor":
        t = (torch.rand(shape, generator=g, device="cuda") if kind.startswith("bce")
             else torch.randn(shape, generator=g, device="cuda"))
        target = _layout(t.to(dtype), layout)
    return _layout(x.to(dtype), layout), target


def _reference(inputs, targets, values, spec, weights):
    """The reference on float64 CPU copies of the same (rounded) inputs."""
    cpu = [x.detach().double().cpu() for x in inputs]
    cpu_targets = [t.double().cpu() if t is not None else None for t in targets]
    return loss_terms_op(cpu, cpu_targets, values, spec, weights, True)


def _check(inputs, targets, values, spec, weights, dtype, what=""):
    nbytes = max(x.numel() for x in inputs) * inputs[0].element_size()
    poison_allocator(nbytes)
    terms, total, grads = loss_terms_op(inputs, targets, values, spec, weights, True)
    ref_terms, ref_total, ref_grads = _reference(inputs, targets, values, spec, weights)
    tol = TOLERANCE[dtype]
    for got, want, name in [(terms, ref_terms, "terms"), (total, ref_total, "total")] + [
            (g, r, f"grad {i}") for i, (g, r) in enumerate(zip(grads, ref_grads))]:
        got64 = got.double().cpu()
        assert not (torch.isnan(got64) & ~torch.isnan(want)).any(), f"{what} {name}: NaN (unwritten element?)"
        scale = max(want.abs().max().item() if want.numel() else 0.0, 1e-30)
        torch.testing.assert_close(got64, want, rtol=0, atol=tol * scale, equal_nan=True,
                                   msg=lambda m, name=name: f"{what} {name}: {m}")
    for x, g in zip(inputs, grads):
        assert g.shape == x.shape and g.stride() == torch.empty_like(x).stride()
    return terms, total, grads


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("kind,target", KINDS)
def test_each_kind_against_the_reference(cuda_kernels, kind, target, dtype):
    for shape, layout, reduction in [((1,), "contiguous", "mean"), ((127,), "contiguous", "sum"),
                                     ((1, 1, 30, 30), "contiguous", "mean"), ((2, 3, 33, 31), "channels_last", "mean"),
                                     ((3, 1025), "sliced", "sum"), ((1, 3, 256, 256), "contiguous", "mean")]:
        x, t = _term_tensors(kind, target, shape, dtype, layout, seed=len(shape))
        tensor_target = t if isinstance(t, torch.Tensor) else None
        value = t if isinstance(t, float) else 0.0
        _check([x], [tensor_target], [value], f"{kind}:{reduction}", [0.7], dtype,
               what=f"{kind} {shape} {layout} {reduction}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_cyclegan_sized_objective_in_one_launch(cuda_kernels, dtype):
    """Six terms of the CycleGAN generator objective (two patch maps, four images)."""
    patch, image = (1, 1, 30, 30), (1, 3, 256, 256)
    inputs, targets = [], []
    for i, (kind, shape) in enumerate([("mse", patch), ("mse", patch)] + [("l1", image)] * 4):
        x, t = _term_tensors(kind, "tensor" if kind == "l1" else 1.0, shape, dtype, "contiguous", seed=10 + i)
        inputs.append(x)
        targets.append(t if isinstance(t, torch.Tensor) else None)
    spec = ",".join(["mse:mean"] * 2 + ["l1:mean"] * 4)
    _check(inputs, targets, [1.0, 1.0, 0, 0, 0, 0], spec, [1.0, 1.0, 10.0, 10.0, 5.0, 5.0], dtype, what="cyclegan")


def test_empty_terms_next_to_full_ones(cuda_kernels):
    empty = torch.empty(0, 3, device="cuda")
    full = torch.randn(5, 7, device="cuda")
    terms, total, grads = loss_terms_op([empty, full, empty], [None, None, None], [1.0, 0.0, 0.0],
                                        "mse:mean,l1:sum,l1:sum", [1.0, 2.0, 1.0], True)
    assert torch.isnan(terms[0]) and terms[2] == 0 and torch.isnan(total)
    torch.testing.assert_close(terms[1], 2.0 * full.abs().sum())
    only_empty = loss_terms_op([empty], [None], [0.0], "l1:sum", [1.0], True)
    assert only_empty[1].item() == 0.0


def test_results_are_bit_identical_run_to_run(cuda_kernels):
    x, t = _term_tensors("l1", "tensor", (4, 3, 128, 128), torch.float32, "contiguous", seed=3)
    first = loss_terms_op([x, x], [t, None], [0.0, 1.0], "l1:mean,mse:sum", [1.0, 0.5], True)
    for _ in range(3):
        again = loss_terms_op([x, x], [t, None], [0.0, 1.0], "l1:mean,mse:sum", [1.0, 0.5], True)
        assert torch.equal(again[0], first[0]) and torch.equal(again[1], first[1])
        assert all(torch.equal(a, b) for a, b in zip(again[2], first[2]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
def test_scale_term_stored_grads_against_the_reference(cuda_kernels, dtype):
    stored = [torch.randn(s, device="cuda").to(dtype) for s in ((1, 1, 30, 30), (1, 3, 64, 65), (7,))]
    stored[1] = stored[1].contiguous(memory_format=torch.channels_last)
    grad_total = torch.tensor(1.5, device="cuda", dtype=dtype)
    grad_terms = torch.tensor([0.0, 0.25, -1.0], device="cuda", dtype=dtype)
    poison_allocator(stored[1].numel() * stored[1].element_size())
    spec = "mse:mean,l1:mean,l1:sum"
    outs = _scale_term_stored_grads(stored, grad_total, grad_terms, spec)
    refs = _scale_term_stored_grads([s.double().cpu() for s in stored], grad_total.double().cpu(),
                              grad_terms.double().cpu(), spec)
    without_terms = _scale_term_stored_grads(stored, grad_total, None, spec)  # only the total was differentiated
    want_without = _scale_term_stored_grads([s.double().cpu() for s in stored], grad_total.double().cpu(), None, spec)
    for out, ref in zip(without_terms, want_without):
        torch.testing.assert_close(out.double().cpu(), ref, rtol=TOLERANCE[dtype],
                                   atol=TOLERANCE[dtype] * ref.abs().max().item())
    for out, ref, s in zip(outs, refs, stored):
        assert out.stride() == s.stride()
        scale = ref.abs().max().item()  # fp16 results near 1e-4 are subnormal: compare against the largest
        torch.testing.assert_close(out.double().cpu(), ref, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype] * scale)


def test_backward_matches_torch_through_the_module_api(cuda_kernels):
    import torch.nn.functional as F
    d = torch.randn(1, 1, 30, 30, device="cuda", requires_grad=True)
    img, real = torch.randn(1, 3, 64, 64, device="cuda", requires_grad=True), torch.randn(1, 3, 64, 64, device="cuda")
    total, values = loss_terms([LossTerm(d, "mse", 1.0), LossTerm(img, "l1", real, 10.0)])
    expected = F.mse_loss(d, torch.ones_like(d)) + 10.0 * F.l1_loss(img, real)
    gy = torch.tensor(0.75, device="cuda")
    got = torch.autograd.grad(total, [d, img], gy, retain_graph=True)
    want = torch.autograd.grad(expected, [d, img], gy)
    for a, e in zip(got, want):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-7)
    (g_from_term,) = torch.autograd.grad(values[1], img)  # a logged term is differentiable too
    torch.testing.assert_close(g_from_term, torch.autograd.grad(10.0 * F.l1_loss(img, real), img)[0])


def test_compile_and_graph_capture_and_no_sync(cuda_kernels):
    from genimg_fast.nn import CycleGANGeneratorLoss
    criterion = CycleGANGeneratorLoss()
    tensors = [torch.randn(s, device="cuda") for s in [(1, 1, 30, 30)] * 2 + [(1, 3, 64, 64)] * 6]
    grads_of = [tensors[i].requires_grad_() for i in (0, 1, 2, 4, 6, 7)]

    def step():
        total, _ = criterion(*tensors)
        # detached: a kept graph would pin the leaves' gradient accumulators to the default
        # stream, and the capture below could not run a backward through them
        return total.detach(), torch.autograd.grad(total, grads_of)

    eager_total, eager_grads = step()
    compiled_total, compiled_grads = torch.compile(step, fullgraph=False)()
    torch.testing.assert_close(compiled_total, eager_total)
    for a, e in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(a, e)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        graph_total, graph_grads = step()
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(graph_total, eager_total)
    assert all(torch.equal(a, e) for a, e in zip(graph_grads, eager_grads))


def test_opcheck_cuda(cuda_kernels):
    a = torch.randn(3, 4, device="cuda", requires_grad=True)
    b = torch.rand(3, 4, device="cuda")
    torch.library.opcheck(loss_terms_op, ([a, a], [b, None], [0.0, 1.0], "bce_logits:mean,mse:sum", [1.0, 0.5], True))
    torch.library.opcheck(_scale_term_stored_grads, ([a.detach(), b], torch.tensor(2.0, device="cuda"),
                                               torch.tensor([0.0, 1.0], device="cuda"), "l1:mean,mse:sum"))


BAD_CALLS = {  # each must raise with this text, never crash
    "unknown kind": ("ops.loss_terms([ops.LossTerm(torch.randn(3, device='cuda'), 'huber', 1.0)])", "ValueError",
                     "loss kind must be one of"),
    "mixed dtypes": ("torch.ops.genimg_fast.loss_terms([torch.randn(3, device='cuda'), torch.randn(3, device='cuda', "
                     "dtype=torch.float64)], [None, None], [0.0, 0.0], 'mse:mean,mse:mean', [1.0, 1.0], False)",
                     "TypeError", "every input must have the dtype of inputs[0]"),
    "target shape": ("torch.ops.genimg_fast.loss_terms([torch.randn(3, device='cuda')], [torch.randn(4, "
                     "device='cuda')], [0.0], 'l1:mean', [1.0], False)", "ValueError", "targets[0] must match"),
    "spec length": ("torch.ops.genimg_fast.loss_terms([torch.randn(3, device='cuda')], [None], [0.0], "
                    "'l1:mean,l1:mean', [1.0], False)", "ValueError", "one 'kind:reduction' entry per input"),
    "backward spec": ("torch.ops.genimg_fast._scale_term_stored_grads([torch.randn(3, device='cuda')], "
                      "torch.tensor(1.0, device='cuda'), None, 'huber:mean')", "ValueError",
                      "genimg_fast._scale_term_stored_grads: loss kind must be one of"),  # names its own op
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_input_raises_not_crashes(cuda_kernels, case):
    call, error, message = BAD_CALLS[case]
    assert_raises_in_child(call, error, message)
