#pragma once
// torch.nn.BatchNorm2d's running-statistics blend, the one formula of the update kernel and of
// the training forward that updates as it publishes its statistics: both write the same bits.
#include <cstdint>

#include "norm_act/norm_act_launch.h"

namespace genimg_fast {

// Rounding spelled out (no contraction left to the compiler), so every kernel that inlines the
// blend rounds it the same way.
__device__ __forceinline__ float multiply(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double multiply(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float multiply_add(float a, float b, float c) { return __fmaf_rn(a, b, c); }
__device__ __forceinline__ double multiply_add(double a, double b, double c) { return __fma_rn(a, b, c); }

// running = keep * running + take * batch (keep = 1 - momentum, take = momentum); the variance
// taken unbiased (times count / (count - 1)).
template <typename stat_t>
__device__ __forceinline__ void blend_running_stats(stat_t& running_mean, stat_t& running_var, stat_t batch_mean,
                                                    stat_t batch_var, stat_t keep, stat_t take, stat_t unbias) {
  running_mean = multiply_add(take, batch_mean, multiply(keep, running_mean));
  running_var = multiply_add(multiply(take, batch_var), unbias, multiply(keep, running_var));
}

// One channel's update from a training forward's statistics (no target: nothing); channel 0's
// thread also counts the batch, once.
template <typename stat_t>
__device__ __forceinline__ void update_running_target(const RunningStatsTarget<stat_t>& target, int64_t channel,
                                                      stat_t batch_mean, stat_t batch_var) {
  if (target.mean == nullptr) return;
  blend_running_stats(target.mean[channel], target.var[channel], batch_mean, batch_var, target.keep, target.take,
                      target.unbias);
  if (channel == 0 && target.num_batches_tracked != nullptr) *target.num_batches_tracked += 1;
}

}  // namespace genimg_fast
