#pragma once
// Training forward and backward for groups small enough to sit in one block's registers: one
// block per group, one launch each way, every input element read once (forward 2N of traffic
// instead of 3N, backward 3N instead of 5N, and half the launches of the tile path). Used for
// dense NCHW groups of kNormBlockMinCount..kNormBlockMaxCount values with fp32 accumulation
// (train_path.h chooses), such as DCGAN's 4x4 layer (2048 values a channel at batch 128),
// where the step is too short for three or four launches to hide. Not for larger groups: on an
// H100 a block holding 16-32 values a thread lost to the tile path as GPU
// work at 4096 and 8192 values (26.5 vs 22.9 us, 34.6 vs 29.7 us), while 8 a thread won at 2048
// (20.0 vs 29.0 us); on Hopper such groups take a cluster of blocks (cluster_kernels.cuh).
// The variance is exact two-pass (the values are in registers), the per-element formulas are
// the tile kernels' (Constants = GroupConstants), so a backward recomputes the forward's
// activation mask exactly.
#include <cuda_runtime.h>

#include <cstdint>

#include "common/block_reduce.cuh"
#include "common/run_divider.h"
#include "norm_act/norm_act_math.h"
#include "norm_act/norm_act_tiling.h"
#include "norm_act/running_stats.cuh"
#include "norm_act/train_path.h"

namespace genimg_fast {

// Where a group's e-th value is in a dense NCHW tensor: N runs of S (batch norm, group = channel)
// or one run (instance norm, group = sample * C + channel). e and S are at most the cluster
// kernels' largest group (kNormClusterMaxCount): 32-bit division (by a host-made divider), 64-bit
// offsets.
struct GroupRuns {
  int64_t base, run_stride;
  RunDivider by_run_length;
  __device__ int64_t offset(int e) const {
    const uint32_t run = by_run_length.quotient(static_cast<uint32_t>(e));
    return base + run * run_stride + (static_cast<uint32_t>(e) - run * by_run_length.divisor);
  }
};

__device__ __forceinline__ GroupRuns group_runs(const NormTiling& t, int64_t group, const RunDivider& by_run_length) {
  return {group * t.S, t.C * t.S, by_run_length};
}

// A block-wide sum every thread receives (deterministic: block_reduce_sum's fixed order).
template <typename T>
__device__ __forceinline__ T block_sum_to_all(T value) {
  __shared__ T total;
  value = block_reduce_sum(value);
  if (threadIdx.x == 0) total = value;
  __syncthreads();
  const T result = total;
  __syncthreads();  // every thread has read it before a next call writes it
  return result;
}

// How the blocks of a group share their totals: a block alone (here), or the blocks of a
// cluster (ClusterSharing, cluster_kernels.cuh). The group bodies below serve both.
struct BlockSharing {
  __device__ unsigned rank() const { return 0; }
  __device__ unsigned blocks() const { return 1; }
  // Every thread receives the block's totals of `values`; no other block reads `slots`.
  template <int N, typename T>
  __device__ void sums_to_all(T (&values)[N], T* /*slots*/) const {
#pragma unroll
    for (int i = 0; i < N; ++i) values[i] = block_sum_to_all(values[i]);
  }
  __device__ void done_reading_others() const {}
  __device__ void before_exit() const {}
};

// The training forward of group blockIdx.x / blocks: this block's slice of ITEMS values a thread
// (block rank r holds values [r * ITEMS * 256, (r + 1) * ITEMS * 256)), exact two-pass statistics,
// published with the running-statistics update by the group's first block, and y.
template <int ITEMS, typename Sharing, typename Constants>
__device__ __forceinline__ void train_group(const Sharing& sharing, const NormTiling& t,
                                            const RunDivider& by_run_length, const Constants& constants,
                                            typename Constants::acc_t* mean_out, typename Constants::acc_t* var_out,
                                            typename Constants::scalar_type* y,
                                            const RunningStatsTarget<typename Constants::acc_t>& running) {
  using acc_t = typename Constants::acc_t;
  __shared__ acc_t slots[2];  // one per group-wide sum: the second never overwrites the first
  const auto& args = constants.args;
  const int64_t group = blockIdx.x / sharing.blocks();
  const int count = static_cast<int>(values_per_group(t));
  const GroupRuns runs = group_runs(t, group, by_run_length);
  const int first = static_cast<int>(sharing.rank()) * ITEMS * kNormBlockThreads + threadIdx.x;
  acc_t v[ITEMS];
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int e = first + k * kNormBlockThreads;
    v[k] = e < count ? static_cast<acc_t>(args.x[runs.offset(e)]) : acc_t(0);
  }
  acc_t sum[1] = {0};
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) sum[0] += v[k];
  sharing.sums_to_all(sum, &slots[0]);
  const acc_t mean = sum[0] / static_cast<acc_t>(count);
  acc_t m2[1] = {0};
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const acc_t d = v[k] - mean;
    if (first + k * kNormBlockThreads < count) m2[0] += d * d;
  }
  sharing.sums_to_all(m2, &slots[1]);
  const acc_t var = m2[0] / static_cast<acc_t>(count);
  sharing.done_reading_others();
  if (sharing.rank() == 0 && threadIdx.x == 0) {
    mean_out[group] = mean;
    var_out[group] = var;
    update_running_target(running, group, mean, var);
  }
  const auto a = constants.affine(mean, var, t.per_sample ? group % t.C : group);
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int e = first + k * kNormBlockThreads;
    if (e < count) {
      const acc_t z = constants.pre_activation(a, a.xhat(v[k]));
      y[runs.offset(e)] = static_cast<typename Constants::scalar_type>(activation_forward(z, args.activation, args.slope));
    }
  }
  sharing.before_exit();
}

