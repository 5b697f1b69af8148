"""The CUDA norm + activation kernels of the block path (one block a group: dense NCHW groups
of 512-2048 values, fp32 accumulation, one launch each way) against the float64 reference, the
group sizes at and past the path's edges, what the blocks publish, their launches and cap, and
the modules' steps whose groups take the path (norm_act_cuda_helpers.py says how the files
divide the tests)."""
from __future__ import annotations

import pytest
import torch
from cuda_helpers import assert_raises_in_child
from norm_act_cuda_helpers import (MODEL_SHAPES, check_batch_norm_training_forward_launches,
                                   check_cap_sends_its_groups_down_the_tile_path,
                                   check_forward_that_updates_running_stats_equals_its_two_ops_bitwise,
                                   check_groups_apply_what_they_publish_bitwise, check_misaligned_tensors,
                                   check_nan_inputs_match_the_reference, check_train, check_training_op_launches,
                                   make, path_taken)

from genimg_fast.ops import _norm_act_train_backward, norm_act_train

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("shape", [(2, 6, 32, 32)], ids=["block"])
@pytest.mark.parametrize("per_sample", [False, True], ids=["batch", "instance"])
def test_misaligned_tensors_take_the_element_path(cuda_kernels, per_sample, shape):
    check_misaligned_tensors(per_sample, shape)


@pytest.mark.parametrize("shape,per_sample,layout", [
    (shape, per_sample, layout) for layout in ("contiguous", "channels_last") for shape, per_sample in MODEL_SHAPES
    if path_taken(shape, per_sample, layout) == "block"])
def test_model_shapes(cuda_kernels, shape, per_sample, layout):
    check_train(shape, torch.float32, layout, per_sample, "relu", 0.0)


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


@pytest.mark.parametrize("shape,per_sample", BLOCK_SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("activation,slope", [("relu", 0.0), ("leaky_relu", 0.2)])
def test_block_groups(cuda_kernels, shape, per_sample, dtype, activation, slope):
    check_train(shape, dtype, "contiguous", per_sample, activation, slope)


@pytest.mark.parametrize("shape,per_sample", [((8, 9, 16, 16), False), ((2, 3, 23, 43), True)])
def test_block_groups_without_affine_or_activation(cuda_kernels, shape, per_sample):
    check_train(shape, torch.float32, "contiguous", per_sample, "identity", 0.0, affine=False)


@pytest.mark.parametrize("shape,per_sample", [((32, 7, 4, 4), False), ((8, 9, 16, 16), False), ((1, 4, 32, 64), True)])
def test_block_groups_apply_what_they_publish_bitwise(cuda_kernels, shape, per_sample):
    check_groups_apply_what_they_publish_bitwise(shape, per_sample)


@pytest.mark.parametrize("shape,layout,launches", [((128, 512, 4, 4), "contiguous", 1)])
def test_training_op_launches(cuda_kernels, shape, layout, launches):
    check_training_op_launches(shape, layout, launches)


@pytest.mark.parametrize("dtype,layout,shape", [
    (dtype, layout, shape) for shape in [(3, 40, 9, 7), (2, 5, 96, 96), (64, 48, 4, 4)]
    for layout in ("contiguous", "channels_last")
    for dtype in (torch.float32, torch.bfloat16, torch.float16, torch.float64)
    if path_taken(shape, False, layout, dtype) == "block"])
def test_forward_that_updates_running_stats_equals_its_two_ops_bitwise(cuda_kernels, dtype, layout, shape):
    check_forward_that_updates_running_stats_equals_its_two_ops_bitwise(dtype, layout, shape)


@pytest.mark.parametrize("shape,launches", [((128, 16, 4, 4), 1)])
def test_batch_norm_training_forward_launches(cuda_kernels, shape, launches):
    check_batch_norm_training_forward_launches(shape, launches)


@pytest.mark.parametrize("shape,variable,caps", [
    ("128x16x4x4", "GENIMG_FAST_NORM_BLOCK_MAX", {"": "1", "0": "2"})])  # a block a channel
def test_cap_sends_its_groups_down_the_tile_path(cuda_kernels, tmp_path, shape, variable, caps):
    check_cap_sends_its_groups_down_the_tile_path(tmp_path, shape, variable, caps)


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


def test_cuda_graph_capture_of_a_training_step(cuda_kernels):
    x, w, b, gy = make((8, 32, 16, 16), torch.float32, "contiguous", 12)
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
        dx2, _, _ = _norm_act_train_backward(gy, x.detach(), m2, v2, w, b, 1e-5, "relu", 0.0)
        assert torch.equal(y, y2) and torch.equal(dx, dx2)


@pytest.mark.parametrize("shape,layout", [
    (shape, layout) for shape in [(128, 3, 4, 4), (2, 3, 40, 40), (64, 3, 32, 32)]
    for layout in ("contiguous", "channels_last") if path_taken(shape, False, layout) == "block"])
@pytest.mark.parametrize("activation,slope", [("relu", 0.0), ("leaky_relu", 0.2)])
def test_nan_inputs_match_the_reference(cuda_kernels, shape, layout, activation, slope):
    check_nan_inputs_match_the_reference(shape, layout, activation, slope)
