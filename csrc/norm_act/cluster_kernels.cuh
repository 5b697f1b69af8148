#pragma once
// Training forward and backward for groups too large for one block's registers but small
// enough for a thread block cluster's (Hopper and later): a cluster of 2-8 blocks per group,
// each block holding a contiguous slice of the group's values, the block totals combined
// through distributed shared memory. One launch each way and every element read once, like the
// block kernels (block_kernels.cuh), but with 2-8x the blocks in flight: a block
// per group at 4096-8192 values lost to the tile path as GPU work on an H100,
// too few blocks to keep the memory system busy.
//
// Every block of a cluster combines the same block totals in the same order, so all of them
// hold bit-identical statistics and sums (and a run gives the same bits every time). The group
// bodies (train_group, backward_group) are the block kernels': exact two-pass variance,
// the tile kernels' per-element formulas.
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "common/block_reduce.cuh"
#include "norm_act/block_kernels.cuh"
#include "norm_act/norm_act_math.h"
#include "norm_act/norm_act_tiling.h"
#include "norm_act/running_stats.cuh"
#include "norm_act/train_path.h"

namespace genimg_fast {

static_assert(kNormClusterThreads == kNormBlockThreads, "the group bodies slice a group in blocks of 256 threads");

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define GENIMG_HAS_CLUSTERS 1
namespace cg = cooperative_groups;

// Sums of `values` over the whole cluster, received by every thread of every block. `slots` is
// this block's shared array of N the other blocks read. On return this block has read every
// block's slots, but other blocks may still be reading its own: a caller must not write `slots`
// again, nor exit, before a further cluster barrier.
template <int N, typename T>
__device__ __forceinline__ void cluster_sums_to_all(T (&values)[N], T* slots) {
  const cg::cluster_group cluster = cg::this_cluster();
  __shared__ T totals[N];
#pragma unroll
  for (int i = 0; i < N; ++i) values[i] = block_reduce_sum(values[i]);
  if (threadIdx.x == 0) {
#pragma unroll
    for (int i = 0; i < N; ++i) slots[i] = values[i];
  }
  cluster.sync();  // release/acquire: every block's slots are written and visible
  if (threadIdx.x < kWarpSize) {
    const unsigned lane = threadIdx.x;
    const T* remote = lane < cluster.num_blocks() ? cluster.map_shared_rank(slots, static_cast<int>(lane)) : nullptr;
#pragma unroll
    for (int i = 0; i < N; ++i) {
      // the same tree in every block, lanes past the cluster adding 0: identical totals everywhere
      const T total = warp_reduce_sum(remote != nullptr ? remote[i] : T(0));
      if (lane == 0) totals[i] = total;
    }
  }
  __syncthreads();
#pragma unroll
  for (int i = 0; i < N; ++i) values[i] = totals[i];
  __syncthreads();  // every thread has read totals before a next call writes them
}

// The blocks of a cluster sharing one group (block_kernels.cuh's group bodies).
struct ClusterSharing {
  __device__ unsigned rank() const { return cg::this_cluster().block_rank(); }
  __device__ unsigned blocks() const { return cg::this_cluster().num_blocks(); }
  template <int N, typename T>
  __device__ void sums_to_all(T (&values)[N], T* slots) const {
    cluster_sums_to_all(values, slots);
  }
  // This block has read the others' slots; they may exit once every block has (before_exit).
  __device__ void done_reading_others() const { cg::this_cluster().barrier_arrive(); }
  __device__ void before_exit() const { cg::this_cluster().barrier_wait(); }
};
#endif

template <int ITEMS, typename Constants>
__global__ void __launch_bounds__(kNormClusterThreads)
    norm_cluster_train_kernel(NormTiling t, RunDivider by_run_length, Constants constants,
                              typename Constants::acc_t* mean_out, typename Constants::acc_t* var_out,
                              typename Constants::scalar_type* y, RunningStatsTarget<typename Constants::acc_t> running) {
#if defined(GENIMG_HAS_CLUSTERS)
  train_group<ITEMS>(ClusterSharing{}, t, by_run_length, constants, mean_out, var_out, y, running);
#else
  __trap();  // never launched: the host checks norm_cluster_supported() first
#endif
}

template <int ITEMS, typename Constants>
__global__ void __launch_bounds__(kNormClusterThreads)
    norm_cluster_backward_kernel(NormTiling t, RunDivider by_run_length, Constants constants,
                                 const typename Constants::scalar_type* dy,
                                 typename Constants::acc_t* sum_dz_out, typename Constants::acc_t* sum_dz_xhat_out,
                                 typename Constants::acc_t inv_count, typename Constants::scalar_type* dx) {
#if defined(GENIMG_HAS_CLUSTERS)
  backward_group<ITEMS>(ClusterSharing{}, t, by_run_length, constants, dy, sum_dz_out, sum_dz_xhat_out, inv_count,
                        dx);
#else
  __trap();
#endif
}

#undef GENIMG_HAS_CLUSTERS

}  // namespace genimg_fast
