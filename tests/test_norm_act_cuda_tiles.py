"""The CUDA norm + activation kernels of the tile path against the float64 reference: every
element of every output, all activations x layouts x dtypes x training/eval, batch and instance
statistics, odd channel counts, spatial 1x1 to 256x256, bit-identical repeats, NaN-poisoned
outputs; the statistics, apply and backward pieces; the ops' checks; the modules on the GPU.
(The tile path takes what the block and cluster paths do not: channels_last, float64, groups of
under 512 or over 32768 values; norm_act_cuda_helpers.py says how the files divide the tests.)"""
from __future__ import annotations

import copy

import pytest
import torch
from cuda_helpers import assert_raises_in_child, poison_allocator
from norm_act_cuda_helpers import (ACTIVATIONS, MODEL_SHAPES, away_from_kink,
                                   check_batch_norm_training_forward_launches, check_bit_identical_repeats, check_close,
                                   check_forward_that_updates_running_stats_equals_its_two_ops_bitwise,
                                   check_misaligned_tensors, check_nan_inputs_match_the_reference, check_train,
                                   check_training_op_launches, make, path_taken)

from genimg_fast.ops import (_norm_act_backward_apply, _norm_act_backward_reduce, _norm_act_train_backward,
                             batch_norm_act_train_, norm_act_apply, norm_act_stats, norm_act_train,
                             update_running_stats_, update_tracked_running_stats_)
