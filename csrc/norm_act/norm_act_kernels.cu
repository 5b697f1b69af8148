// Fused normalization + activation: statistics, apply, backward reduce and backward apply,
// built from the generic tile kernels with per-element functors.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <type_traits>
#include <utility>

#include "common/vectorized.cuh"
#include "norm_act/block_kernels.cuh"
#include "norm_act/cluster_kernels.cuh"
#include "norm_act/norm_act_launch.h"
#include "norm_act/running_stats.cuh"
#include "norm_act/tile_kernels.cuh"
#include "norm_act/train_path.h"

namespace genimg_fast {
namespace {

__device__ __forceinline__ float fused_multiply_add(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double fused_multiply_add(double a, double b, double c) { return fma(a, b, c); }
__device__ __forceinline__ float reciprocal_sqrt(float v) { return rsqrtf(v); }
__device__ __forceinline__ double reciprocal_sqrt(double v) { return rsqrt(v); }

template <typename scalar_t>
struct GroupConstants {
  using scalar_type = scalar_t;
  using acc_t = acc_type_t<scalar_t>;
  NormActArgs<scalar_t> args;

  __device__ GroupAffine<acc_t> affine(acc_t mean, acc_t var, int64_t channel) const {
    return {mean, reciprocal_sqrt(var + args.eps), args.weight != nullptr ? args.weight[channel] : acc_t(1),
            args.bias != nullptr ? args.bias[channel] : acc_t(0)};
  }

  // The per-tile context of the ops built on these constants.
  __device__ GroupAffine<acc_t> context(int64_t group, int64_t channel) const {
    return affine(args.mean[group], args.var[group], channel);
  }

  // z = xhat * weight + bias: the one formula of forward and backward.
  __device__ acc_t pre_activation(const GroupAffine<acc_t>& a, acc_t xhat) const {
    return fused_multiply_add(xhat, a.weight, a.bias);
  }
};

// What the backward passes read of an element piece: the forward's input and the output's gradient.
template <typename scalar_t, int VEC>
struct InputAndGrad {
  AlignedVector<scalar_t, VEC> x, dy;
};

template <typename scalar_t>
struct StatsReducer {
  using acc_t = acc_type_t<scalar_t>;
  using Value = WelfordValue<acc_t>;
  struct Context {};
  const scalar_t* x;

  template <int VEC>
  using Loaded = AlignedVector<scalar_t, VEC>;

  __device__ Context context(int64_t, int64_t) const { return {}; }
  template <int VEC>
  __device__ Loaded<VEC> load(int64_t offset) const {
    return load_vector_at<VEC>(x, offset);
  }
  template <int VEC>
  __device__ void accumulate(Value& v, const Context&, const Loaded<VEC>& xv) const {
#pragma unroll
    for (int k = 0; k < VEC; ++k) v.push(static_cast<acc_t>(xv.val[k]));
  }
};

// Biased variance of a merged Welford value: the one formula of both forward paths.
template <typename acc_t>
__device__ __forceinline__ acc_t welford_variance(const WelfordValue<acc_t>& v) {
  return v.m2 / v.count;
}

// Writes a group's statistics; with a running target (batch norm: group == channel) also
// updates that channel's running statistics from the same values.
template <typename acc_t>
struct StatsFinish {
  acc_t* mean;
  acc_t* var;
  RunningStatsTarget<acc_t> running = {};
  __device__ void operator()(int64_t group, const WelfordValue<acc_t>& v) const {
    const acc_t batch_var = welford_variance(v);
    mean[group] = v.mean;
    var[group] = batch_var;
    update_running_target(running, group, v.mean, batch_var);
  }
};

template <typename scalar_t>
struct ApplyOp : GroupConstants<scalar_t> {
  using acc_t = acc_type_t<scalar_t>;
  scalar_t* y;

  template <int VEC>
  using Loaded = AlignedVector<scalar_t, VEC>;

  template <int VEC>
  __device__ Loaded<VEC> load(int64_t offset) const {
    return load_vector_at<VEC>(this->args.x, offset);
  }
  template <int VEC>
  __device__ void finish(const GroupAffine<acc_t>& a, int64_t offset, const Loaded<VEC>& xv) const {
    const auto& args = this->args;
    AlignedVector<scalar_t, VEC> yv;
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const acc_t z = this->pre_activation(a, a.xhat(static_cast<acc_t>(xv.val[k])));
      yv.val[k] = static_cast<scalar_t>(activation_forward(z, args.activation, args.slope));
    }
    store_vector_at<VEC>(y, offset, yv);
  }
};

// The training forward's second launch: merge the statistics' partials, publish mean/var, apply.
template <typename scalar_t>
struct StatsThenApplyOp : ApplyOp<scalar_t> {
  using acc_t = acc_type_t<scalar_t>;
  using Value = WelfordValue<acc_t>;
  StatsFinish<acc_t> stats;

