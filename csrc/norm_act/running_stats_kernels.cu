// In-place running-statistics update of batch norm (and instance norm with running stats),
// including torch's batch counter: one block, so the counter is read before it is written and
// the cumulative-average factor 1 / num_batches_tracked never needs a host read.
#include <c10/cuda/CUDAException.h>

#include "norm_act/norm_act_launch.h"
#include "norm_act/running_stats.cuh"

namespace genimg_fast {
namespace {

constexpr int kRunningStatsThreads = 256;

template <typename stat_t>
__global__ void __launch_bounds__(kRunningStatsThreads)
    update_running_stats_kernel(stat_t* __restrict__ running_mean, stat_t* __restrict__ running_var,
                                const stat_t* __restrict__ mean, const stat_t* __restrict__ var, int64_t stat_rows,
                                int64_t channels, RunningStatsRule rule) {
  double factor = rule.momentum;
  if (rule.num_batches_tracked != nullptr) {
    const int64_t tracked = *rule.num_batches_tracked + 1;
    __syncthreads();  // every thread has read the old count before thread 0 writes the new one
    if (threadIdx.x == 0) *rule.num_batches_tracked = tracked;
    if (rule.cumulative) factor = 1.0 / static_cast<double>(tracked);
  } else if (rule.cumulative) {
    factor = 0.0;  // torch: momentum=None without a counter leaves the running statistics as they are
  }
  const stat_t keep = static_cast<stat_t>(1.0 - factor), take = static_cast<stat_t>(factor);
  const stat_t unbias = static_cast<stat_t>(rule.unbias);
  for (int64_t c = threadIdx.x; c < channels; c += blockDim.x) {
    stat_t batch_mean = 0, batch_var = 0;
    for (int64_t r = 0; r < stat_rows; ++r) {  // instance norm: average over the samples
      batch_mean += mean[r * channels + c];
      batch_var += var[r * channels + c];
    }
    batch_mean /= static_cast<stat_t>(stat_rows);
    batch_var /= static_cast<stat_t>(stat_rows);
    blend_running_stats(running_mean[c], running_var[c], batch_mean, batch_var, keep, take, unbias);
  }
}

}  // namespace

template <typename stat_t>
void launch_update_running_stats(stat_t* running_mean, stat_t* running_var, const stat_t* mean, const stat_t* var,
                                 int64_t stat_rows, int64_t channels, const RunningStatsRule& rule,
                                 cudaStream_t stream) {
  update_running_stats_kernel<<<1, kRunningStatsThreads, 0, stream>>>(running_mean, running_var, mean, var, stat_rows,
                                                                      channels, rule);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template void launch_update_running_stats<float>(float*, float*, const float*, const float*, int64_t, int64_t,
                                                 const RunningStatsRule&, cudaStream_t);
template void launch_update_running_stats<double>(double*, double*, const double*, const double*, int64_t, int64_t,
                                                  const RunningStatsRule&, cudaStream_t);

}  // namespace genimg_fast
