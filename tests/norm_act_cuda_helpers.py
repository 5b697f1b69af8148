"""What the CUDA norm + activation tests share (tests/test_norm_act_cuda_*.py, one file per
kernel path of the norm ops: tiles, block, cluster, running_stats): inputs, the comparison with
the float64 reference, and the checks whose cases the path files divide among themselves.

A test belongs to the file of the path its inputs take on a GPU with thread block clusters, every
path on and no cap set (path_taken); a test whose cases take several paths has its cases divided
between the files. Tests of no kernel path of their own (the ops' argument checks, an empty
batch) go with the tile path."""
from __future__ import annotations

import os

import pytest
import torch
from cuda_helpers import poison_allocator, run_in_child

from genimg_fast import _backend
from genimg_fast.ops import (_norm_act_backward_apply, _norm_act_train_backward, batch_norm_act_train_, norm_act_apply,
                             norm_act_train, update_tracked_running_stats_)
from genimg_fast.ops import _norm_act_math as ref

ACTIVATIONS = [("identity", 0.0), ("relu", 0.0), ("leaky_relu", 0.2)]
# Relative to the largest reference magnitude of each output.
TOLERANCE = {torch.float64: 1e-10, torch.float32: 2e-5, torch.float16: 4e-3, torch.bfloat16: 2e-2}


def path_taken(shape, per_sample: bool, layout: str = "contiguous", dtype: torch.dtype = torch.float32) -> str:
    """The training path of an input (csrc/norm_act/train_path.cpp) on a GPU with clusters, every
    path on and no cap set: dense NCHW groups of 512-2048 values a block each, 2049-32768 a
    cluster each (fp32 accumulation only), the rest the tiles."""
    n, _, h, w = shape
    count = h * w if per_sample else n * h * w
    if layout == "channels_last" or dtype == torch.float64 or not 512 <= count <= 32768:
        return "tiles"
    return "block" if count <= 2048 else "cluster"


def cluster_takes(count: int) -> bool:
    """Whether an NCHW group of `count` (2049-32768) values takes one cluster of blocks (one
    launch each way) instead of the tile path: on GPUs of compute capability 9.0 and later, unless
    GENIMG_FAST_NORM_CLUSTER_MAX caps the cluster kernels below it (gpu_check.sh sets it to 0 when
    its smoke test of the cluster kernels fails) or the cluster kernel path may not run."""
    cap = int(os.environ.get("GENIMG_FAST_NORM_CLUSTER_MAX") or 32768)
    enabled = "norm_cluster" in _backend._kernels.enabled_kernel_paths()
    return torch.cuda.get_device_capability() >= (9, 0) and count <= cap and enabled


def to_layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    if layout == "sliced":  # not dense: read through a dense copy, output still like empty_like(x)
        wide = torch.empty(*x.shape[:3], x.shape[3] + 2, dtype=x.dtype, device=x.device)
        wide[..., 1:-1] = x
        return wide[..., 1:-1]
    return x.contiguous()


