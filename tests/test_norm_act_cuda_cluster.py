"""The CUDA norm + activation kernels of the cluster path (one thread block cluster a group:
dense NCHW groups of 2049-32768 values, fp32 accumulation, compute capability 9.0+, one launch
each way) against the float64 reference, the group sizes at and past the path's edges, what the
clusters publish, their launches and cap. On a GPU without clusters the same cases run on the
tile path (norm_act_cuda_helpers.py says how the files divide the tests)."""
from __future__ import annotations

import os

import pytest
import torch
from norm_act_cuda_helpers import (MODEL_SHAPES, check_batch_norm_training_forward_launches,
                                   check_bit_identical_repeats, check_cap_sends_its_groups_down_the_tile_path,
                                   check_forward_that_updates_running_stats_equals_its_two_ops_bitwise,
                                   check_groups_apply_what_they_publish_bitwise, check_misaligned_tensors,
                                   check_nan_inputs_match_the_reference, check_train, check_training_op_launches,
                                   path_taken)

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("shape", [(1, 6, 64, 64)], ids=["cluster"])
@pytest.mark.parametrize("per_sample", [False, True], ids=["batch", "instance"])
def test_misaligned_tensors_take_the_element_path(cuda_kernels, per_sample, shape):
    check_misaligned_tensors(per_sample, shape)


@pytest.mark.parametrize("shape,per_sample,layout", [
    (shape, per_sample, layout) for layout in ("contiguous", "channels_last") for shape, per_sample in MODEL_SHAPES
    if path_taken(shape, per_sample, layout) == "cluster"])
def test_model_shapes(cuda_kernels, shape, per_sample, layout):
    check_train(shape, torch.float32, layout, per_sample, "relu", 0.0)


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


@pytest.mark.parametrize("shape,per_sample", CLUSTER_SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("activation,slope", [("relu", 0.0), ("leaky_relu", 0.2)])
def test_cluster_groups(cuda_kernels, shape, per_sample, dtype, activation, slope):
    check_train(shape, dtype, "contiguous", per_sample, activation, slope)


@pytest.mark.parametrize("shape,per_sample", [((128, 6, 8, 8), False), ((1, 3, 128, 128), True)])
def test_cluster_groups_without_affine_or_activation(cuda_kernels, shape, per_sample):
    check_train(shape, torch.float32, "contiguous", per_sample, "identity", 0.0, affine=False)


@pytest.mark.parametrize("shape,per_sample", [
    ((3, 5, 683, 1), False), ((128, 6, 8, 8), False), ((128, 3, 8, 9), False), ((3, 5, 101, 107), False),
    ((128, 2, 16, 16), False), ((1, 3, 64, 64), True), ((1, 2, 181, 181), True),
])
def test_cluster_groups_apply_what_they_publish_bitwise(cuda_kernels, shape, per_sample):
    check_groups_apply_what_they_publish_bitwise(shape, per_sample)


@pytest.mark.parametrize("shape,layout,launches", [((128, 256, 8, 8), "contiguous", "cluster"),
                                                   ((128, 128, 16, 16), "contiguous", "cluster")])
def test_training_op_launches(cuda_kernels, shape, layout, launches):
    check_training_op_launches(shape, layout, launches)


@pytest.mark.parametrize("layout", ["contiguous"])
def test_bit_identical_repeats(cuda_kernels, layout):
    check_bit_identical_repeats(layout)


@pytest.mark.parametrize("dtype,layout,shape", [
    (dtype, layout, shape) for shape in [(3, 40, 9, 7), (2, 5, 96, 96), (64, 48, 4, 4)]
    for layout in ("contiguous", "channels_last")
    for dtype in (torch.float32, torch.bfloat16, torch.float16, torch.float64)
    if path_taken(shape, False, layout, dtype) == "cluster"])
def test_forward_that_updates_running_stats_equals_its_two_ops_bitwise(cuda_kernels, dtype, layout, shape):
    check_forward_that_updates_running_stats_equals_its_two_ops_bitwise(dtype, layout, shape)


@pytest.mark.parametrize("shape,launches", [((16, 16, 32, 32), "cluster")])
def test_batch_norm_training_forward_launches(cuda_kernels, shape, launches):
    check_batch_norm_training_forward_launches(shape, launches)


@pytest.mark.parametrize("shape,variable,caps", [
    ("128x16x8x8", "GENIMG_FAST_NORM_CLUSTER_MAX", {"": "cluster", "2048": "2", "0": "2"})])
def test_cap_sends_its_groups_down_the_tile_path(cuda_kernels, tmp_path, shape, variable, caps):
    check_cap_sends_its_groups_down_the_tile_path(tmp_path, shape, variable, caps)


def test_backend_info_says_whether_norm_groups_take_clusters(cuda_kernels):
    """backend_info()["norm_kernels"]: the block and cluster caps and whether this GPU runs the
    cluster kernels."""
    import genimg_fast
    paths = genimg_fast.backend_info()["norm_kernels"]
    assert paths["clusters"] == (torch.cuda.get_device_capability() >= (9, 0))
    assert paths["block_max_group"] == int(os.environ.get("GENIMG_FAST_NORM_BLOCK_MAX") or 2048)
    assert paths["cluster_max_group"] == int(os.environ.get("GENIMG_FAST_NORM_CLUSTER_MAX") or 32768)


@pytest.mark.parametrize("shape,layout", [
    (shape, layout) for shape in [(128, 3, 4, 4), (2, 3, 40, 40), (64, 3, 32, 32)]
    for layout in ("contiguous", "channels_last") if path_taken(shape, False, layout) == "cluster"])
@pytest.mark.parametrize("activation,slope", [("relu", 0.0), ("leaky_relu", 0.2)])
def test_nan_inputs_match_the_reference(cuda_kernels, shape, layout, activation, slope):
    check_nan_inputs_match_the_reference(shape, layout, activation, slope)
