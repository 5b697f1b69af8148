"""The CUDA norm + activation kernels against the float64 reference: every element of every
output, all activations x layouts x dtypes x training/eval, batch and instance statistics,
odd channel counts, spatial 1x1 to 256x256, bit-identical repeats, NaN-poisoned outputs."""
from __future__ import annotations

import copy
import os

import pytest
import torch
from cuda_helpers import assert_raises_in_child, poison_allocator, run_in_child

from genimg_fast import _backend
from genimg_fast.ops import (batch_norm_act_train_, norm_act_apply, norm_act_backward_apply, norm_act_backward_reduce,
                             norm_act_stats, norm_act_train, norm_act_train_backward, update_running_stats_,
                             update_tracked_running_stats_)
from genimg_fast.ops import _norm_act_math as ref

pytestmark = pytest.mark.cuda

ACTIVATIONS = [("identity", 0.0), ("relu", 0.0), ("leaky_relu", 0.2)]
# Relative to the largest reference magnitude of each output.
TOLERANCE = {torch.float64: 1e-10, torch.float32: 2e-5, torch.float16: 4e-3, torch.bfloat16: 2e-2}


def _cluster_takes(count: int) -> bool:
    """Whether an NCHW group of `count` (2049-32768) values takes one cluster of blocks (one
    launch each way) instead of the tile path: on GPUs of compute capability 9.0 and later, unless
    GENIMG_FAST_NORM_CLUSTER_MAX caps the cluster kernels below it (gpu_check.sh sets it to 0 when
    its smoke test of the cluster kernels fails) or the cluster kernel path may not run."""
    cap = int(os.environ.get("GENIMG_FAST_NORM_CLUSTER_MAX") or 32768)
    enabled = "norm_cluster" in _backend._kernels.enabled_kernel_paths()
    return torch.cuda.get_device_capability() >= (9, 0) and count <= cap and enabled


def _layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    if layout == "sliced":  # not dense: read through a dense copy, output still like empty_like(x)
        wide = torch.empty(*x.shape[:3], x.shape[3] + 2, dtype=x.dtype, device=x.device)
        wide[..., 1:-1] = x
        return wide[..., 1:-1]
    return x.contiguous()


