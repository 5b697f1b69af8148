#pragma once
// Training forward and backward for groups small enough to sit in one block's registers: one
// block per group, one launch each way, every input element read once (forward 2N of traffic
// instead of 3N, backward 3N instead of 5N, and half the launches of the tile path). Used for
// dense NCHW groups of kSinglePassMinCount..kSinglePassMaxCount values with fp32 accumulation
// (train_path.h chooses), such as DCGAN's 4x4 layer (2048 values a channel at batch 128),
// where the step is too short for three or four launches to hide. Larger groups take the tile path: on an H100 (2026-11-27
// run 4) a block holding 16-32 values a thread lost to it as GPU work at 4096 and 8192 values
// (26.5 vs 22.9 us, 34.6 vs 29.7 us), while 8 a thread won at 2048 (20.0 vs 29.0 us); on
// Hopper such groups take a cluster of blocks instead (cluster_pass_kernels.cuh).
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

namespace genimg_fast {

constexpr int kSinglePassThreads = 256;
constexpr int64_t kSinglePassMinCount = 512;  // below: most of a block idle, the tile path packs groups
constexpr int kSinglePassItems = 8;  // values each thread holds in registers
constexpr int64_t kSinglePassMaxCount = kSinglePassItems * kSinglePassThreads;

__host__ __device__ inline int64_t values_per_group(const NormTiling& t) { return t.per_sample ? t.S : t.N * t.S; }

// Where a group's e-th value is in a dense NCHW tensor: N runs of S (batch norm, group = channel)
// or one run (instance norm, group = sample * C + channel). e and S are at most the one-launch
// kernels' largest group (kClusterPassMaxCount): 32-bit division (by a host-made divider), 64-bit
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

template <int ITEMS, typename Constants>
__global__ void __launch_bounds__(kSinglePassThreads)
    single_pass_train_kernel(NormTiling t, RunDivider by_run_length, Constants constants,
                             typename Constants::acc_t* mean_out, typename Constants::acc_t* var_out,
                             typename Constants::scalar_type* y, RunningStatsTarget<typename Constants::acc_t> running) {
  using acc_t = typename Constants::acc_t;
  const auto& args = constants.args;
  const int64_t group = blockIdx.x;
  const int count = static_cast<int>(values_per_group(t));
  const GroupRuns runs = group_runs(t, group, by_run_length);
  acc_t v[ITEMS];
  acc_t sum = 0;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int e = threadIdx.x + k * kSinglePassThreads;
    v[k] = e < count ? static_cast<acc_t>(args.x[runs.offset(e)]) : acc_t(0);
    sum += v[k];
  }
  const acc_t mean = block_sum_to_all(sum) / static_cast<acc_t>(count);
  acc_t m2 = 0;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int e = threadIdx.x + k * kSinglePassThreads;
    const acc_t d = v[k] - mean;
    if (e < count) m2 += d * d;
  }
  const acc_t var = block_sum_to_all(m2) / static_cast<acc_t>(count);
  if (threadIdx.x == 0) {
    mean_out[group] = mean;
    var_out[group] = var;
    update_running_target(running, group, mean, var);
  }
  const auto a = constants.affine(mean, var, t.per_sample ? group % t.C : group);
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int e = threadIdx.x + k * kSinglePassThreads;
    if (e < count) {
      const acc_t z = constants.pre_activation(a, a.xhat(v[k]));
      y[runs.offset(e)] = static_cast<typename Constants::scalar_type>(activation_forward(z, args.activation, args.slope));
    }
  }
}

// dx with batch statistics, and the group's sum(dz), sum(dz * xhat) (dz = dy * act'(z)).
template <int ITEMS, typename Constants>
__global__ void __launch_bounds__(kSinglePassThreads)
    single_pass_backward_kernel(NormTiling t, RunDivider by_run_length, Constants constants,
                                const typename Constants::scalar_type* dy,
                                typename Constants::acc_t* sum_dz_out, typename Constants::acc_t* sum_dz_xhat_out,
                                typename Constants::acc_t inv_count, typename Constants::scalar_type* dx) {
  using acc_t = typename Constants::acc_t;
  const auto& args = constants.args;
  const int64_t group = blockIdx.x;
  const int count = static_cast<int>(values_per_group(t));
  const GroupRuns runs = group_runs(t, group, by_run_length);
  const auto a = constants.context(group, t.per_sample ? group % t.C : group);
  acc_t xhat[ITEMS], dz[ITEMS];
  acc_t sum_dz = 0, sum_dz_xhat = 0;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {  // every load issued before the first is used
    const int e = threadIdx.x + k * kSinglePassThreads;
    const bool inside = e < count;
    const int64_t offset = inside ? runs.offset(e) : 0;
    xhat[k] = inside ? static_cast<acc_t>(args.x[offset]) : acc_t(0);
    dz[k] = inside ? static_cast<acc_t>(dy[offset]) : acc_t(0);
  }
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    if (threadIdx.x + k * kSinglePassThreads < count) {
      xhat[k] = a.xhat(xhat[k]);
      const acc_t z = constants.pre_activation(a, xhat[k]);
      dz[k] = dz[k] * activation_grad(z, args.activation, args.slope);
      sum_dz += dz[k];
      sum_dz_xhat += dz[k] * xhat[k];
    }
  }
  sum_dz = block_sum_to_all(sum_dz);
  sum_dz_xhat = block_sum_to_all(sum_dz_xhat);
  if (threadIdx.x == 0) {
    sum_dz_out[group] = sum_dz;
    sum_dz_xhat_out[group] = sum_dz_xhat;
  }
  // BackwardApplyOp's formula, term for term
  const acc_t mean_dz = sum_dz * inv_count, mean_dz_xhat = sum_dz_xhat * inv_count;
  const acc_t scale = a.invstd * a.weight;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int e = threadIdx.x + k * kSinglePassThreads;
    if (e < count) {
      dx[runs.offset(e)] = static_cast<typename Constants::scalar_type>((dz[k] - mean_dz - xhat[k] * mean_dz_xhat) * scale);
    }
  }
}

}  // namespace genimg_fast