from genimg_fast.ops import _norm_act_math as ref

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("activation,slope", ACTIVATIONS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "sliced"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("per_sample", [False, True], ids=["batch", "instance"])
def test_train_forward_backward(cuda_kernels, per_sample, dtype, layout, activation, slope):
    check_train((3, 37, 9, 11), dtype, layout, per_sample, activation, slope)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("per_sample", [False, True], ids=["batch", "instance"])
def test_vector_path_every_dtype(cuda_kernels, dtype, per_sample):
    """S = 96 is a multiple of every vector width (2, 4 and 8 elements): 16-byte accesses."""
    check_train((3, 37, 8, 12), dtype, "contiguous", per_sample, "leaky_relu", 0.2)


@pytest.mark.parametrize("shape", [(4, 6, 8, 8)], ids=["tiles"])
@pytest.mark.parametrize("per_sample", [False, True], ids=["batch", "instance"])
def test_misaligned_tensors_take_the_element_path(cuda_kernels, per_sample, shape):
    check_misaligned_tensors(per_sample, shape)


@pytest.mark.parametrize("shape,per_sample,layout", [
    (shape, per_sample, layout) for layout in ("contiguous", "channels_last") for shape, per_sample in MODEL_SHAPES
    if path_taken(shape, per_sample, layout) == "tiles"])
def test_model_shapes(cuda_kernels, shape, per_sample, layout):
    check_train(shape, torch.float32, layout, per_sample, "relu", 0.0)


@pytest.mark.parametrize("shape,layout,launches", [((128, 64, 32, 32), "contiguous", 2),
                                                   ((128, 512, 4, 4), "channels_last", 3)])
def test_training_op_launches(cuda_kernels, shape, layout, launches):
    check_training_op_launches(shape, layout, launches)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_no_affine(cuda_kernels, layout):
    check_train((4, 7, 8, 8), torch.float32, layout, True, "leaky_relu", 0.2, affine=False)


@pytest.mark.parametrize("activation,slope", ACTIVATIONS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_eval_apply_and_its_gradients(cuda_kernels, dtype, layout, activation, slope):
    x, w, b, gy = make((5, 19, 7, 6), dtype, layout, 4)
    rm = torch.randn(19, device="cuda")
    rv = torch.rand(19, device="cuda") + 0.5
    xr, wr, br = x.detach().requires_grad_(), w.detach().requires_grad_(), b.detach().requires_grad_()
    y = norm_act_apply(xr, rm, rv, wr, br, 1e-5, activation, slope)
    dx, dw, db = torch.autograd.grad(y, (xr, wr, br), gy)
    x64, gy64, rm64, rv64 = x.double().cpu(), gy.double().cpu(), rm.double().cpu(), rv.double().cpu()
    w64, b64 = w.double().cpu(), b.double().cpu()
    check_close(y, ref.apply(x64, rm64, rv64, w64, b64, 1e-5, activation, slope), dtype, what="y")
    mask = away_from_kink(x64, rm64, rv64, w64, b64, 1e-5, activation)
    want_dx = ref.backward_apply(gy64, x64, rm64, rv64, w64, b64, None, None, 1.0, 1e-5, activation, slope)
    check_close(dx, want_dx, dtype, mask, what="dx")
    sum_dz, sum_dz_xhat = ref.backward_reduce(gy64, x64, rm64, rv64, w64, b64, 1e-5, activation, slope)
    check_close(dw, sum_dz_xhat, dtype, what="dweight")
    check_close(db, sum_dz, dtype, what="dbias")


def test_pieces_match_the_fused_op(cuda_kernels):
    x, w, b, gy = make((6, 40, 10, 10), torch.float32, "channels_last", 8)
    y, mean, var = norm_act_train(x, w, b, False, 1e-5, "relu", 0.0)
    mean2, var2 = norm_act_stats(x, False)
    assert torch.equal(mean, mean2) and torch.equal(var, var2)
    assert torch.equal(y, norm_act_apply(x, mean, var, w, b, 1e-5, "relu", 0.0))
    dx, _, _ = _norm_act_train_backward(gy, x, mean, var, w, b, 1e-5, "relu", 0.0)
    sums = _norm_act_backward_reduce(gy, x, mean, var, w, b, 1e-5, "relu", 0.0)
    dx2 = _norm_act_backward_apply(gy, x, mean, var, w, b, *sums, float(6 * 100), 1e-5, "relu", 0.0)
    assert torch.equal(dx, dx2)


@pytest.mark.parametrize("layout", ["channels_last"])
def test_bit_identical_repeats(cuda_kernels, layout):
    check_bit_identical_repeats(layout)


def test_gradient_in_another_layout_than_x(cuda_kernels):
    x, w, b, gy = make((4, 8, 6, 6), torch.float32, "channels_last", 2)
    y, mean, var = norm_act_train(x, w, b, False, 1e-5, "relu", 0.0)
    dx_cl, _, _ = _norm_act_train_backward(gy, x, mean, var, w, b, 1e-5, "relu", 0.0)
    dx_nchw, _, _ = _norm_act_train_backward(gy.contiguous(), x, mean, var, w, b, 1e-5, "relu", 0.0)
    torch.testing.assert_close(dx_cl, dx_nchw, rtol=0, atol=0)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("per_sample", [False, True])
# one and several partials per group (groups of over 32768 values: the block and cluster paths take none)
@pytest.mark.parametrize("shape", [(3, 40, 9, 7), (2, 5, 192, 192)])
def test_fused_training_ops_equal_their_pieces_bitwise(cuda_kernels, layout, per_sample, shape):
    """The training ops merge the reduction partials inside the elementwise pass; the merge is the
    same code in the same order as the separate merge kernel of the pieces, so results match
    bit for bit, and every group's statistics and sums are published. (Tile-path shapes only:
    NCHW groups of 512-32768 values take the block and cluster kernels, whose two-pass statistics
    round apart from the pieces' Welford merge; test_norm_act_cuda_block.py and
    test_norm_act_cuda_cluster.py check those.)"""
    x, w, b, gy = make(shape, torch.float32, layout, 13)
    poison_allocator(x.numel() * 4)
    y, mean, var = norm_act_train(x, w, b, per_sample, 1e-5, "leaky_relu", 0.2)
    mean_p, var_p = norm_act_stats(x, per_sample)
    y_p = norm_act_apply(x, mean_p, var_p, w, b, 1e-5, "leaky_relu", 0.2)
    assert torch.equal(mean, mean_p) and torch.equal(var, var_p) and torch.equal(y, y_p)
    dx, dw, db = _norm_act_train_backward(gy, x, mean, var, w, b, 1e-5, "leaky_relu", 0.2)
    sum_dz, sum_dz_xhat = _norm_act_backward_reduce(gy, x, mean, var, w, b, 1e-5, "leaky_relu", 0.2)
    count = float(shape[2] * shape[3] * (1 if per_sample else shape[0]))
    dx_p = _norm_act_backward_apply(gy, x, mean, var, w, b, sum_dz, sum_dz_xhat, count, 1e-5, "leaky_relu", 0.2)
    assert torch.equal(dx, dx_p)
    want_dw, want_db = (sum_dz_xhat.sum(0), sum_dz.sum(0)) if per_sample else (sum_dz_xhat, sum_dz)
    assert torch.equal(dw, want_dw) and torch.equal(db, want_db)


@pytest.mark.parametrize("dtype,layout,shape", [
    (dtype, layout, shape) for shape in [(3, 40, 9, 7), (2, 5, 96, 96), (64, 48, 4, 4)]
    for layout in ("contiguous", "channels_last")
    for dtype in (torch.float32, torch.bfloat16, torch.float16, torch.float64)
    if path_taken(shape, False, layout, dtype) == "tiles"])
def test_forward_that_updates_running_stats_equals_its_two_ops_bitwise(cuda_kernels, dtype, layout, shape):
    check_forward_that_updates_running_stats_equals_its_two_ops_bitwise(dtype, layout, shape)


@pytest.mark.parametrize("shape,launches", [((64, 16, 32, 32), 2)])
def test_batch_norm_training_forward_launches(cuda_kernels, shape, launches):
    check_batch_norm_training_forward_launches(shape, launches)


def test_cuda_training_step_uses_the_cpp_autograd(cuda_kernels):
    from genimg_fast.nn import BatchNormAct2d
    x = torch.randn(2, 3, 4, 4, device="cuda", requires_grad=True)
    assert "NormActTrainFunction" in BatchNormAct2d(3).cuda()(x).grad_fn.name()


BAD_CALLS = {  # each must raise a ValueError with this text, never crash
    "one value per channel": ("ops.norm_act_train(torch.randn(1, 3, 1, 1, device='cuda'), None, None, False, 1e-5, "
                              "'relu', 0.0)", "Expected more than 1 value per channel when training"),
    "one spatial element": ("ops.norm_act_train(torch.randn(2, 3, 1, 1, device='cuda'), None, None, True, 1e-5, "
                            "'relu', 0.0)", "Expected more than 1 spatial element when training"),
    "weight on the cpu": ("ops.norm_act_train(torch.randn(2, 3, 4, 4, device='cuda'), torch.ones(3), None, False, "
                          "1e-5, 'relu', 0.0)", "weight must be on the same device"),
    "unknown activation": ("ops.norm_act_train(torch.randn(2, 3, 4, 4, device='cuda'), None, None, False, 1e-5, "
                           "'tanh', 0.0)", "activation must be one of"),
    "3-D input": ("ops.norm_act_train(torch.randn(3, 4, 4, device='cuda'), None, None, False, 1e-5, 'relu', 0.0)",
                  "x must be 4-D"),
    "wrong weight shape": ("ops.norm_act_train(torch.randn(2, 3, 4, 4, device='cuda'), torch.ones(4, device='cuda'), "
                           "None, False, 1e-5, 'relu', 0.0)", "weight must have shape [3]"),
    "wrong running stats": ("ops.update_running_stats_(torch.zeros(4, device='cuda'), torch.ones(4, device='cuda'), "
                            "torch.zeros(3, device='cuda'), torch.ones(3, device='cuda'), 10, 0.1)",
                            "must have shape [3]"),
    "var of another shape": ("ops.update_running_stats_(torch.zeros(3, device='cuda'), torch.ones(3, device='cuda'), "
                             "torch.zeros(3, device='cuda'), torch.ones(1, device='cuda'), 10, 0.1)",
                             "var must have the shape of mean"),
    "var on the cpu": ("ops.update_running_stats_(torch.zeros(3, device='cuda'), torch.ones(3, device='cuda'), "
                       "torch.zeros(3, device='cuda'), torch.ones(3), 10, 0.1)", "var must be on the device of mean"),
    "sums on the cpu": ("ops._norm_act_backward_apply(torch.randn(2, 3, 4, 4, device='cuda'), torch.randn(2, 3, 4, 4, "
                        "device='cuda'), torch.zeros(3, device='cuda'), torch.ones(3, device='cuda'), None, None, "
                        "torch.zeros(3), torch.zeros(3), 32.0, 1e-5, 'relu', 0.0)", "must be on the device of x"),
    "counter not int64": ("ops.update_tracked_running_stats_(torch.zeros(3, device='cuda'), torch.ones(3, device='cuda'), "
                          "torch.tensor(1.0, device='cuda'), torch.zeros(3, device='cuda'), torch.ones(3, device='cuda'), "
                          "10, None)", "num_batches_tracked must be a one-element int64"),
    "wrong stats shape": ("ops.norm_act_apply(torch.randn(2, 3, 4, 4, device='cuda'), torch.zeros(4, device='cuda'), "
                          "torch.ones(4, device='cuda'), None, None, 1e-5, 'relu', 0.0)", "mean must have shape"),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_input_raises_not_crashes(cuda_kernels, case):
    call, message = BAD_CALLS[case]
    assert_raises_in_child(call, "ValueError", message)


def test_empty_batch_on_cuda(cuda_kernels):
    y, mean, _ = norm_act_train(torch.empty(0, 3, 4, 4, device="cuda"), None, None, False, 1e-5, "relu", 0.0)
    assert y.shape == (0, 3, 4, 4) and torch.isnan(mean).all()


def test_opcheck_cuda(cuda_kernels):
    x, w, b, gy = make((2, 5, 4, 3), torch.float32, "channels_last", 1)
    args = (x.requires_grad_(), w.requires_grad_(), b.requires_grad_())
    for per_sample in (False, True):
        torch.library.opcheck(norm_act_train, (*args, per_sample, 1e-5, "leaky_relu", 0.2))
    mean, var = norm_act_stats(x.detach(), False)
    torch.library.opcheck(norm_act_apply, (x, mean, var, w, b, 1e-5, "relu", 0.0))
    torch.library.opcheck(update_running_stats_, (torch.zeros(5, device="cuda"), torch.ones(5, device="cuda"),
                                                  mean, var, 24, 0.1))
    torch.library.opcheck(update_tracked_running_stats_, (torch.zeros(5, device="cuda"), torch.ones(5, device="cuda"),
                                                          torch.tensor(1, device="cuda"), mean, var, 24, None))
    for shape in [(2, 5, 3, 4), (32, 5, 4, 4)]:  # the tile path and a block group
        xb = torch.randn(shape, device="cuda", requires_grad=True)
        torch.library.opcheck(batch_norm_act_train_, (xb, w, b, torch.zeros(5, device="cuda"),
                                                      torch.ones(5, device="cuda"), torch.tensor(1, device="cuda"),
                                                      0.1, 1e-5, "leaky_relu", 0.2))


@pytest.mark.slow
def test_more_than_2_pow_31_elements(cuda_kernels):
    shape = (2, 4, 16384, 16385)  # 2^31 + 131072 elements
    free, _ = torch.cuda.mem_get_info()
    if free < 40 * 2**30:
        pytest.skip("needs about 40 GiB of free GPU memory")
    x = torch.empty(shape, dtype=torch.bfloat16, device="cuda").normal_()
    y, mean, var = norm_act_train(x, None, None, False, 1e-5, "relu", 0.0)
    with torch.no_grad():
        for c in range(shape[1]):
            plane = x[:, c].double()
            want_mean, want_var = plane.mean(), plane.var(unbiased=False)
            torch.testing.assert_close(mean[c].double(), want_mean, rtol=0, atol=1e-4)
            torch.testing.assert_close(var[c].double(), want_var, rtol=1e-4, atol=0)
            want_y = torch.relu((plane - mean[c].double()) * torch.rsqrt(var[c].double() + 1e-5))
            torch.testing.assert_close(y[:, c].double(), want_y, rtol=1e-2, atol=1e-2)
            del plane, want_y


# ---- the modules on the GPU (C++ autograd, running statistics, torch.compile) ----

def _module_pair(torch_cls, cls, channels, momentum):
    ref_norm = torch_cls(channels, momentum=momentum, affine=True, track_running_stats=True).cuda()
    ref = torch.nn.Sequential(ref_norm, torch.nn.LeakyReLU(0.2))
    fused = cls.from_norm(copy.deepcopy(ref_norm), activation="leaky_relu", negative_slope=0.2)
    return ref, fused


def _step(module, x, gy):
    x = x.clone().requires_grad_()
    y = module(x)
    y.backward(gy)
    return y.detach(), x.grad


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("norm", ["batch", "instance"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_module_training_then_eval_matches_torch(cuda_kernels, momentum, norm, layout):
    from genimg_fast.nn import BatchNormAct2d, InstanceNormAct2d
    torch_cls, cls = ((torch.nn.BatchNorm2d, BatchNormAct2d) if norm == "batch"
                      else (torch.nn.InstanceNorm2d, InstanceNormAct2d))
    ref, fused = _module_pair(torch_cls, cls, 24, momentum)
    for step in range(3):
        x, _, _, gy = make((4, 24, 10, 12), torch.float32, layout, 30 + step)
        y_ref, dx_ref = _step(ref, x, gy)
        y, dx = _step(fused, x, gy)
        torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(dx, dx_ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fused.weight.grad, ref[0].weight.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fused.bias.grad, ref[0].bias.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fused.running_mean, ref[0].running_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fused.running_var, ref[0].running_var, rtol=1e-5, atol=1e-6)
    if norm == "batch":
        assert torch.equal(fused.num_batches_tracked, ref[0].num_batches_tracked)
    ref.eval(), fused.eval()
    x, _, _, gy = make((4, 24, 10, 12), torch.float32, layout, 40)
    y_ref, dx_ref = _step(ref, x, gy)
    y, dx = _step(fused, x, gy)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dx, dx_ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compile_fullgraph_training_step(cuda_kernels, backend):
    """torch.compile traces through the C++ autograd (AutogradCUDA) and the mutating update."""
    from genimg_fast.nn import BatchNormAct2d
    ref, fused = _module_pair(torch.nn.BatchNorm2d, BatchNormAct2d, 16, 0.1)
    compiled = torch.compile(fused, fullgraph=True, backend=backend)
    for step in range(2):
        x, _, _, gy = make((8, 16, 6, 6), torch.float32, "contiguous", 50 + step)
        y_ref, dx_ref = _step(ref, x, gy)
        y, dx = _step(compiled, x, gy)
        torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(dx, dx_ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fused.weight.grad, ref[0].weight.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fused.running_mean, ref[0].running_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fused.running_var, ref[0].running_var, rtol=1e-5, atol=1e-6)
    assert torch.equal(fused.num_batches_tracked, ref[0].num_batches_tracked)


@pytest.mark.parametrize("shape,layout", [
    (shape, layout) for shape in [(128, 3, 4, 4), (2, 3, 40, 40), (64, 3, 32, 32)]
    for layout in ("contiguous", "channels_last") if path_taken(shape, False, layout) == "tiles"])
@pytest.mark.parametrize("activation,slope", [("relu", 0.0), ("leaky_relu", 0.2)])
def test_nan_inputs_match_the_reference(cuda_kernels, shape, layout, activation, slope):
    check_nan_inputs_match_the_reference(shape, layout, activation, slope)
