#pragma once
// Training forward and backward for groups too large for one block's registers but small
// enough for a thread block cluster's (Hopper and later): a cluster of 2-8 blocks per group,
// each block holding a contiguous slice of the group's values, the block totals combined
// through distributed shared memory. One launch each way and every element read once, like the
// single-block kernels (single_pass_kernels.cuh), but with 2-8x the blocks in flight: a block
// per group at 4096-8192 values lost to the tile path as GPU work (H100, 2026-11-27 run 4),
// too few blocks to keep the memory system busy.
//
// Every block of a cluster combines the same block totals in the same order, so all of them
// hold bit-identical statistics and sums (and a run gives the same bits every time). The
// per-element formulas are the tile kernels' (Constants = GroupConstants), so a backward
// recomputes the forward's activation mask exactly; the variance is exact two-pass.
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "common/block_reduce.cuh"
#include "norm_act/norm_act_math.h"
#include "norm_act/norm_act_tiling.h"
#include "norm_act/running_stats.cuh"
#include "norm_act/single_pass_kernels.cuh"
#include "norm_act/train_path.h"

namespace genimg_fast {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define GENIMG_HAS_CLUSTERS 1
namespace cg = cooperative_groups;

// Sums of `values` over the whole cluster, received by every thread of every block. `slots` is
// this block's shared array of N the other blocks read. On return all blocks have read every
// block's slots once, but may still be reading them: a caller must not write `slots` again, nor
// exit, before a further cluster barrier.
template <int N, typename T>
__device__ __forceinline__ void cluster_sums_to_all(const cg::cluster_group& cluster, T (&values)[N], T* slots) {
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
#endif

template <int ITEMS, typename Constants>
__global__ void __launch_bounds__(kClusterPassThreads)
    cluster_pass_train_kernel(NormTiling t, RunDivider by_run_length, Constants constants,
                              typename Constants::acc_t* mean_out, typename Constants::acc_t* var_out,
                              typename Constants::scalar_type* y, RunningStatsTarget<typename Constants::acc_t> running) {
#if defined(GENIMG_HAS_CLUSTERS)
  using acc_t = typename Constants::acc_t;
  __shared__ acc_t slots[2];  // one per cluster-wide sum: the second never overwrites the first
  const cg::cluster_group cluster = cg::this_cluster();
  const unsigned blocks = cluster.num_blocks();
  const auto& args = constants.args;
  const int64_t group = blockIdx.x / blocks;
  const int count = static_cast<int>(values_per_group(t));
  const GroupRuns runs = group_runs(t, group, by_run_length);
  const int first = static_cast<int>(cluster.block_rank()) * ITEMS * kClusterPassThreads + threadIdx.x;
  acc_t v[ITEMS];
  acc_t sum[1] = {0};
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int e = first + k * kClusterPassThreads;
    v[k] = e < count ? static_cast<acc_t>(args.x[runs.offset(e)]) : acc_t(0);
  }
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) sum[0] += v[k];
  cluster_sums_to_all(cluster, sum, &slots[0]);
  const acc_t mean = sum[0] / static_cast<acc_t>(count);
  acc_t m2[1] = {0};
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int e = first + k * kClusterPassThreads;
    const acc_t d = v[k] - mean;
    if (e < count) m2[0] += d * d;
  }
  cluster_sums_to_all(cluster, m2, &slots[1]);
  const acc_t var = m2[0] / static_cast<acc_t>(count);
  cluster.barrier_arrive();  // done reading the other blocks' slots; the wait below keeps ours alive
  if (cluster.block_rank() == 0 && threadIdx.x == 0) {
    mean_out[group] = mean;
    var_out[group] = var;
    update_running_target(running, group, mean, var);
  }
  const auto a = constants.affine(mean, var, t.per_sample ? group % t.C : group);
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int e = first + k * kClusterPassThreads;
    if (e < count) {
      const acc_t z = constants.pre_activation(a, a.xhat(v[k]));
      y[runs.offset(e)] =
          static_cast<typename Constants::scalar_type>(activation_forward(z, args.activation, args.slope));
    }
  }
  cluster.barrier_wait();
#else
  __trap();  // never launched: the host checks cluster_pass_supported() first
#endif
}

// dx with batch statistics, and the group's sum(dz), sum(dz * xhat) (dz = dy * act'(z)).
template <int ITEMS, typename Constants>
__global__ void __launch_bounds__(kClusterPassThreads)
    cluster_pass_backward_kernel(NormTiling t, RunDivider by_run_length, Constants constants,
                                 const typename Constants::scalar_type* dy,
                                 typename Constants::acc_t* sum_dz_out, typename Constants::acc_t* sum_dz_xhat_out,
                                 typename Constants::acc_t inv_count, typename Constants::scalar_type* dx) {
#if defined(GENIMG_HAS_CLUSTERS)
  using acc_t = typename Constants::acc_t;
  __shared__ acc_t slots[2];
  const cg::cluster_group cluster = cg::this_cluster();
  const unsigned blocks = cluster.num_blocks();
  const auto& args = constants.args;
  const int64_t group = blockIdx.x / blocks;
  const int count = static_cast<int>(values_per_group(t));
  const GroupRuns runs = group_runs(t, group, by_run_length);
  const int first = static_cast<int>(cluster.block_rank()) * ITEMS * kClusterPassThreads + threadIdx.x;
  const auto a = constants.context(group, t.per_sample ? group % t.C : group);
  acc_t xhat[ITEMS], dz[ITEMS];
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {  // every load issued before the first is used
    const int e = first + k * kClusterPassThreads;
    const bool inside = e < count;
    const int64_t offset = inside ? runs.offset(e) : 0;
    xhat[k] = inside ? static_cast<acc_t>(args.x[offset]) : acc_t(0);
    dz[k] = inside ? static_cast<acc_t>(dy[offset]) : acc_t(0);
  }
  acc_t sums[2] = {0, 0};  // sum(dz), sum(dz * xhat)
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    if (first + k * kClusterPassThreads < count) {
      xhat[k] = a.xhat(xhat[k]);
      const acc_t z = constants.pre_activation(a, xhat[k]);
      dz[k] = dz[k] * activation_grad(z, args.activation, args.slope);
      sums[0] += dz[k];
      sums[1] += dz[k] * xhat[k];
    }
  }
  cluster_sums_to_all(cluster, sums, slots);
  cluster.barrier_arrive();
  if (cluster.block_rank() == 0 && threadIdx.x == 0) {
    sum_dz_out[group] = sums[0];
    sum_dz_xhat_out[group] = sums[1];
  }
  // BackwardApplyOp's formula, term for term
  const acc_t mean_dz = sums[0] * inv_count, mean_dz_xhat = sums[1] * inv_count;
  const acc_t scale = a.invstd * a.weight;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int e = first + k * kClusterPassThreads;
    if (e < count) {
      dx[runs.offset(e)] =
          static_cast<typename Constants::scalar_type>((dz[k] - mean_dz - xhat[k] * mean_dz_xhat) * scale);
    }
  }
  cluster.barrier_wait();
#else
  __trap();
#endif
}

#undef GENIMG_HAS_CLUSTERS

}  // namespace genimg_fast
