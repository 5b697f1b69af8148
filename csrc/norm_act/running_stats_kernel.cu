// In-place running-statistics update of batch norm (and instance norm with running stats).
#include <c10/cuda/CUDAException.h>

#include "norm_act/norm_act_launch.h"

namespace genimg_fast {
namespace {

template <typename stat_t>
__global__ void update_running_stats_kernel(stat_t* __restrict__ running_mean, stat_t* __restrict__ running_var,
                                            const stat_t* __restrict__ mean, const stat_t* __restrict__ var,
                                            int64_t stat_rows, int64_t channels, stat_t unbias, stat_t momentum) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  stat_t batch_mean = 0, batch_var = 0;
  for (int64_t r = 0; r < stat_rows; ++r) {  // instance norm: average over the samples
    batch_mean += mean[r * channels + c];
    batch_var += var[r * channels + c];
  }
  batch_mean /= static_cast<stat_t>(stat_rows);
  batch_var /= static_cast<stat_t>(stat_rows);
  running_mean[c] = (stat_t(1) - momentum) * running_mean[c] + momentum * batch_mean;
  running_var[c] = (stat_t(1) - momentum) * running_var[c] + momentum * batch_var * unbias;
}

}  // namespace

template <typename stat_t>
void launch_update_running_stats(stat_t* running_mean, stat_t* running_var, const stat_t* mean, const stat_t* var,
                                 int64_t stat_rows, int64_t channels, double unbias, double momentum,
                                 cudaStream_t stream) {
  constexpr int kThreads = 128;
  const int64_t blocks = ceil_div(channels, kThreads);
  update_running_stats_kernel<<<blocks, kThreads, 0, stream>>>(running_mean, running_var, mean, var, stat_rows,
                                                               channels, static_cast<stat_t>(unbias),
                                                               static_cast<stat_t>(momentum));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template void launch_update_running_stats<float>(float*, float*, const float*, const float*, int64_t, int64_t, double,
                                                 double, cudaStream_t);
template void launch_update_running_stats<double>(double*, double*, const double*, const double*, int64_t, int64_t,
                                                  double, double, cudaStream_t);

}  // namespace genimg_fast
