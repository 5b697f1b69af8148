#pragma once
// Launchers of the fused norm + activation kernels (norm_act_kernels.cu). Pointers are to
// dense tensors in the tiling's layout; statistics, parameters and sums are in the
// accumulation type (float, or double for double inputs); weight/bias may be null (1 and 0).
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "common/acc_type.h"
#include "norm_act/norm_act_math.h"
#include "norm_act/norm_act_tiling.h"
#include "norm_act/train_path.h"

namespace genimg_fast {

// Workspace the reductions need for their per-tile partials (enough for either reduction). The
// training ops need it on the tile path only (train_path.h).
size_t norm_reduce_workspace_bytes(const NormTiling& tiling, bool is_double);

// Running statistics for a batch-norm training forward to update as it publishes its
// statistics (momentum given): mean == null means none. keep = 1 - momentum, take = momentum and
// unbias = count / (count - 1), rounded to stat_t as the update kernel rounds them.
template <typename stat_t>
struct RunningStatsTarget {
  stat_t* mean = nullptr;
  stat_t* var = nullptr;
  int64_t* num_batches_tracked = nullptr;  // nullable
  stat_t keep = 1, take = 0, unbias = 1;
};

template <typename scalar_t>
struct NormActArgs {
  using acc_t = acc_type_t<scalar_t>;
  const scalar_t* x;
  const acc_t* mean;
  const acc_t* var;
  const acc_t* weight;  // nullable
  const acc_t* bias;    // nullable
  acc_t eps;
  Activation activation;
  acc_t slope;
};

// mean/var (biased) of every group.
template <typename scalar_t>
void launch_norm_stats(const NormTiling& tiling, const scalar_t* x, acc_type_t<scalar_t>* mean,
                       acc_type_t<scalar_t>* var, void* workspace, cudaStream_t stream);

// y = act(xhat * weight + bias).
template <typename scalar_t>
void launch_norm_act_apply(const NormTiling& tiling, const NormActArgs<scalar_t>& args, scalar_t* y,
                           cudaStream_t stream);

// Per group: sum(dz), sum(dz * xhat), dz = dy * act'(z).
template <typename scalar_t>
void launch_norm_act_backward_reduce(const NormTiling& tiling, const NormActArgs<scalar_t>& args,
                                     const scalar_t* dy, acc_type_t<scalar_t>* sum_dz,
                                     acc_type_t<scalar_t>* sum_dz_xhat, void* workspace, cudaStream_t stream);

// dx = weight * invstd * (dz - sum_dz / count - xhat * sum_dz_xhat / count), or without the
// sums (nullptr: statistics were constants) weight * invstd * dz.
template <typename scalar_t>
void launch_norm_act_backward_apply(const NormTiling& tiling, const NormActArgs<scalar_t>& args,
                                    const scalar_t* dy, const acc_type_t<scalar_t>* sum_dz,
                                    const acc_type_t<scalar_t>* sum_dz_xhat, double count, scalar_t* dx,
                                    cudaStream_t stream);

// The training forward on `path` (train_path(tiling, ...), chosen once by the caller, which
// gives the tile path its workspace): on the tile path two launches, statistics partials, then
// one pass that merges them, writes mean/var (biased) and y = act(xhat * weight + bias); on the
// block and cluster paths one (a block or a cluster a group, its values in registers, two-pass
// statistics: not the bits of the separate stats + apply ops there). args.mean/var are not read. With
// a running target (batch norm only), the pass that publishes a channel's statistics also
// updates its running statistics (and the batch counter): no third launch.
template <typename scalar_t>
void launch_norm_act_train(const NormTiling& tiling, TrainPath path, const NormActArgs<scalar_t>& args,
                           acc_type_t<scalar_t>* mean, acc_type_t<scalar_t>* var, scalar_t* y, void* workspace,
                           cudaStream_t stream, const RunningStatsTarget<acc_type_t<scalar_t>>& running = {});

// The training backward on `path`: on the tile path two launches, partials of sum(dz) and
// sum(dz * xhat), then one pass that merges them, writes the per-group sums and dx (batch
// statistics over `count` values); on the block and cluster paths one.
template <typename scalar_t>
void launch_norm_act_train_backward(const NormTiling& tiling, TrainPath path, const NormActArgs<scalar_t>& args,
                                    const scalar_t* dy, acc_type_t<scalar_t>* sum_dz,
                                    acc_type_t<scalar_t>* sum_dz_xhat, double count, scalar_t* dx, void* workspace,
                                    cudaStream_t stream);

// torch.nn.BatchNorm2d's rule: num_batches_tracked += 1 (when not null), then
// running = (1 - f) * running + f * stat with f = momentum, or 1 / num_batches_tracked when
// cumulative (momentum=None; 0 without a counter). Variance times `unbias`.
struct RunningStatsRule {
  double unbias;
  double momentum;
  bool cumulative;
  int64_t* num_batches_tracked;  // nullable
};

// The update with stats averaged over `stat_rows` rows of C values (the samples of instance
// norm; 1 for batch norm).
template <typename stat_t>
void launch_update_running_stats(stat_t* running_mean, stat_t* running_var, const stat_t* mean, const stat_t* var,
                                 int64_t stat_rows, int64_t channels, const RunningStatsRule& rule,
                                 cudaStream_t stream);

}  // namespace genimg_fast
