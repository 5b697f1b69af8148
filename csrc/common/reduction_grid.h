#pragma once
// Launch shape of a one-launch deterministic reduction: each block writes one partial into a
// workspace, and the last block to finish (counted by an atomic ticket, never an atomic on the
// value) sums the partials in a fixed order. Shared by the host glue (which allocates the
// workspace) and the kernels' launchers.
#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace genimg_fast {

constexpr int kReductionThreads = 256;
// 4 x 256 threads stay resident per SM with up to 64 registers per thread (the kernels use
// 40-50), so the whole grid is one wave; more blocks would only add a ragged second wave.
constexpr int kReductionBlocksPerSM = 4;
constexpr size_t kTicketBytes = 16;  // keeps the partials 16-byte aligned

struct ReductionGrid {
  int blocks;
  size_t workspace_bytes;  // ticket, then `blocks` partial sums
};

// Blocks for a grid-stride loop: one work item per thread, capped at one resident wave.
inline int grid_stride_blocks(int64_t work_items, int threads, int sm_count, int blocks_per_sm) {
  const int64_t wanted = (work_items + threads - 1) / threads;
  const int64_t cap = static_cast<int64_t>(std::max(sm_count, 1)) * blocks_per_sm;
  return static_cast<int>(std::max<int64_t>(1, std::min(wanted, cap)));
}

inline ReductionGrid plan_reduction_grid(int64_t work_items, int sm_count, size_t partial_size) {
  const int blocks = grid_stride_blocks(work_items, kReductionThreads, sm_count, kReductionBlocksPerSM);
  return {blocks, kTicketBytes + static_cast<size_t>(blocks) * partial_size};
}

}  // namespace genimg_fast