// The training backward of a group, sliced as train_group's: dx with batch statistics, and the
// group's sum(dz), sum(dz * xhat) (dz = dy * act'(z)), published by its first block.
template <int ITEMS, typename Sharing, typename Constants>
__device__ __forceinline__ void backward_group(const Sharing& sharing, const NormTiling& t,
                                               const RunDivider& by_run_length, const Constants& constants,
                                               const typename Constants::scalar_type* dy,
                                               typename Constants::acc_t* sum_dz_out,
                                               typename Constants::acc_t* sum_dz_xhat_out,
                                               typename Constants::acc_t inv_count,
                                               typename Constants::scalar_type* dx) {
  using acc_t = typename Constants::acc_t;
  __shared__ acc_t slots[2];
  const auto& args = constants.args;
  const int64_t group = blockIdx.x / sharing.blocks();
  const int count = static_cast<int>(values_per_group(t));
  const GroupRuns runs = group_runs(t, group, by_run_length);
  const int first = static_cast<int>(sharing.rank()) * ITEMS * kNormBlockThreads + threadIdx.x;
  const auto a = constants.context(group, t.per_sample ? group % t.C : group);
  acc_t xhat[ITEMS], dz[ITEMS];
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {  // every load issued before the first is used
    const int e = first + k * kNormBlockThreads;
    const bool inside = e < count;
    const int64_t offset = inside ? runs.offset(e) : 0;
    xhat[k] = inside ? static_cast<acc_t>(args.x[offset]) : acc_t(0);
    dz[k] = inside ? static_cast<acc_t>(dy[offset]) : acc_t(0);
  }
  acc_t sums[2] = {0, 0};  // sum(dz), sum(dz * xhat)
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    if (first + k * kNormBlockThreads < count) {
      xhat[k] = a.xhat(xhat[k]);
      const acc_t z = constants.pre_activation(a, xhat[k]);
      dz[k] = dz[k] * activation_grad(z, args.activation, args.slope);
      sums[0] += dz[k];
      sums[1] += dz[k] * xhat[k];
    }
  }
  sharing.sums_to_all(sums, slots);
  sharing.done_reading_others();
  if (sharing.rank() == 0 && threadIdx.x == 0) {
    sum_dz_out[group] = sums[0];
    sum_dz_xhat_out[group] = sums[1];
  }
  // BackwardApplyOp's formula, term for term
  const acc_t mean_dz = sums[0] * inv_count, mean_dz_xhat = sums[1] * inv_count;
  const acc_t scale = a.invstd * a.weight;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int e = first + k * kNormBlockThreads;
    if (e < count) {
      dx[runs.offset(e)] = static_cast<typename Constants::scalar_type>((dz[k] - mean_dz - xhat[k] * mean_dz_xhat) * scale);
    }
  }
  sharing.before_exit();
}

template <int ITEMS, typename Constants>
__global__ void __launch_bounds__(kNormBlockThreads)
    norm_block_train_kernel(NormTiling t, RunDivider by_run_length, Constants constants,
                            typename Constants::acc_t* mean_out, typename Constants::acc_t* var_out,
                            typename Constants::scalar_type* y, RunningStatsTarget<typename Constants::acc_t> running) {
  train_group<ITEMS>(BlockSharing{}, t, by_run_length, constants, mean_out, var_out, y, running);
}

template <int ITEMS, typename Constants>
__global__ void __launch_bounds__(kNormBlockThreads)
    norm_block_backward_kernel(NormTiling t, RunDivider by_run_length, Constants constants,
                               const typename Constants::scalar_type* dy,
                               typename Constants::acc_t* sum_dz_out, typename Constants::acc_t* sum_dz_xhat_out,
                               typename Constants::acc_t inv_count, typename Constants::scalar_type* dx) {
  backward_group<ITEMS>(BlockSharing{}, t, by_run_length, constants, dy, sum_dz_out, sum_dz_xhat_out, inv_count, dx);
}

}  // namespace genimg_fast
