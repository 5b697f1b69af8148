#pragma once
// Deterministic block-wide sum: warp shuffles, then one warp over the per-warp sums.
// The order of additions depends only on blockDim, never on timing.
#include <cuda_runtime.h>

namespace genimg_fast {

constexpr int kWarpSize = 32;

template <typename T>
__device__ __forceinline__ T warp_reduce_sum(T value) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    value += __shfl_down_sync(0xffffffffu, value, offset);
  }
  return value;
}

// Every thread passes its value; thread 0 receives the block total (other threads: partial junk).
// Safe to call repeatedly in one kernel: it synchronizes before reusing its shared buffer.
template <typename T>
__device__ __forceinline__ T block_reduce_sum(T value) {
  __shared__ T warp_sums[kWarpSize];
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const int num_warps = (blockDim.x + kWarpSize - 1) / kWarpSize;
  value = warp_reduce_sum(value);
  __syncthreads();  // a previous call may still be reading warp_sums
  if (lane == 0) warp_sums[warp] = value;
  __syncthreads();
  value = (threadIdx.x < num_warps) ? warp_sums[lane] : T(0);
  if (warp == 0) value = warp_reduce_sum(value);
  return value;
}

}  // namespace genimg_fast