  __device__ void publish(int64_t group, const Value& v) const { stats(group, v); }
  __device__ GroupAffine<acc_t> context(int64_t, int64_t channel, const Value& v) const {
    return this->affine(v.mean, welford_variance(v), channel);
  }
};

template <typename scalar_t>
struct BackwardReducer : GroupConstants<scalar_t> {
  using acc_t = acc_type_t<scalar_t>;
  using Value = SumPair<acc_t>;
  const scalar_t* dy;

  template <int VEC>
  using Loaded = InputAndGrad<scalar_t, VEC>;

  template <int VEC>
  __device__ Loaded<VEC> load(int64_t offset) const {
    return {load_vector_at<VEC>(this->args.x, offset), load_vector_at<VEC>(dy, offset)};
  }
  template <int VEC>
  __device__ void accumulate(Value& v, const GroupAffine<acc_t>& a, const Loaded<VEC>& in) const {
    const auto& args = this->args;
    const auto& xv = in.x;
    const auto& dyv = in.dy;
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const acc_t xhat = a.xhat(static_cast<acc_t>(xv.val[k]));
      const acc_t z = this->pre_activation(a, xhat);
      const acc_t dz = static_cast<acc_t>(dyv.val[k]) * activation_grad(z, args.activation, args.slope);
      v.first += dz;
      v.second += dz * xhat;
    }
  }
};

template <typename acc_t>
struct SumsFinish {
  acc_t* first;
  acc_t* second;
  __device__ void operator()(int64_t group, const SumPair<acc_t>& v) const {
    first[group] = v.first;
    second[group] = v.second;
  }
};

template <typename scalar_t>
struct BackwardApplyOp {
  using acc_t = acc_type_t<scalar_t>;
  struct Context {
    GroupAffine<acc_t> affine;
    acc_t mean_dz;       // sum(dz) / count
    acc_t mean_dz_xhat;  // sum(dz * xhat) / count
    acc_t scale;         // weight * invstd
  };
  GroupConstants<scalar_t> constants;
  const scalar_t* dy;
  const acc_t* sum_dz;       // nullptr: statistics were constants
  const acc_t* sum_dz_xhat;
  acc_t inv_count;
  scalar_t* dx;

  __device__ Context context_with(int64_t group, int64_t channel, bool batch_stats, acc_t group_sum_dz,
                                  acc_t group_sum_dz_xhat) const {
    Context c;
    c.affine = constants.context(group, channel);
    c.mean_dz = batch_stats ? group_sum_dz * inv_count : acc_t(0);
    c.mean_dz_xhat = batch_stats ? group_sum_dz_xhat * inv_count : acc_t(0);
    c.scale = c.affine.invstd * c.affine.weight;
    return c;
  }
  __device__ Context context(int64_t group, int64_t channel) const {
    const bool batch_stats = sum_dz != nullptr;
    return context_with(group, channel, batch_stats, batch_stats ? sum_dz[group] : acc_t(0),
                        batch_stats ? sum_dz_xhat[group] : acc_t(0));
  }
  template <int VEC>
  using Loaded = InputAndGrad<scalar_t, VEC>;

  template <int VEC>
  __device__ Loaded<VEC> load(int64_t offset) const {
    return {load_vector_at<VEC>(constants.args.x, offset), load_vector_at<VEC>(dy, offset)};
  }
  template <int VEC>
  __device__ void finish(const Context& c, int64_t offset, const Loaded<VEC>& in) const {
    const auto& args = constants.args;
    const auto& xv = in.x;
    const auto& dyv = in.dy;
    AlignedVector<scalar_t, VEC> dxv;
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const acc_t xhat = c.affine.xhat(static_cast<acc_t>(xv.val[k]));
      const acc_t z = constants.pre_activation(c.affine, xhat);
      acc_t dz = static_cast<acc_t>(dyv.val[k]) * activation_grad(z, args.activation, args.slope);
      if (sum_dz != nullptr) dz = dz - c.mean_dz - xhat * c.mean_dz_xhat;
      dxv.val[k] = static_cast<scalar_t>(dz * c.scale);
    }
    store_vector_at<VEC>(dx, offset, dxv);
  }
};

