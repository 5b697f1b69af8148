"""The kernel paths: each set of CUDA kernels the ops' dispatch can choose, or pass over.

A path is the unit of verification (docs/kernel-verification.md): its device code is
fingerprinted as one, passes or fails its CUDA tests as one, and is switched on or off as one.
The names are those of the C++ `KernelPath` enum (csrc/common/kernel_paths.h); a test checks
that both lists agree.
"""
from __future__ import annotations

# path -> (what it does, the __global__ functions that make it up). A function's name is part of
# its path's fingerprint (its parameter bank is named after it), so a verified path's functions
# keep their names when the path or its op is renamed: renaming one makes the path wait for a GPU
# check.
KERNEL_PATHS: dict[str, tuple[str, tuple[str, ...]]] = {
    "norm_tiles": (
        "norm + activation on tiles: statistics, apply, the backward's sums and dx; the training "
        "passes of any layout and size (two or three launches each way)",
        ("reduce_nchw_kernel", "reduce_nhwc_kernel", "merge_partials_kernel", "elementwise_nchw_kernel",
         "elementwise_nhwc_kernel", "merge_elementwise_nchw_kernel", "merge_elementwise_nhwc_kernel"),
    ),
    "norm_block": (
        "norm + activation training, one block a group: dense NCHW groups of 512-2048 values, one launch each way",
        ("norm_block_train_kernel", "norm_block_backward_kernel"),
    ),
    "norm_cluster": (
        "norm + activation training, one thread block cluster a group: dense NCHW groups of 2049-32768 values "
        "on compute capability 9.0+, one launch each way",
        ("norm_cluster_train_kernel", "norm_cluster_backward_kernel"),
    ),
    "running_stats": (
        "the running-statistics update of a norm layer, when its training forward did not make it",
        ("update_running_stats_kernel",),
    ),
    "l1_loss": (
        "the L1 loss with its gradient in the forward pass",
        ("l1_loss_forward_flat_kernel", "l1_loss_forward_strided_kernel"),
    ),
    "scale_one_stored_grad": (
        "the L1 loss's backward: its one stored gradient times grad_output",
        ("scale_stored_grad_kernel",),
    ),
    "loss_terms": (
        "the training objectives: every weighted loss term, the total and each input's gradient in one launch",
        ("loss_terms_kernel",),
    ),
    "scale_term_stored_grads": (
        "the objectives' backward: each loss term's stored gradient times its incoming gradients",
        ("scale_stored_grads_kernel",),
    ),
}


def path_of_kernel(function: str) -> str | None:
    """The path a __global__ function (its unmangled name) belongs to, or None."""
    for path, (_, functions) in KERNEL_PATHS.items():
        if function in functions:
            return path
    return None