def _make(shape, dtype, layout, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    x = (torch.randn(shape, generator=g, device="cuda") * 1.5 + 0.3).to(dtype)
    c = shape[1]
    w = torch.randn(c, generator=g, device="cuda")
    b = torch.randn(c, generator=g, device="cuda")
    gy = torch.randn(shape, generator=g, device="cuda").to(dtype)
    return _layout(x, layout), w, b, _layout(gy, layout)


def _close(actual, expected, dtype, mask=None, what=""):
    actual, expected = actual.double().cpu(), expected.double().cpu()
    assert not torch.isnan(actual).any(), f"{what}: NaN in output (an element left unwritten?)"
    if mask is not None:
        actual, expected = actual[mask], expected[mask]
    scale = max(expected.abs().max().item(), 1e-30)
    torch.testing.assert_close(actual, expected, rtol=0, atol=TOLERANCE[dtype] * scale, msg=lambda m: f"{what}: {m}")


def _away_from_kink(x64, mean, var, w, b, eps, activation):
    """Elements whose z is not within rounding of the activation's kink at 0 (where fp32 and
    fp64 may legitimately pick different sides)."""
    if activation == "identity":
        return None
    z, _, _ = ref.pre_activation(x64, mean, var, w, b, eps)
    return z.abs() > 1e-4 * z.abs().max()


def _check_train(shape, dtype, layout, per_sample, activation, slope, affine=True, seed=0):
    x, w, b, gy = _make(shape, dtype, layout, seed)
    w, b = (w, b) if affine else (None, None)
    eps = 1e-5
    poison_allocator(x.numel() * x.element_size())
    y, mean, var = norm_act_train(x, w, b, per_sample, eps, activation, slope)
    dx, dw, db = norm_act_train_backward(gy, x, mean, var, w, b, eps, activation, slope)

    x64, gy64 = x.double().cpu(), gy.double().cpu()
    w64 = None if w is None else w.double().cpu()
    b64 = None if b is None else b.double().cpu()
    mean64, var64 = ref.stats(x64, per_sample)
    _close(mean, mean64, dtype, what="mean")
    _close(var, var64, dtype, what="var")
    _close(y, ref.apply(x64, mean64, var64, w64, b64, eps, activation, slope), dtype, what="y")
    assert y.stride() == torch.empty_like(x).stride()
    mask = _away_from_kink(x64, mean64, var64, w64, b64, eps, activation)
    sum_dz, sum_dz_xhat = ref.backward_reduce(gy64, x64, mean64, var64, w64, b64, eps, activation, slope)
    count = ref.group_count(x64, per_sample)
    want_dx = ref.backward_apply(gy64, x64, mean64, var64, w64, b64, sum_dz, sum_dz_xhat, count, eps, activation,
                                 slope)
    want_dw, want_db = ref.param_grads(sum_dz, sum_dz_xhat)
    _close(dx, want_dx, dtype, mask, what="dx")
    _close(dw, want_dw, dtype, what="dweight")
    _close(db, want_db, dtype, what="dbias")
    return x, (y, mean, var, dx, dw, db)


@pytest.mark.parametrize("activation,slope", ACTIVATIONS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "sliced"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("per_sample", [False, True], ids=["batch", "instance"])
def test_train_forward_backward(cuda_kernels, per_sample, dtype, layout, activation, slope):
    _check_train((3, 37, 9, 11), dtype, layout, per_sample, activation, slope)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("per_sample", [False, True], ids=["batch", "instance"])
def test_vector_path_every_dtype(cuda_kernels, dtype, per_sample):
    """S = 96 is a multiple of every vector width (2, 4 and 8 elements): 16-byte accesses."""
    _check_train((3, 37, 8, 12), dtype, "contiguous", per_sample, "leaky_relu", 0.2)


@pytest.mark.parametrize("shape", [(4, 6, 8, 8), (2, 6, 32, 32), (1, 6, 64, 64)], ids=["tiles", "block", "cluster"])
@pytest.mark.parametrize("per_sample", [False, True], ids=["batch", "instance"])
def test_misaligned_tensors_take_the_element_path(cuda_kernels, per_sample, shape):
    """Dense views that start one element into their storage are not 16-byte aligned."""
    n = torch.Size(shape).numel()
    x = (torch.randn(n + 1, device="cuda") * 2 + 0.5)[1:].view(shape)
    assert x.data_ptr() % 16 != 0
    gy = torch.randn(n + 1, device="cuda")[1:].view(shape)
    w, b = torch.randn(6, device="cuda"), torch.randn(6, device="cuda")
    y, mean, var = norm_act_train(x, w, b, per_sample, 1e-5, "relu", 0.0)
    dx, dw, db = norm_act_train_backward(gy, x, mean, var, w, b, 1e-5, "relu", 0.0)
    x64, gy64, w64, b64 = x.double().cpu(), gy.double().cpu(), w.double().cpu(), b.double().cpu()
    mean64, var64 = ref.stats(x64, per_sample)
    _close(y, ref.apply(x64, mean64, var64, w64, b64, 1e-5, "relu", 0.0), torch.float32, what="y")
    sums = ref.backward_reduce(gy64, x64, mean64, var64, w64, b64, 1e-5, "relu", 0.0)
    want_dx = ref.backward_apply(gy64, x64, mean64, var64, w64, b64, *sums, ref.group_count(x64, per_sample),
                                 1e-5, "relu", 0.0)
    mask = _away_from_kink(x64, mean64, var64, w64, b64, 1e-5, "relu")
    _close(dx, want_dx, torch.float32, mask, what="dx")
    want_dw, want_db = ref.param_grads(*sums)
    _close(dw, want_dw, torch.float32, what="dweight")
    _close(db, want_db, torch.float32, what="dbias")


@pytest.mark.parametrize(
    "shape,per_sample",
    [
        ((128, 512, 4, 4), False),    # DCGAN G after the first ConvTranspose
        ((16, 64, 1, 1), False),      # 1x1 spatial: NCHW and NHWC coincide
        ((64, 128, 16, 16), False),   # DCGAN D
        ((2, 3, 67, 129), False),     # runs longer than a tile
        ((64, 3, 64, 64), False),     # channels_last: 2048 row tiles of 128 would be too many partials
        ((5, 7, 123, 117), False),    # channels_last: the same, rows not a multiple of the longer tiles
        ((1, 64, 256, 256), True),    # CycleGAN at batch 1: planes split across blocks
        ((4, 256, 64, 64), True),
        ((1, 33, 5, 4099), True),     # odd channels, run longer than one tile
    ],
)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_model_shapes(cuda_kernels, shape, per_sample, layout):
    _check_train(shape, torch.float32, layout, per_sample, "relu", 0.0)


BLOCK_SHAPES = [  # NCHW groups of 512..2048 values take one block each; the edges and past them
    ((511, 3, 1, 1), False),    # 511 a channel: the tile path, just below
    ((32, 7, 4, 4), False),     # 512 a channel: the smallest block group
    ((1024, 5, 1, 1), False),   # 1024 runs of one value each (S = 1)
    ((3, 5, 227, 1), False),    # 681: runs of odd length
    ((8, 9, 16, 16), False),    # 2048: the largest
    ((2, 5, 16, 32), True),     # instance norm, 512 a plane
    ((2, 3, 23, 43), True),     # 989
    ((1, 4, 32, 64), True),     # 2048
]

CLUSTER_SHAPES = [  # groups of 2049..32768 take a cluster of 2-8 blocks each on Hopper (else the tile path)
    ((3, 5, 683, 1), False),     # 2049: the smallest, runs of odd length
    ((4096, 3, 1, 1), False),    # 4096 runs of one value each
    ((128, 6, 8, 8), False),     # 8192: DCGAN's 8x8 layer at batch 128 (4 values a thread, 8 blocks)
    ((128, 3, 8, 9), False),     # 9216: 8 values a thread
    ((3, 5, 101, 107), False),   # 32421: 16 values a thread, odd runs
    ((128, 2, 16, 16), False),   # 32768: the largest
    ((2, 3, 129, 254), False),   # 65532: the tile path
    ((1, 4, 45, 91), True),      # instance norm, 4095 a plane
    ((2, 3, 64, 64), True),      # 4096
    ((1, 3, 128, 128), True),    # 16384: CycleGAN's 128x128 layers
    ((1, 2, 181, 181), True),    # 32761
]


@pytest.mark.parametrize("shape,per_sample", BLOCK_SHAPES + CLUSTER_SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("activation,slope", [("relu", 0.0), ("leaky_relu", 0.2)])
def test_one_launch_groups(cuda_kernels, shape, per_sample, dtype, activation, slope):
    _check_train(shape, dtype, "contiguous", per_sample, activation, slope)


@pytest.mark.parametrize("shape,per_sample", [((8, 9, 16, 16), False), ((2, 3, 23, 43), True),
                                              ((128, 6, 8, 8), False), ((1, 3, 128, 128), True)])
def test_one_launch_groups_without_affine_or_activation(cuda_kernels, shape, per_sample):
    _check_train(shape, torch.float32, "contiguous", per_sample, "identity", 0.0, affine=False)


@pytest.mark.parametrize("shape,per_sample", [
    ((32, 7, 4, 4), False), ((8, 9, 16, 16), False), ((1, 4, 32, 64), True),  # a block a group
    ((3, 5, 683, 1), False), ((128, 6, 8, 8), False), ((128, 3, 8, 9), False), ((3, 5, 101, 107), False),
    ((128, 2, 16, 16), False), ((1, 3, 64, 64), True), ((1, 2, 181, 181), True),  # a cluster a group
])
def test_one_launch_groups_apply_what_they_publish_bitwise(cuda_kernels, shape, per_sample):
    """The one-launch kernels reduce and apply in one pass, each block with its own copy of the
    group's statistics (forward) and sums (backward); a cluster's blocks combine their totals
    through each other's shared memory. Every block must apply exactly what the group publishes:
    the outputs equal, bit for bit, the apply ops' given the published mean/var and sums (the same
    per-element formulas). Instance norm at batch 1, where dweight/dbias are the group sums."""
    x, w, b, gy = _make(shape, torch.float32, "contiguous", 31)
    poison_allocator(x.numel() * 4)
    y, mean, var = norm_act_train(x, w, b, per_sample, 1e-5, "leaky_relu", 0.2)
    assert torch.equal(y, norm_act_apply(x, mean, var, w, b, 1e-5, "leaky_relu", 0.2))
    dx, dw, db = norm_act_train_backward(gy, x, mean, var, w, b, 1e-5, "leaky_relu", 0.2)
    count = float(shape[2] * shape[3] * (1 if per_sample else shape[0]))
    sum_dz, sum_dz_xhat = db.view(mean.shape), dw.view(mean.shape)
    dx_p = norm_act_backward_apply(gy, x, mean, var, w, b, sum_dz, sum_dz_xhat, count, 1e-5, "leaky_relu", 0.2)
    assert torch.equal(dx, dx_p)
    again = norm_act_train(x, w, b, per_sample, 1e-5, "leaky_relu", 0.2)
    assert all(torch.equal(first, second) for first, second in zip((y, mean, var), again))  # every run


@pytest.mark.parametrize("shape,layout,launches", [((128, 512, 4, 4), "contiguous", 1),
                                                   ((128, 256, 8, 8), "contiguous", "cluster"),
                                                   ((128, 128, 16, 16), "contiguous", "cluster"),
                                                   ((128, 64, 32, 32), "contiguous", 2),
                                                   ((128, 512, 4, 4), "channels_last", 3)])
def test_training_op_launches(cuda_kernels, shape, layout, launches):
    """Launches each way: one for block groups, and for cluster groups where the GPU has
    clusters (the tile path's two otherwise); two for the tile path whose elementwise pass merges
    the partials; three where a channels_last tile would merge too many (16 row tiles x 32
    channels here), with a separate merge."""
    from genimg_fast.bench.timing import count_launches
    if launches == "cluster":
        launches = 1 if _cluster_takes(shape[0] * shape[2] * shape[3]) else 2
    x, w, b, gy = _make(shape, torch.float32, layout, 3)
    y, mean, var = norm_act_train(x, w, b, False, 1e-5, "relu", 0.0)
    device = torch.device("cuda")
    assert count_launches(lambda: norm_act_train(x, w, b, False, 1e-5, "relu", 0.0), device) == launches
    assert count_launches(lambda: norm_act_train_backward(gy, x, mean, var, w, b, 1e-5, "relu", 0.0),
                          device) == launches


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_no_affine(cuda_kernels, layout):
    _check_train((4, 7, 8, 8), torch.float32, layout, True, "leaky_relu", 0.2, affine=False)


@pytest.mark.parametrize("activation,slope", ACTIVATIONS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_eval_apply_and_its_gradients(cuda_kernels, dtype, layout, activation, slope):
    x, w, b, gy = _make((5, 19, 7, 6), dtype, layout, 4)
    rm = torch.randn(19, device="cuda")
    rv = torch.rand(19, device="cuda") + 0.5
    xr, wr, br = x.detach().requires_grad_(), w.detach().requires_grad_(), b.detach().requires_grad_()
    y = norm_act_apply(xr, rm, rv, wr, br, 1e-5, activation, slope)
    dx, dw, db = torch.autograd.grad(y, (xr, wr, br), gy)
    x64, gy64, rm64, rv64 = x.double().cpu(), gy.double().cpu(), rm.double().cpu(), rv.double().cpu()
    w64, b64 = w.double().cpu(), b.double().cpu()
    _close(y, ref.apply(x64, rm64, rv64, w64, b64, 1e-5, activation, slope), dtype, what="y")
    mask = _away_from_kink(x64, rm64, rv64, w64, b64, 1e-5, activation)
    want_dx = ref.backward_apply(gy64, x64, rm64, rv64, w64, b64, None, None, 1.0, 1e-5, activation, slope)
    _close(dx, want_dx, dtype, mask, what="dx")
    sum_dz, sum_dz_xhat = ref.backward_reduce(gy64, x64, rm64, rv64, w64, b64, 1e-5, activation, slope)
    _close(dw, sum_dz_xhat, dtype, what="dweight")
    _close(db, sum_dz, dtype, what="dbias")


def test_pieces_match_the_fused_op(cuda_kernels):
    x, w, b, gy = _make((6, 40, 10, 10), torch.float32, "channels_last", 8)
    y, mean, var = norm_act_train(x, w, b, False, 1e-5, "relu", 0.0)
    mean2, var2 = norm_act_stats(x, False)
    assert torch.equal(mean, mean2) and torch.equal(var, var2)
    assert torch.equal(y, norm_act_apply(x, mean, var, w, b, 1e-5, "relu", 0.0))
    dx, _, _ = norm_act_train_backward(gy, x, mean, var, w, b, 1e-5, "relu", 0.0)
    sums = norm_act_backward_reduce(gy, x, mean, var, w, b, 1e-5, "relu", 0.0)
    dx2 = norm_act_backward_apply(gy, x, mean, var, w, b, *sums, float(6 * 100), 1e-5, "relu", 0.0)
    assert torch.equal(dx, dx2)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_bit_identical_repeats(cuda_kernels, layout):
    first_x, first = _check_train((8, 64, 32, 32), torch.float32, layout, False, "leaky_relu", 0.2, seed=3)
    for _ in range(2):
        _, again = _check_train((8, 64, 32, 32), torch.float32, layout, False, "leaky_relu", 0.2, seed=3)
        for a, b in zip(first, again):
            assert torch.equal(a, b)


def test_gradient_in_another_layout_than_x(cuda_kernels):
    x, w, b, gy = _make((4, 8, 6, 6), torch.float32, "channels_last", 2)
    y, mean, var = norm_act_train(x, w, b, False, 1e-5, "relu", 0.0)
    dx_cl, _, _ = norm_act_train_backward(gy, x, mean, var, w, b, 1e-5, "relu", 0.0)
    dx_nchw, _, _ = norm_act_train_backward(gy.contiguous(), x, mean, var, w, b, 1e-5, "relu", 0.0)
    torch.testing.assert_close(dx_cl, dx_nchw, rtol=0, atol=0)


@pytest.mark.parametrize("per_sample", [False, True])
def test_running_stats_update(cuda_kernels, per_sample):
    x, _, _, _ = _make((6, 10, 5, 5), torch.float32, "contiguous", 6)
    _, mean, var = norm_act_train(x, None, None, per_sample, 1e-5, "identity", 0.0)
    rm, rv = torch.randn(10, device="cuda"), torch.rand(10, device="cuda") + 0.5
    rm_ref, rv_ref = rm.cpu().double(), rv.cpu().double()
    count = 25 if per_sample else 150
    update_running_stats_(rm, rv, mean, var, count, 0.3)
    ref.update_running_stats(rm_ref, rv_ref, mean.cpu().double(), var.cpu().double(), count, 0.3)
    torch.testing.assert_close(rm.double().cpu(), rm_ref, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(rv.double().cpu(), rv_ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("per_sample", [False, True])
# one and several partials per group (groups of over 32768 values: the one-launch paths take none)
@pytest.mark.parametrize("shape", [(3, 40, 9, 7), (2, 5, 192, 192)])
def test_fused_training_ops_equal_their_pieces_bitwise(cuda_kernels, layout, per_sample, shape):
    """The training ops merge the reduction partials inside the elementwise pass; the merge is the
    same code in the same order as the separate merge kernel of the pieces, so results match
    bit for bit, and every group's statistics and sums are published. (Tile-path shapes only:
    NCHW groups of 512-32768 values take the one-launch kernels, whose two-pass statistics
    round apart from the pieces' Welford merge; test_one_launch_groups and
    test_one_launch_groups_apply_what_they_publish_bitwise check those.)"""
    x, w, b, gy = _make(shape, torch.float32, layout, 13)
    poison_allocator(x.numel() * 4)
    y, mean, var = norm_act_train(x, w, b, per_sample, 1e-5, "leaky_relu", 0.2)
    mean_p, var_p = norm_act_stats(x, per_sample)
    y_p = norm_act_apply(x, mean_p, var_p, w, b, 1e-5, "leaky_relu", 0.2)
    assert torch.equal(mean, mean_p) and torch.equal(var, var_p) and torch.equal(y, y_p)
    dx, dw, db = norm_act_train_backward(gy, x, mean, var, w, b, 1e-5, "leaky_relu", 0.2)
    sum_dz, sum_dz_xhat = norm_act_backward_reduce(gy, x, mean, var, w, b, 1e-5, "leaky_relu", 0.2)
    count = float(shape[2] * shape[3] * (1 if per_sample else shape[0]))
    dx_p = norm_act_backward_apply(gy, x, mean, var, w, b, sum_dz, sum_dz_xhat, count, 1e-5, "leaky_relu", 0.2)
    assert torch.equal(dx, dx_p)
    want_dw, want_db = (sum_dz_xhat.sum(0), sum_dz.sum(0)) if per_sample else (sum_dz_xhat, sum_dz)
    assert torch.equal(dw, want_dw) and torch.equal(db, want_db)


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("buffers", ["float32", "float16"])  # fp16 buffers (model.half()) take the tensor-math path
def test_running_stats_with_batch_counter(cuda_kernels, momentum, buffers):
    dtype = getattr(torch, buffers)
    rm, rv = torch.randn(10, device="cuda").to(dtype), (torch.rand(10, device="cuda") + 0.5).to(dtype)
    tracked = torch.tensor(3, device="cuda")
    rm_ref, rv_ref, tracked_ref = rm.cpu().double(), rv.cpu().double(), tracked.clone().cpu()
    for seed in (7, 8):
        x, _, _, _ = _make((6, 10, 5, 5), torch.float32, "contiguous", seed)
        _, mean, var = norm_act_train(x, None, None, False, 1e-5, "identity", 0.0)
        update_tracked_running_stats_(rm, rv, tracked, mean, var, 150, momentum)
        ref.update_running_stats(rm_ref, rv_ref, mean.cpu().double(), var.cpu().double(), 150, momentum, tracked_ref)
    assert tracked.item() == tracked_ref.item() == 5
    tol = 1e-6 if buffers == "float32" else 2e-3
    torch.testing.assert_close(rm.double().cpu(), rm_ref, rtol=tol, atol=tol)
    torch.testing.assert_close(rv.double().cpu(), rv_ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
# the tile path's merged and separate merges, a block group, and a cluster group (18432
# values a channel; the tile path's several partials a channel in channels_last)
@pytest.mark.parametrize("shape", [(3, 40, 9, 7), (2, 5, 96, 96), (64, 48, 4, 4)])
def test_forward_that_updates_running_stats_equals_its_two_ops_bitwise(cuda_kernels, dtype, layout, shape):
    """batch_norm_act_train_ blends the running statistics in the pass that publishes the batch
    statistics, with the update kernel's formula: the same bits as norm_act_train followed by
    update_tracked_running_stats_, and every channel updated, the counter once."""
    x, w, b, gy = _make(shape, dtype, layout, 21)
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    c = shape[1]
    running = [torch.randn(c, device="cuda", dtype=acc), torch.rand(c, device="cuda", dtype=acc) + 0.5,
               torch.tensor(4, device="cuda")]
    expected = [t.clone() for t in running]
    poison_allocator(x.numel() * 8)
    y, mean, var = batch_norm_act_train_(x, w, b, *running, 0.1, 1e-5, "leaky_relu", 0.2)
    y_p, mean_p, var_p = norm_act_train(x, w, b, False, 1e-5, "leaky_relu", 0.2)
    update_tracked_running_stats_(*expected, mean_p, var_p, x.numel() // c, 0.1)
    assert torch.equal(y, y_p) and torch.equal(mean, mean_p) and torch.equal(var, var_p)
    for got, want in zip(running, expected):
        assert torch.equal(got, want)
    assert running[2].item() == 5


@pytest.mark.parametrize("buffers", ["float16", "view"])
def test_forward_that_updates_running_stats_of_other_buffers(cuda_kernels, buffers):
    """Buffers the kernels cannot write (model.half()'s fp16, strided views) are updated after them."""
    x, w, b, _ = _make((6, 10, 5, 5), torch.float32, "contiguous", 22)
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


@pytest.mark.parametrize("shape,launches", [((128, 16, 4, 4), 1), ((16, 16, 32, 32), "cluster"),
                                            ((64, 16, 32, 32), 2)])
def test_batch_norm_training_forward_launches(cuda_kernels, shape, launches):
    """BatchNormAct2d's training forward updates its running statistics without a launch of its
    own: one block per channel (2048 values a channel), one cluster per channel (16384, on
    Hopper), or statistics partials then merge + apply + update (16384 without clusters, 65536)."""
    from genimg_fast.bench.timing import count_launches
    from genimg_fast.nn import BatchNormAct2d
    if launches == "cluster":
        launches = 1 if _cluster_takes(shape[0] * shape[2] * shape[3]) else 2
    module = BatchNormAct2d(16).cuda()
    x = torch.randn(shape, device="cuda")
    assert count_launches(lambda: module(x), torch.device("cuda")) == launches
    assert module.num_batches_tracked.item() == 2  # count_launches calls it twice


_BN_STEP_IN_CHILD = """
import sys, torch
from genimg_fast.bench.timing import count_launches
from genimg_fast.nn import BatchNormAct2d
torch.manual_seed(0)
module = BatchNormAct2d(16, activation="leaky_relu", negative_slope=0.2).cuda()
x = torch.randn(*map(int, sys.argv[2].split("x")), device="cuda", requires_grad=True)
gy = torch.randn_like(x)
y = module(x)
grads = torch.autograd.grad(y, [x, module.weight, module.bias], gy)
torch.save([t.cpu() for t in (y, *grads, module.running_var)], sys.argv[1])
print("launches", count_launches(lambda: module(x), torch.device("cuda")))
"""


@pytest.mark.parametrize("shape,variable,caps", [
    ("128x16x4x4", "GENIMG_FAST_NORM_BLOCK_MAX", {"": "1", "0": "2"}),  # a block a channel
    ("128x16x8x8", "GENIMG_FAST_NORM_CLUSTER_MAX", {"": "cluster", "2048": "2", "0": "2"})])
def test_cap_sends_its_groups_down_the_tile_path(cuda_kernels, tmp_path, shape, variable, caps):
    """GENIMG_FAST_NORM_BLOCK_MAX=N or GENIMG_FAST_NORM_CLUSTER_MAX=N (for timing the paths at one
    shape) sends that path's groups of over N values down the tile path: a block shape (2048
    values a channel) and a cluster shape (8192) train there in two launches instead of one, to
    the same numbers within fp32 rounding."""
    if caps[""] == "cluster" and os.environ.get(variable):
        pytest.skip(f"this run caps the cluster kernels ({variable}): its default case would not")
    results = {}
    for cap in caps:
        out = tmp_path / f"cap{cap or 'default'}.pt"
        run = run_in_child(_BN_STEP_IN_CHILD, (str(out), shape), env={variable: cap}, timeout=300)
        results[cap] = (run.stdout.split()[-1], torch.load(out))
    for cap, launches in caps.items():
        if launches == "cluster":
            launches = "1" if _cluster_takes(128 * 8 * 8) else "2"
        assert results[cap][0] == launches, f"{variable}={cap!r}"
    for fused, tile in zip(results[""][1], results["0"][1]):  # each within TOLERANCE of exact
        scale = fused.abs().max().item()
        torch.testing.assert_close(tile, fused, rtol=0, atol=2 * TOLERANCE[torch.float32] * scale)


def test_backend_info_says_whether_norm_groups_take_clusters(cuda_kernels):
    """backend_info()["norm_kernels"]: the block and cluster caps and whether this GPU runs the
    cluster kernels."""
    import genimg_fast
    paths = genimg_fast.backend_info()["norm_kernels"]
    assert paths["clusters"] == (torch.cuda.get_device_capability() >= (9, 0))
    assert paths["block_max_group"] == int(os.environ.get("GENIMG_FAST_NORM_BLOCK_MAX") or 2048)
    assert paths["cluster_max_group"] == int(os.environ.get("GENIMG_FAST_NORM_CLUSTER_MAX") or 32768)


def test_block_cap_refuses_a_malformed_value(cuda_kernels):
    assert_raises_in_child("ops.norm_act_train(torch.randn(8, 4, 8, 8, device='cuda'), None, None, False, 1e-5, "
                           "'relu', 0.0)", "RuntimeError", "GENIMG_FAST_NORM_BLOCK_MAX must be a whole number",
                           env={"GENIMG_FAST_NORM_BLOCK_MAX": "lots"})


@pytest.mark.parametrize("momentum", [0.1, None])
def test_training_step_never_syncs_with_the_host(cuda_kernels, momentum):
    """A fused BN training step (momentum=None included) queues work without waiting for the GPU."""
    from genimg_fast.nn import BatchNormAct2d
    module = BatchNormAct2d(16, momentum=momentum).cuda()
    x = torch.randn(8, 16, 8, 8, device="cuda", requires_grad=True)
    module(x).sum().backward()  # warm up (first calls may allocate and look up kernels)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        module(x).sum().backward()
        module.eval()(x).sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")


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
    "sums on the cpu": ("ops.norm_act_backward_apply(torch.randn(2, 3, 4, 4, device='cuda'), torch.randn(2, 3, 4, 4, "
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
    x, w, b, gy = _make((2, 5, 4, 3), torch.float32, "channels_last", 1)
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


def test_cuda_graph_capture_of_a_training_step(cuda_kernels):
    x, w, b, gy = _make((8, 32, 16, 16), torch.float32, "contiguous", 12)
    x.requires_grad_()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            y, _, _ = norm_act_train(x, w, b, False, 1e-5, "relu", 0.0)
            torch.autograd.grad(y, x, gy)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y, mean, var = norm_act_train(x, w, b, False, 1e-5, "relu", 0.0)
        (dx,) = torch.autograd.grad(y, x, gy)
    for _ in range(2):
        with torch.no_grad():
            x.copy_(torch.randn_like(x))
        graph.replay()
        torch.cuda.synchronize()
        y2, m2, v2 = norm_act_train(x.detach(), w, b, False, 1e-5, "relu", 0.0)
        dx2, _, _ = norm_act_train_backward(gy, x.detach(), m2, v2, w, b, 1e-5, "relu", 0.0)
        assert torch.equal(y, y2) and torch.equal(dx, dx2)


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
        x, _, _, gy = _make((4, 24, 10, 12), torch.float32, layout, 30 + step)
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
    x, _, _, gy = _make((4, 24, 10, 12), torch.float32, layout, 40)
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
        x, _, _, gy = _make((8, 16, 6, 6), torch.float32, "contiguous", 50 + step)
        y_ref, dx_ref = _step(ref, x, gy)
        y, dx = _step(compiled, x, gy)
        torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(dx, dx_ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fused.weight.grad, ref[0].weight.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fused.running_mean, ref[0].running_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fused.running_var, ref[0].running_var, rtol=1e-5, atol=1e-6)
    assert torch.equal(fused.num_batches_tracked, ref[0].num_batches_tracked)


# a block a group; a cluster a group (the tile path without clusters, and in channels_last); the tile path
@pytest.mark.parametrize("shape", [(128, 3, 4, 4), (2, 3, 40, 40), (64, 3, 32, 32)])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("activation,slope", [("relu", 0.0), ("leaky_relu", 0.2)])
def test_nan_inputs_match_the_reference(cuda_kernels, shape, layout, activation, slope):
    """A NaN goes through the activations as through torch's: relu(NaN) = NaN and the gradient
    passes there; in eval mode the rest stays finite, in training the NaN's group turns NaN."""
    x, w, b, gy = _make(shape, torch.float32, layout, seed=3)
    x = x.clone()
    x[1, 1, 2, 3] = float("nan")
    eps = 1e-5
    x64, gy64, w64, b64 = x.double().cpu(), gy.double().cpu(), w.double().cpu(), b.double().cpu()
    mean, var = torch.randn(3, device="cuda") * 0.2, torch.rand(3, device="cuda") + 0.5
    mean64, var64 = mean.double().cpu(), var.double().cpu()

    def close(actual, expected, what):
        torch.testing.assert_close(actual.double().cpu(), expected, rtol=1e-4, atol=1e-4, equal_nan=True,
                                   msg=lambda m: f"{what}: {m}")

    y = norm_act_apply(x, mean, var, w, b, eps, activation, slope)  # eval: running statistics
    close(y, ref.apply(x64, mean64, var64, w64, b64, eps, activation, slope), "eval y")
    dx = norm_act_backward_apply(gy, x, mean, var, w, b, None, None, 1.0, eps, activation, slope)
    close(dx, ref.backward_apply(gy64, x64, mean64, var64, w64, b64, None, None, 1.0, eps, activation, slope),
          "eval dx")
    assert torch.isfinite(dx).sum() == dx.numel()  # the gradient passes the NaN's z as torch's relu lets it

    y, bmean, bvar = norm_act_train(x, w, b, False, eps, activation, slope)  # training: batch statistics
    bmean64, bvar64 = ref.stats(x64, False)
    close(y, ref.apply(x64, bmean64, bvar64, w64, b64, eps, activation, slope), "train y")
    assert torch.isnan(y[:, 1]).all() and torch.isfinite(y[:, [0, 2]]).all()
    dx, _, _ = norm_act_train_backward(gy, x, bmean, bvar, w, b, eps, activation, slope)
    assert torch.isnan(dx[:, 1]).all() and torch.isfinite(dx[:, [0, 2]]).all()