// The training backward's second launch: merge the sums' partials, publish them (per-group
// dweight/dbias), apply with batch statistics.
template <typename scalar_t>
struct SumsThenBackwardApplyOp : BackwardApplyOp<scalar_t> {
  using acc_t = acc_type_t<scalar_t>;
  using Value = SumPair<acc_t>;
  SumsFinish<acc_t> sums;

  __device__ void publish(int64_t group, const Value& v) const { sums(group, v); }
  __device__ typename BackwardApplyOp<scalar_t>::Context context(int64_t group, int64_t channel,
                                                                 const Value& v) const {
    return this->context_with(group, channel, true, v.first, v.second);
  }
};

template <typename V>
V* partials_in(void* workspace) {
  return static_cast<V*>(workspace);
}

// How many elements each NCHW access moves for these tensors (see nchw_vector_width).
template <typename scalar_t>
int vector_width(const NormTiling& t, std::initializer_list<const void*> tensors) {
  bool aligned = true;
  for (const void* p : tensors) aligned = aligned && is_aligned_16(p);
  return nchw_vector_width(t, kVectorWidth<scalar_t>, aligned);
}

// Launches an NCHW kernel with W-element vectors when vec == W, single elements otherwise.
#define GENIMG_LAUNCH_NCHW(kernel, W, vec, ...)                                 \
  do {                                                                         \
    if ((vec) == (W)) {                                                        \
      kernel<W><<<t.num_tiles, kNormThreads, 0, stream>>>(__VA_ARGS__);        \
    } else {                                                                   \
      kernel<1><<<t.num_tiles, kNormThreads, 0, stream>>>(__VA_ARGS__);        \
    }                                                                          \
  } while (0)