def make(shape, dtype, layout, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    x = (torch.randn(shape, generator=g, device="cuda") * 1.5 + 0.3).to(dtype)
    c = shape[1]
    w = torch.randn(c, generator=g, device="cuda")
    b = torch.randn(c, generator=g, device="cuda")
    gy = torch.randn(shape, generator=g, device="cuda").to(dtype)
    return to_layout(x, layout), w, b, to_layout(gy, layout)


def check_close(actual, expected, dtype, mask=None, what=""):
    actual, expected = actual.double().cpu(), expected.double().cpu()
    assert not torch.isnan(actual).any(), f"{what}: NaN in output (an element left unwritten?)"
    if mask is not None:
        actual, expected = actual[mask], expected[mask]
    scale = max(expected.abs().max().item(), 1e-30)
    torch.testing.assert_close(actual, expected, rtol=0, atol=TOLERANCE[dtype] * scale, msg=lambda m: f"{what}: {m}")


def away_from_kink(x64, mean, var, w, b, eps, activation):
    """Elements whose z is not within rounding of the activation's kink at 0 (where fp32 and
    fp64 may legitimately pick different sides)."""
    if activation == "identity":
        return None
    z, _, _ = ref.pre_activation(x64, mean, var, w, b, eps)
    return z.abs() > 1e-4 * z.abs().max()


def check_train(shape, dtype, layout, per_sample, activation, slope, affine=True, seed=0):
    x, w, b, gy = make(shape, dtype, layout, seed)
    w, b = (w, b) if affine else (None, None)
    eps = 1e-5
    poison_allocator(x.numel() * x.element_size())
    y, mean, var = norm_act_train(x, w, b, per_sample, eps, activation, slope)
    dx, dw, db = _norm_act_train_backward(gy, x, mean, var, w, b, eps, activation, slope)

    x64, gy64 = x.double().cpu(), gy.double().cpu()
    w64 = None if w is None else w.double().cpu()
    b64 = None if b is None else b.double().cpu()
    mean64, var64 = ref.stats(x64, per_sample)
    check_close(mean, mean64, dtype, what="mean")
    check_close(var, var64, dtype, what="var")
    check_close(y, ref.apply(x64, mean64, var64, w64, b64, eps, activation, slope), dtype, what="y")
    assert y.stride() == torch.empty_like(x).stride()
    mask = away_from_kink(x64, mean64, var64, w64, b64, eps, activation)
    sum_dz, sum_dz_xhat = ref.backward_reduce(gy64, x64, mean64, var64, w64, b64, eps, activation, slope)
    count = ref.group_count(x64, per_sample)
    want_dx = ref.backward_apply(gy64, x64, mean64, var64, w64, b64, sum_dz, sum_dz_xhat, count, eps, activation,
                                 slope)
    want_dw, want_db = ref.param_grads(sum_dz, sum_dz_xhat)
    check_close(dx, want_dx, dtype, mask, what="dx")
    check_close(dw, want_dw, dtype, what="dweight")
    check_close(db, want_db, dtype, what="dbias")
    return x, (y, mean, var, dx, dw, db)


# (N, C, H, W) and per_sample of the models' layers, in both layouts (test_model_shapes)
MODEL_SHAPES = [
        ((128, 512, 4, 4), False),    # DCGAN G after the first ConvTranspose
        ((16, 64, 1, 1), False),      # 1x1 spatial: NCHW and NHWC coincide
        ((64, 128, 16, 16), False),   # DCGAN D
        ((2, 3, 67, 129), False),     # runs longer than a tile
        ((64, 3, 64, 64), False),     # channels_last: 2048 row tiles of 128 would be too many partials
        ((5, 7, 123, 117), False),    # channels_last: the same, rows not a multiple of the longer tiles
        ((1, 64, 256, 256), True),    # CycleGAN at batch 1: planes split across blocks
        ((4, 256, 64, 64), True),
        ((1, 33, 5, 4099), True),     # odd channels, run longer than one tile
    ]


# ---- the checks whose cases the path files divide among themselves ----

def check_misaligned_tensors(per_sample, shape):
    """Dense views that start one element into their storage are not 16-byte aligned."""
    n = torch.Size(shape).numel()
    x = (torch.randn(n + 1, device="cuda") * 2 + 0.5)[1:].view(shape)
    assert x.data_ptr() % 16 != 0
    gy = torch.randn(n + 1, device="cuda")[1:].view(shape)
    w, b = torch.randn(6, device="cuda"), torch.randn(6, device="cuda")
    y, mean, var = norm_act_train(x, w, b, per_sample, 1e-5, "relu", 0.0)
    dx, dw, db = _norm_act_train_backward(gy, x, mean, var, w, b, 1e-5, "relu", 0.0)
    x64, gy64, w64, b64 = x.double().cpu(), gy.double().cpu(), w.double().cpu(), b.double().cpu()
    mean64, var64 = ref.stats(x64, per_sample)
    check_close(y, ref.apply(x64, mean64, var64, w64, b64, 1e-5, "relu", 0.0), torch.float32, what="y")
    sums = ref.backward_reduce(gy64, x64, mean64, var64, w64, b64, 1e-5, "relu", 0.0)
    want_dx = ref.backward_apply(gy64, x64, mean64, var64, w64, b64, *sums, ref.group_count(x64, per_sample),
                                 1e-5, "relu", 0.0)
    mask = away_from_kink(x64, mean64, var64, w64, b64, 1e-5, "relu")
    check_close(dx, want_dx, torch.float32, mask, what="dx")
    want_dw, want_db = ref.param_grads(*sums)
    check_close(dw, want_dw, torch.float32, what="dweight")
    check_close(db, want_db, torch.float32, what="dbias")


def check_groups_apply_what_they_publish_bitwise(shape, per_sample):
    """The block and cluster kernels reduce and apply in one pass, each block with its own copy of the
    group's statistics (forward) and sums (backward); a cluster's blocks combine their totals
    through each other's shared memory. Every block must apply exactly what the group publishes:
    the outputs equal, bit for bit, the apply ops' given the published mean/var and sums (the same
    per-element formulas). Instance norm at batch 1, where dweight/dbias are the group sums."""
    x, w, b, gy = make(shape, torch.float32, "contiguous", 31)
    poison_allocator(x.numel() * 4)
    y, mean, var = norm_act_train(x, w, b, per_sample, 1e-5, "leaky_relu", 0.2)
    assert torch.equal(y, norm_act_apply(x, mean, var, w, b, 1e-5, "leaky_relu", 0.2))
    dx, dw, db = _norm_act_train_backward(gy, x, mean, var, w, b, 1e-5, "leaky_relu", 0.2)
    count = float(shape[2] * shape[3] * (1 if per_sample else shape[0]))
    sum_dz, sum_dz_xhat = db.view(mean.shape), dw.view(mean.shape)
    dx_p = _norm_act_backward_apply(gy, x, mean, var, w, b, sum_dz, sum_dz_xhat, count, 1e-5, "leaky_relu", 0.2)
    assert torch.equal(dx, dx_p)
    again = norm_act_train(x, w, b, per_sample, 1e-5, "leaky_relu", 0.2)
    assert all(torch.equal(first, second) for first, second in zip((y, mean, var), again))  # every run


def check_training_op_launches(shape, layout, launches):
    """Launches each way: one for block groups, and for cluster groups where the GPU has
    clusters (the tile path's two otherwise); two for the tile path whose elementwise pass merges
    the partials; three where a channels_last tile would merge too many (16 row tiles x 32
    channels here), with a separate merge."""
    from genimg_fast.bench.timing import count_launches
    if launches == "cluster":
        launches = 1 if cluster_takes(shape[0] * shape[2] * shape[3]) else 2
    x, w, b, gy = make(shape, torch.float32, layout, 3)
    y, mean, var = norm_act_train(x, w, b, False, 1e-5, "relu", 0.0)
    device = torch.device("cuda")
    assert count_launches(lambda: norm_act_train(x, w, b, False, 1e-5, "relu", 0.0), device) == launches
    assert count_launches(lambda: _norm_act_train_backward(gy, x, mean, var, w, b, 1e-5, "relu", 0.0),
                          device) == launches


def check_bit_identical_repeats(layout):
    first_x, first = check_train((8, 64, 32, 32), torch.float32, layout, False, "leaky_relu", 0.2, seed=3)
    for _ in range(2):
        _, again = check_train((8, 64, 32, 32), torch.float32, layout, False, "leaky_relu", 0.2, seed=3)
        for a, b in zip(first, again):
            assert torch.equal(a, b)


def check_forward_that_updates_running_stats_equals_its_two_ops_bitwise(dtype, layout, shape):
    """batch_norm_act_train_ blends the running statistics in the pass that publishes the batch
    statistics, with the update kernel's formula: the same bits as norm_act_train followed by
    update_tracked_running_stats_, and every channel updated, the counter once."""
    x, w, b, gy = make(shape, dtype, layout, 21)
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


def check_batch_norm_training_forward_launches(shape, launches):
    """BatchNormAct2d's training forward updates its running statistics without a launch of its
    own: one block per channel (2048 values a channel), one cluster per channel (16384, on
    Hopper), or statistics partials then merge + apply + update (16384 without clusters, 65536)."""
    from genimg_fast.bench.timing import count_launches
    from genimg_fast.nn import BatchNormAct2d
    if launches == "cluster":
        launches = 1 if cluster_takes(shape[0] * shape[2] * shape[3]) else 2
    module = BatchNormAct2d(16).cuda()
    x = torch.randn(shape, device="cuda")
    assert count_launches(lambda: module(x), torch.device("cuda")) == launches
    assert module.num_batches_tracked.item() == 2  # count_launches calls it twice


BN_STEP_IN_CHILD = """
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


def check_cap_sends_its_groups_down_the_tile_path(tmp_path, shape, variable, caps):
    """GENIMG_FAST_NORM_BLOCK_MAX=N or GENIMG_FAST_NORM_CLUSTER_MAX=N (for timing the paths at one
    shape) sends that path's groups of over N values down the tile path: a block shape (2048
    values a channel) and a cluster shape (8192) train there in two launches instead of one, to
    the same numbers within fp32 rounding."""
    if caps[""] == "cluster" and os.environ.get(variable):
        pytest.skip(f"this run caps the cluster kernels ({variable}): its default case would not")
    results = {}
    for cap in caps:
        out = tmp_path / f"cap{cap or 'default'}.pt"
        run = run_in_child(BN_STEP_IN_CHILD, (str(out), shape), env={variable: cap}, timeout=300)
        results[cap] = (run.stdout.split()[-1], torch.load(out))
    for cap, launches in caps.items():
        if launches == "cluster":
            launches = "1" if cluster_takes(128 * 8 * 8) else "2"
        assert results[cap][0] == launches, f"{variable}={cap!r}"
    for fused, tile in zip(results[""][1], results["0"][1]):  # each within TOLERANCE of exact
        scale = fused.abs().max().item()
        torch.testing.assert_close(tile, fused, rtol=0, atol=2 * TOLERANCE[torch.float32] * scale)


def check_nan_inputs_match_the_reference(shape, layout, activation, slope):
    """A NaN goes through the activations as through torch's: relu(NaN) = NaN and the gradient
    passes there; in eval mode the rest stays finite, in training the NaN's group turns NaN."""
    x, w, b, gy = make(shape, torch.float32, layout, seed=3)
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
    dx = _norm_act_backward_apply(gy, x, mean, var, w, b, None, None, 1.0, eps, activation, slope)
    close(dx, ref.backward_apply(gy64, x64, mean64, var64, w64, b64, None, None, 1.0, eps, activation, slope),
          "eval dx")
    assert torch.isfinite(dx).sum() == dx.numel()  # the gradient passes the NaN's z as torch's relu lets it

    y, bmean, bvar = norm_act_train(x, w, b, False, eps, activation, slope)  # training: batch statistics
    bmean64, bvar64 = ref.stats(x64, False)
    close(y, ref.apply(x64, bmean64, bvar64, w64, b64, eps, activation, slope), "train y")
    assert torch.isnan(y[:, 1]).all() and torch.isfinite(y[:, [0, 2]]).all()
    dx, _, _ = _norm_act_train_backward(gy, x, bmean, bvar, w, b, eps, activation, slope)
    assert torch.isnan(dx[:, 1]).all() and torch.isfinite(dx[:, [0, 2]]).all()