template <int W, typename Reducer>
void launch_reduce(const NormTiling& t, const Reducer& reducer, int vec, void* workspace, cudaStream_t stream) {
  auto* partials = partials_in<typename Reducer::Value>(workspace);
  if (t.channels_last) {
    reduce_nhwc_kernel<<<t.num_tiles, dim3(kNormTileChannels, kNormTileRows), 0, stream>>>(t, reducer, partials);
  } else {
    GENIMG_LAUNCH_NCHW(reduce_nchw_kernel, W, vec, t, reducer, partials);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Reduce, then merge into the elementwise pass: two launches. (Callers fall back to reduce,
// merge, elementwise when the tiling says the merge would cost more than a launch.)
template <int W, typename Reducer, typename MergingOp>
void run_reduce_then_merging_elementwise(const NormTiling& t, const Reducer& reducer, int reduce_vec,
                                         const MergingOp& op, int apply_vec, void* workspace, cudaStream_t stream) {
  launch_reduce<W>(t, reducer, reduce_vec, workspace, stream);
  const auto* partials = partials_in<typename MergingOp::Value>(workspace);
  if (t.channels_last) {
    merge_elementwise_nhwc_kernel<<<t.num_tiles, dim3(kNormTileChannels, kNormTileRows), 0, stream>>>(t, op,
                                                                                                      partials);
  } else {
    GENIMG_LAUNCH_NCHW(merge_elementwise_nchw_kernel, W, apply_vec, t, op, partials);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <int W, typename Reducer, typename Finish>
void run_grouped_reduction(const NormTiling& t, const Reducer& reducer, int vec, const Finish& finish,
                           void* workspace, cudaStream_t stream) {
  launch_reduce<W>(t, reducer, vec, workspace, stream);
  const auto* partials = partials_in<typename Reducer::Value>(workspace);
  const int64_t blocks = ceil_div(t.groups, kNormThreads / kWarpLanes);
  merge_partials_kernel<<<blocks, kNormThreads, 0, stream>>>(partials, t.groups, t.partials_per_group, finish);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <int W, typename Op>
void run_elementwise(const NormTiling& t, const Op& op, int vec, cudaStream_t stream) {
  if (t.channels_last) {
    elementwise_nhwc_kernel<<<t.num_tiles, dim3(kNormTileChannels, kNormTileRows), 0, stream>>>(t, op);
  } else {
    GENIMG_LAUNCH_NCHW(elementwise_nchw_kernel, W, vec, t, op);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}
#undef GENIMG_LAUNCH_NCHW

template <typename scalar_t>
void launch_norm_block_train(const NormTiling& t, const GroupConstants<scalar_t>& constants,
                             acc_type_t<scalar_t>* mean, acc_type_t<scalar_t>* var, scalar_t* y,
                             const RunningStatsTarget<acc_type_t<scalar_t>>& running, cudaStream_t stream) {
  const auto blocks = static_cast<unsigned>(t.groups);
  norm_block_train_kernel<kNormBlockItems><<<blocks, kNormBlockThreads, 0, stream>>>(
      t, RunDivider(static_cast<uint32_t>(t.S)), constants, mean, var, y, running);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t>
void launch_norm_block_backward(const NormTiling& t, const GroupConstants<scalar_t>& constants, const scalar_t* dy,
                                acc_type_t<scalar_t>* sum_dz, acc_type_t<scalar_t>* sum_dz_xhat,
                                acc_type_t<scalar_t> inv_count, scalar_t* dx, cudaStream_t stream) {
  const auto blocks = static_cast<unsigned>(t.groups);
  norm_block_backward_kernel<kNormBlockItems><<<blocks, kNormBlockThreads, 0, stream>>>(
      t, RunDivider(static_cast<uint32_t>(t.S)), constants, dy, sum_dz, sum_dz_xhat, inv_count, dx);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// A launch of `groups` clusters of `blocks` blocks each (the attribute lives in `cluster`).
cudaLaunchConfig_t cluster_launch_config(int64_t groups, int blocks, cudaStream_t stream,
                                         cudaLaunchAttribute& cluster) {
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = static_cast<unsigned>(blocks);
  cluster.val.clusterDim.y = 1;
  cluster.val.clusterDim.z = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(groups * blocks));
  config.blockDim = dim3(kNormClusterThreads);
  config.stream = stream;
  config.attrs = &cluster;
  config.numAttrs = 1;
  return config;
}

template <typename... Params, typename... Args>
void launch_clusters(void (*kernel)(Params...), int64_t groups, int blocks, cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute cluster;
  const cudaLaunchConfig_t config = cluster_launch_config(groups, blocks, stream, cluster);
  C10_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

// The kernel instantiation for a thread's `items` values (4, 8 or 16).
#define GENIMG_CLUSTER_KERNEL(kernel, items, Constants)                           \
  ((items) == 4 ? &kernel<4, Constants> : (items) == 8 ? &kernel<8, Constants> \
                                                        : &kernel<16, Constants>)

template <typename scalar_t>
void launch_norm_cluster_train(const NormTiling& t, const GroupConstants<scalar_t>& constants,
                               acc_type_t<scalar_t>* mean, acc_type_t<scalar_t>* var, scalar_t* y,
                               const RunningStatsTarget<acc_type_t<scalar_t>>& running, cudaStream_t stream) {
  const NormClusterShape shape = norm_cluster_shape(values_per_group(t));
  launch_clusters(GENIMG_CLUSTER_KERNEL(norm_cluster_train_kernel, shape.items, GroupConstants<scalar_t>), t.groups,
                  shape.blocks, stream, t, RunDivider(static_cast<uint32_t>(t.S)), constants, mean, var, y, running);
}

template <typename scalar_t>
void launch_norm_cluster_backward(const NormTiling& t, const GroupConstants<scalar_t>& constants, const scalar_t* dy,
                                  acc_type_t<scalar_t>* sum_dz, acc_type_t<scalar_t>* sum_dz_xhat,
                                  acc_type_t<scalar_t> inv_count, scalar_t* dx, cudaStream_t stream) {
  const NormClusterShape shape = norm_cluster_shape(values_per_group(t));
  launch_clusters(GENIMG_CLUSTER_KERNEL(norm_cluster_backward_kernel, shape.items, GroupConstants<scalar_t>),
                  t.groups, shape.blocks, stream, t, RunDivider(static_cast<uint32_t>(t.S)), constants, dy, sum_dz,
                  sum_dz_xhat, inv_count, dx);
}
#undef GENIMG_CLUSTER_KERNEL

bool cuda_succeeded(cudaError_t status) {
  if (status == cudaSuccess) return true;
  (void)cudaGetLastError();  // a non-sticky error: cleared, so later calls do not report it
  return false;
}

// Whether `kernel` was loaded from code built for sm_90+ and a cluster of the largest size fits
// the device; nullopt when a query failed.
std::optional<bool> runs_largest_clusters(const void* kernel) {
  cudaFuncAttributes attributes;
  if (!cuda_succeeded(cudaFuncGetAttributes(&attributes, kernel))) return std::nullopt;
  // ptxVersion is the virtual architecture the loaded code came from (__CUDA_ARCH__ / 10):
  // code JIT-compiled from older PTX has no cluster support compiled in.
  if (attributes.ptxVersion < 90 || attributes.binaryVersion < 90) return false;
  cudaLaunchAttribute cluster;
  const cudaLaunchConfig_t config = cluster_launch_config(1, kNormClusterMaxBlocks, nullptr, cluster);
  int clusters = 0;
  if (!cuda_succeeded(cudaOccupancyMaxActiveClusters(&clusters, kernel, &config))) return std::nullopt;
  return clusters > 0;
}

// Whether `device` runs the cluster kernels; nullopt when a query failed: then the tile path
// serves this call, and a later one asks again.
std::optional<bool> query_cluster_support(int device) {
  int major = 0;
  if (!cuda_succeeded(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device))) return std::nullopt;
  if (major < 9) return false;
  // The instantiations holding the most values a thread use the most registers (ptxas, sm_90:
  // 78-105, the fp16/bf16 backward the most): where their clusters fit, every other's do.
  constexpr int kItems = kNormClusterMaxItems;
  const void* const largest[] = {
      reinterpret_cast<const void*>(&norm_cluster_train_kernel<kItems, GroupConstants<float>>),
      reinterpret_cast<const void*>(&norm_cluster_train_kernel<kItems, GroupConstants<c10::Half>>),
      reinterpret_cast<const void*>(&norm_cluster_train_kernel<kItems, GroupConstants<c10::BFloat16>>),
      reinterpret_cast<const void*>(&norm_cluster_backward_kernel<kItems, GroupConstants<float>>),
      reinterpret_cast<const void*>(&norm_cluster_backward_kernel<kItems, GroupConstants<c10::Half>>),
      reinterpret_cast<const void*>(&norm_cluster_backward_kernel<kItems, GroupConstants<c10::BFloat16>>)};
  for (const void* kernel : largest) {
    const std::optional<bool> runs = runs_largest_clusters(kernel);
    if (!runs.value_or(false)) return runs;  // a failed query (nullopt) or a no
  }
  return true;
}

// The deprecated cap of both paths, read where a path's own variable is unset.
constexpr const char* kDeprecatedCapEnv = "GENIMG_FAST_SINGLE_PASS_MAX";

// A path's cap from the environment variable `name` (else the deprecated one): at most `largest`,
// which is also the cap when neither is set.
int64_t group_cap_from_env(const char* name, int64_t largest) {
  const char* variable = name;
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') {
    variable = kDeprecatedCapEnv;
    text = std::getenv(kDeprecatedCapEnv);
  }
  if (text == nullptr || *text == '\0') return largest;
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 10);
  TORCH_CHECK(*end == '\0' && value >= 0, variable, " must be a whole number of values >= 0, got '", text, "'");
  return std::min<int64_t>(value, largest);
}

}  // namespace

int64_t norm_block_max_count() {
  static const int64_t max_count = group_cap_from_env("GENIMG_FAST_NORM_BLOCK_MAX", kNormBlockMaxCount);
  return max_count;
}

int64_t norm_cluster_max_count() {
  static const int64_t max_count = group_cap_from_env("GENIMG_FAST_NORM_CLUSTER_MAX", kNormClusterMaxCount);
  return max_count;
}

bool norm_cluster_supported() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int8_t> cache[kMaxDevices] = {};  // 0 unknown, 1 no, 2 yes
  const int device = c10::cuda::current_device();
  if (device < 0 || device >= kMaxDevices) return query_cluster_support(device).value_or(false);
  int8_t known = cache[device].load(std::memory_order_relaxed);
  if (known == 0) {
    const std::optional<bool> supported = query_cluster_support(device);
    if (!supported.has_value()) return false;
    known = *supported ? 2 : 1;
    cache[device].store(known, std::memory_order_relaxed);
  }
  return known == 2;
}

size_t norm_reduce_workspace_bytes(const NormTiling& t, bool is_double) {
  const size_t value_bytes = 3 * (is_double ? sizeof(double) : sizeof(float));  // Welford: the larger value
  return static_cast<size_t>(t.groups) * static_cast<size_t>(t.partials_per_group) * value_bytes;
}

template <typename scalar_t>
void run_norm_stats(const NormTiling& t, const scalar_t* x, const StatsFinish<acc_type_t<scalar_t>>& finish,
                    void* workspace, cudaStream_t stream) {
  run_grouped_reduction<kVectorWidth<scalar_t>>(t, StatsReducer<scalar_t>{x}, vector_width<scalar_t>(t, {x}), finish,
                                                workspace, stream);
}

template <typename scalar_t>
void launch_norm_stats(const NormTiling& t, const scalar_t* x, acc_type_t<scalar_t>* mean, acc_type_t<scalar_t>* var,
                       void* workspace, cudaStream_t stream) {
  run_norm_stats(t, x, StatsFinish<acc_type_t<scalar_t>>{mean, var}, workspace, stream);
}

template <typename scalar_t>
void launch_norm_act_apply(const NormTiling& t, const NormActArgs<scalar_t>& args, scalar_t* y, cudaStream_t stream) {
  run_elementwise<kVectorWidth<scalar_t>>(t, ApplyOp<scalar_t>{{args}, y}, vector_width<scalar_t>(t, {args.x, y}),
                                          stream);
}

template <typename scalar_t>
void launch_norm_act_backward_reduce(const NormTiling& t, const NormActArgs<scalar_t>& args, const scalar_t* dy,
                                     acc_type_t<scalar_t>* sum_dz, acc_type_t<scalar_t>* sum_dz_xhat,
                                     void* workspace, cudaStream_t stream) {
  run_grouped_reduction<kVectorWidth<scalar_t>>(t, BackwardReducer<scalar_t>{{args}, dy},
                                                vector_width<scalar_t>(t, {args.x, dy}),
                                                SumsFinish<acc_type_t<scalar_t>>{sum_dz, sum_dz_xhat}, workspace,
                                                stream);
}

template <typename scalar_t>
void launch_norm_act_backward_apply(const NormTiling& t, const NormActArgs<scalar_t>& args, const scalar_t* dy,
                                    const acc_type_t<scalar_t>* sum_dz, const acc_type_t<scalar_t>* sum_dz_xhat,
                                    double count, scalar_t* dx, cudaStream_t stream) {
  using acc_t = acc_type_t<scalar_t>;
  const BackwardApplyOp<scalar_t> op{{args}, dy, sum_dz, sum_dz_xhat, static_cast<acc_t>(1.0 / count), dx};
  run_elementwise<kVectorWidth<scalar_t>>(t, op, vector_width<scalar_t>(t, {args.x, dy, dx}), stream);
}

template <typename scalar_t>
void launch_norm_act_train(const NormTiling& t, TrainPath path, const NormActArgs<scalar_t>& args,
                           acc_type_t<scalar_t>* mean, acc_type_t<scalar_t>* var, scalar_t* y, void* workspace,
                           cudaStream_t stream, const RunningStatsTarget<acc_type_t<scalar_t>>& running) {
  using acc_t = acc_type_t<scalar_t>;
  // running statistics are per channel: only batch norm's groups are channels
  TORCH_INTERNAL_ASSERT(running.mean == nullptr || !t.per_sample);
  if constexpr (std::is_same_v<acc_t, float>) {
    if (path == TrainPath::kBlock) {
      launch_norm_block_train(t, GroupConstants<scalar_t>{args}, mean, var, y, running, stream);
      return;
    }
    if (path == TrainPath::kCluster) {
      launch_norm_cluster_train(t, GroupConstants<scalar_t>{args}, mean, var, y, running, stream);
      return;
    }
  }
  TORCH_INTERNAL_ASSERT(workspace != nullptr, "the tile path needs norm_reduce_workspace_bytes of workspace");
  const StatsFinish<acc_t> finish{mean, var, running};
  if (!t.merge_in_elementwise) {
    run_norm_stats(t, args.x, finish, workspace, stream);
    NormActArgs<scalar_t> with_stats = args;
    with_stats.mean = mean;
    with_stats.var = var;
    launch_norm_act_apply(t, with_stats, y, stream);
    return;
  }
  StatsThenApplyOp<scalar_t> op;
  op.args = args;
  op.y = y;
  op.stats = finish;
  run_reduce_then_merging_elementwise<kVectorWidth<scalar_t>>(t, StatsReducer<scalar_t>{args.x},
                                                              vector_width<scalar_t>(t, {args.x}), op,
                                                              vector_width<scalar_t>(t, {args.x, y}), workspace,
                                                              stream);
}

template <typename scalar_t>
void launch_norm_act_train_backward(const NormTiling& t, TrainPath path, const NormActArgs<scalar_t>& args,
                                    const scalar_t* dy,
                                    acc_type_t<scalar_t>* sum_dz, acc_type_t<scalar_t>* sum_dz_xhat, double count,
                                    scalar_t* dx, void* workspace, cudaStream_t stream) {
  using acc_t = acc_type_t<scalar_t>;
  if constexpr (std::is_same_v<acc_t, float>) {
    if (path == TrainPath::kBlock) {
      launch_norm_block_backward(t, GroupConstants<scalar_t>{args}, dy, sum_dz, sum_dz_xhat,
                                 static_cast<acc_t>(1.0 / count), dx, stream);
      return;
    }
    if (path == TrainPath::kCluster) {
      launch_norm_cluster_backward(t, GroupConstants<scalar_t>{args}, dy, sum_dz, sum_dz_xhat,
                                   static_cast<acc_t>(1.0 / count), dx, stream);
      return;
    }
  }
  TORCH_INTERNAL_ASSERT(workspace != nullptr, "the tile path needs norm_reduce_workspace_bytes of workspace");
  if (!t.merge_in_elementwise) {
    launch_norm_act_backward_reduce(t, args, dy, sum_dz, sum_dz_xhat, workspace, stream);
    launch_norm_act_backward_apply(t, args, dy, sum_dz, sum_dz_xhat, count, dx, stream);
    return;
  }
  SumsThenBackwardApplyOp<scalar_t> op;
  op.constants = GroupConstants<scalar_t>{args};
  op.dy = dy;
  op.sum_dz = sum_dz;
  op.sum_dz_xhat = sum_dz_xhat;
  op.inv_count = static_cast<acc_t>(1.0 / count);
  op.dx = dx;
  op.sums = SumsFinish<acc_t>{sum_dz, sum_dz_xhat};
  run_reduce_then_merging_elementwise<kVectorWidth<scalar_t>>(t, BackwardReducer<scalar_t>{{args}, dy},
                                                              vector_width<scalar_t>(t, {args.x, dy}), op,
                                                              vector_width<scalar_t>(t, {args.x, dy, dx}),
                                                              workspace, stream);
}

#define GENIMG_INSTANTIATE_NORM_ACT(T)                                                                             \
  template void launch_norm_stats<T>(const NormTiling&, const T*, acc_type_t<T>*, acc_type_t<T>*, void*,           \
                                     cudaStream_t);                                                                \
  template void launch_norm_act_apply<T>(const NormTiling&, const NormActArgs<T>&, T*, cudaStream_t);             \
  template void launch_norm_act_backward_reduce<T>(const NormTiling&, const NormActArgs<T>&, const T*,            \
                                                   acc_type_t<T>*, acc_type_t<T>*, void*, cudaStream_t);          \
  template void launch_norm_act_backward_apply<T>(const NormTiling&, const NormActArgs<T>&, const T*,             \
                                                  const acc_type_t<T>*, const acc_type_t<T>*, double, T*,         \
                                                  cudaStream_t);                                                  \
  template void launch_norm_act_train<T>(const NormTiling&, TrainPath, const NormActArgs<T>&, acc_type_t<T>*,      \
                                         acc_type_t<T>*, T*, void*, cudaStream_t,                                 \
                                         const RunningStatsTarget<acc_type_t<T>>&);                               \
  template void launch_norm_act_train_backward<T>(const NormTiling&, TrainPath, const NormActArgs<T>&, const T*,  \
                                                  acc_type_t<T>*, acc_type_t<T>*, double, T*, void*, cudaStream_t);
GENIMG_INSTANTIATE_NORM_ACT(float)
GENIMG_INSTANTIATE_NORM_ACT(double)
GENIMG_INSTANTIATE_NORM_ACT(c10::Half)
GENIMG_INSTANTIATE_NORM_ACT(c10::BFloat16)
#undef GENIMG_INSTANTIATE_NORM_ACT

}  // namespace genimg_fast
