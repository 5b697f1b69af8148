// CUDA implementations of the genimg_fast::norm_act_* ops (schemas and references:
// genimg_fast/ops/norm_act.py). Inputs must be dense NCHW or channels_last to be read in
// place; anything else is made dense first. Outputs are allocated like torch.empty_like(x),
// as the fake impls do, so they keep a dense input's memory format. An op whose kernels may not
// run (common/kernel_paths.h) calls its reference instead.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <limits>
#include <optional>
#include <tuple>

#include "common/kernel_paths.h"
#include "common/reference_fallback.h"
#include "norm_act/norm_act_checks.h"
#include "norm_act/norm_act_launch.h"

namespace genimg_fast {
namespace {

using OptTensor = std::optional<at::Tensor>;

// x made dense (no copy when it already is), with the layout the kernels will use.
struct DenseInput {
  at::Tensor x;
  bool channels_last;
};

DenseInput dense_input(const at::Tensor& x) {
  if (x.is_contiguous()) return {x, false};
  if (x.is_contiguous(at::MemoryFormat::ChannelsLast)) return {x, true};
  const auto format = x.suggest_memory_format();
  return {x.contiguous(format), format == at::MemoryFormat::ChannelsLast};
}

at::Tensor in_layout(const at::Tensor& t, const DenseInput& in) {
  return t.contiguous(in.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
}

NormTiling tiling_for(const DenseInput& in, bool per_sample) {
  const at::Tensor& x = in.x;
  const NormTiling t = plan_norm_tiling(x.size(0), x.size(1), x.size(2) * x.size(3), in.channels_last, per_sample);
  TORCH_CHECK(t.num_tiles < std::numeric_limits<int32_t>::max(), "genimg_fast: tensor too large for the norm kernels");
  return t;
}

at::ScalarType acc_scalar_type(const at::Tensor& x) {
  return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

// t as a contiguous `dtype` tensor: t itself, without a dispatcher call, when it already is one
// (the usual fp32 parameters and statistics; small steps are bound by host time).
at::Tensor contiguous_as(const at::Tensor& t, at::ScalarType dtype) {
  if (t.scalar_type() == dtype && t.is_contiguous()) return t;
  return t.to(dtype).contiguous();
}

OptTensor as_acc(const OptTensor& t, at::ScalarType acc) {
  if (!t.has_value()) return std::nullopt;
  return contiguous_as(*t, acc);
}

// Output allocated like torch.empty_like(x); `work` is where the kernel writes (x's dense layout).
struct Output {
  at::Tensor result;
  at::Tensor work;
  at::Tensor finish() {
    if (!work.is_same(result)) result.copy_(work);
    return result;
  }
};

Output output_like(const at::Tensor& x, const DenseInput& in) {
  at::Tensor result = at::empty_like(x);
  if (same_dense_layout(result, in.x)) return {result, result};
  return {result, at::empty_like(in.x)};
}

at::Tensor stat_tensor(const at::Tensor& x, bool per_sample) {
  const auto options = x.options().dtype(acc_scalar_type(x));
  return per_sample ? at::empty({x.size(0), x.size(1)}, options) : at::empty({x.size(1)}, options);
}

// The statistics of an input with no elements: NaN, as the references return.
std::tuple<at::Tensor, at::Tensor> empty_input_stats(const at::Tensor& x, bool per_sample) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  return {stat_tensor(x, per_sample).fill_(nan), stat_tensor(x, per_sample).fill_(nan)};
}

// The reductions' workspace. The training ops need none off the tile path (`path`): an
// undefined tensor then, no allocator call.
at::Tensor workspace_for(const NormTiling& t, const at::Tensor& x, TrainPath path = TrainPath::kTiles) {
  const auto bytes = path == TrainPath::kTiles ? norm_reduce_workspace_bytes(t, x.scalar_type() == at::kDouble) : 0;
  return bytes == 0 ? at::Tensor() : at::empty({static_cast<int64_t>(bytes)}, x.options().dtype(at::kByte));
}

// The training kernels for x's tiling (train_path.h): chosen once, for the workspace and the launch.
TrainPath training_path(const NormTiling& t, const at::Tensor& x) {
  return train_path(t, /*float_accumulation=*/x.scalar_type() != at::kDouble);
}

void* data_or_null(at::Tensor& workspace) { return workspace.defined() ? workspace.mutable_data_ptr() : nullptr; }

template <typename scalar_t>
NormActArgs<scalar_t> make_args(const at::Tensor& x, const at::Tensor& mean, const at::Tensor& var,
                                const OptTensor& weight, const OptTensor& bias, double eps, Activation act,
                                double slope) {
  using acc_t = acc_type_t<scalar_t>;
  return {x.const_data_ptr<scalar_t>(),
          mean.const_data_ptr<acc_t>(),
          var.const_data_ptr<acc_t>(),
          weight.has_value() ? weight->const_data_ptr<acc_t>() : nullptr,
          bias.has_value() ? bias->const_data_ptr<acc_t>() : nullptr,
          static_cast<acc_t>(eps),
          act,
          static_cast<acc_t>(slope)};
}

#define GENIMG_DISPATCH_FLOATS(x, name, ...) \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, (x).scalar_type(), name, __VA_ARGS__)

// Fills mean/var of a non-empty input.
void compute_stats(const DenseInput& in, const NormTiling& t, at::Tensor& mean, at::Tensor& var) {
  at::Tensor workspace = workspace_for(t, in.x);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  GENIMG_DISPATCH_FLOATS(in.x, "genimg_fast_norm_stats", [&] {
    using acc_t = acc_type_t<scalar_t>;
    launch_norm_stats<scalar_t>(t, in.x.const_data_ptr<scalar_t>(), mean.mutable_data_ptr<acc_t>(),
                                var.mutable_data_ptr<acc_t>(), data_or_null(workspace), stream);
  });
}

void apply_into(const DenseInput& in, const NormTiling& t, const at::Tensor& mean, const at::Tensor& var,
                const OptTensor& weight, const OptTensor& bias, double eps, Activation act, double slope,
                at::Tensor& y) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  GENIMG_DISPATCH_FLOATS(in.x, "genimg_fast_norm_act_apply", [&] {
    launch_norm_act_apply<scalar_t>(t, make_args<scalar_t>(in.x, mean, var, weight, bias, eps, act, slope),
                                    y.mutable_data_ptr<scalar_t>(), stream);
  });
}

std::tuple<at::Tensor, at::Tensor> backward_sums(const DenseInput& in, const NormTiling& t, const at::Tensor& dy,
                                                 const at::Tensor& mean, const at::Tensor& var,
                                                 const OptTensor& weight, const OptTensor& bias, double eps,
                                                 Activation act, double slope) {
  at::Tensor sum_dz = at::empty_like(mean), sum_dz_xhat = at::empty_like(mean);
  at::Tensor workspace = workspace_for(t, in.x);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  GENIMG_DISPATCH_FLOATS(in.x, "genimg_fast_norm_act_backward_reduce", [&] {
    using acc_t = acc_type_t<scalar_t>;
    launch_norm_act_backward_reduce<scalar_t>(t, make_args<scalar_t>(in.x, mean, var, weight, bias, eps, act, slope),
                                              dy.const_data_ptr<scalar_t>(), sum_dz.mutable_data_ptr<acc_t>(),
                                              sum_dz_xhat.mutable_data_ptr<acc_t>(), data_or_null(workspace),
                                              stream);
  });
  return {sum_dz, sum_dz_xhat};
}

void backward_apply_into(const DenseInput& in, const NormTiling& t, const at::Tensor& dy, const at::Tensor& mean,
                         const at::Tensor& var, const OptTensor& weight, const OptTensor& bias,
                         const OptTensor& sum_dz, const OptTensor& sum_dz_xhat, double count, double eps,
                         Activation act, double slope, at::Tensor& dx) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  GENIMG_DISPATCH_FLOATS(in.x, "genimg_fast_norm_act_backward_apply", [&] {
    using acc_t = acc_type_t<scalar_t>;
    launch_norm_act_backward_apply<scalar_t>(
        t, make_args<scalar_t>(in.x, mean, var, weight, bias, eps, act, slope), dy.const_data_ptr<scalar_t>(),
        sum_dz.has_value() ? sum_dz->const_data_ptr<acc_t>() : nullptr,
        sum_dz_xhat.has_value() ? sum_dz_xhat->const_data_ptr<acc_t>() : nullptr, count,
        dx.mutable_data_ptr<scalar_t>(), stream);
  });
}

// (N, C) per-sample sums -> (C,) per-channel sums.
at::Tensor per_channel(const at::Tensor& per_sample_sums) {
  return per_sample_sums.size(0) == 1 ? per_sample_sums.view({per_sample_sums.size(1)}) : per_sample_sums.sum(0);
}

void check_params(const at::Tensor& x, const OptTensor& weight, const OptTensor& bias, const char* op) {
  check_norm_input(x, op);
  check_norm_param(weight, "weight", x, op);
  check_norm_param(bias, "bias", x, op);
}

// The arguments every backward op shares; returns the parsed activation.
Activation check_backward_args(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& mean,
                               const at::Tensor& var, const OptTensor& weight, const OptTensor& bias,
                               c10::string_view activation, const char* op) {
  check_params(x, weight, bias, op);
  check_norm_stats(mean, var, x, op);
  check_norm_grad(grad_y, x, op);
  return parse_activation(activation, op);
}

// The factor that makes a biased variance of `count` values unbiased (torch's rule).
double unbias_factor(int64_t count) {
  return count > 1 ? static_cast<double>(count) / static_cast<double>(count - 1) : 1.0;
}

// Whether kernels can write these running statistics directly: contiguous, in the statistics'
// float or double type. Otherwise (half-precision buffers of model.half(), views) the update is
// tensor math.
bool kernels_can_write(const at::Tensor& running_mean, const at::Tensor& running_var,
                       const OptTensor& num_batches_tracked, at::ScalarType stat_type) {
  return (stat_type == at::kFloat || stat_type == at::kDouble) && running_mean.scalar_type() == stat_type &&
         running_var.scalar_type() == stat_type && running_mean.is_contiguous() && running_var.is_contiguous() &&
         (!num_batches_tracked.has_value() || num_batches_tracked->is_contiguous());
}

// torch's running-statistics rule (see RunningStatsRule) for statistics of `count` values per group.
void update_running(at::Tensor& running_mean, at::Tensor& running_var, const OptTensor& num_batches_tracked,
                    const at::Tensor& mean, const at::Tensor& var, int64_t count, std::optional<double> momentum) {
  const double unbias = unbias_factor(count);
  const bool by_kernel = var.scalar_type() == mean.scalar_type() &&
                         kernels_can_write(running_mean, running_var, num_batches_tracked, mean.scalar_type()) &&
                         take_kernel_path(KernelPath::kRunningStats, "torch's tensor ops");
  if (!by_kernel) {
    // plain tensor math, still no host read
    at::Tensor factor = at::full({}, momentum.value_or(0.0), mean.options().dtype(at::kDouble));
    if (num_batches_tracked.has_value()) {
      num_batches_tracked->add_(1);
      if (!momentum.has_value()) factor = num_batches_tracked->reshape({}).to(at::kDouble).reciprocal();
    }
    const at::Tensor m = mean.dim() == 2 ? mean.mean(0) : mean;
    const at::Tensor v = var.dim() == 2 ? var.mean(0) : var;
    const at::Tensor keep = factor.neg().add(1);
    running_mean.copy_(running_mean.mul(keep).add(m.to(running_mean.scalar_type()).mul(factor)));
    running_var.copy_(running_var.mul(keep).add(v.mul(unbias).to(running_var.scalar_type()).mul(factor)));
    return;
  }
  const at::Tensor m = mean.contiguous(), v = var.contiguous();
  const int64_t rows = mean.dim() == 2 ? mean.size(0) : 1;
  const RunningStatsRule rule{unbias, momentum.value_or(0.0), !momentum.has_value(),
                              num_batches_tracked.has_value() ? num_batches_tracked->mutable_data_ptr<int64_t>()
                                                              : nullptr};
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(mean.scalar_type(), "genimg_fast_update_running_stats", [&] {
    launch_update_running_stats<scalar_t>(running_mean.mutable_data_ptr<scalar_t>(),
                                          running_var.mutable_data_ptr<scalar_t>(), m.const_data_ptr<scalar_t>(),
                                          v.const_data_ptr<scalar_t>(), rows, mean.size(-1), rule, stream);
  });
}

// ---- ops ----

std::tuple<at::Tensor, at::Tensor> norm_act_stats_cuda(const at::Tensor& x, bool per_sample) {
  check_norm_input(x, "genimg_fast.norm_act_stats");
  const c10::cuda::CUDAGuard guard(x.device());
  if (x.numel() == 0) return empty_input_stats(x, per_sample);
  if (!take_kernel_path(KernelPath::kNormTiles, kReferenceInstead)) {
    return call_reference<decltype(norm_act_stats_cuda)>("genimg_fast::norm_act_stats", x, per_sample);
  }
  at::Tensor mean = stat_tensor(x, per_sample), var = stat_tensor(x, per_sample);
  const DenseInput in = dense_input(x);
  compute_stats(in, tiling_for(in, per_sample), mean, var);
  return {mean, var};
}

at::Tensor norm_act_apply_cuda(const at::Tensor& x, const at::Tensor& mean, const at::Tensor& var,
                               const OptTensor& weight, const OptTensor& bias, double eps,
                               c10::string_view activation, double slope) {
  constexpr const char* kOp = "genimg_fast.norm_act_apply";
  check_params(x, weight, bias, kOp);
  check_norm_stats(mean, var, x, kOp);
  const Activation act = parse_activation(activation, kOp);
  const c10::cuda::CUDAGuard guard(x.device());
  if (x.numel() == 0) return at::empty_like(x);
  if (!take_kernel_path(KernelPath::kNormTiles, kReferenceInstead)) {
    return call_reference<decltype(norm_act_apply_cuda)>("genimg_fast::norm_act_apply", x, mean, var, weight, bias,
                                                         eps, activation, slope);
  }
  const DenseInput in = dense_input(x);
  const auto acc = acc_scalar_type(x);
  Output y = output_like(x, in);
  apply_into(in, tiling_for(in, mean.dim() == 2), contiguous_as(mean, acc), contiguous_as(var, acc),
             as_acc(weight, acc), as_acc(bias, acc), eps, act, slope, y.work);
  return y.finish();
}

std::tuple<at::Tensor, at::Tensor> norm_act_backward_reduce_cuda(const at::Tensor& grad_y, const at::Tensor& x,
                                                                 const at::Tensor& mean, const at::Tensor& var,
                                                                 const OptTensor& weight, const OptTensor& bias,
                                                                 double eps, c10::string_view activation,
                                                                 double slope) {
  constexpr const char* kOp = "genimg_fast._norm_act_backward_reduce";
  const Activation act = check_backward_args(grad_y, x, mean, var, weight, bias, activation, kOp);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto acc = acc_scalar_type(x);
  if (x.numel() == 0) {
    const auto options = mean.options().dtype(acc);
    return {at::zeros(mean.sizes(), options), at::zeros(mean.sizes(), options)};
  }
  if (!take_kernel_path(KernelPath::kNormTiles, kReferenceInstead)) {
    return call_reference<decltype(norm_act_backward_reduce_cuda)>("genimg_fast::_norm_act_backward_reduce", grad_y, x,
                                                                   mean, var, weight, bias, eps, activation, slope);
  }
  const DenseInput in = dense_input(x);
  return backward_sums(in, tiling_for(in, mean.dim() == 2), in_layout(grad_y, in),
                       contiguous_as(mean, acc), contiguous_as(var, acc), as_acc(weight, acc), as_acc(bias, acc),
                       eps, act, slope);
}

at::Tensor norm_act_backward_apply_cuda(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& mean,
                                        const at::Tensor& var, const OptTensor& weight, const OptTensor& bias,
                                        const OptTensor& sum_dz, const OptTensor& sum_dz_xhat, double count,
                                        double eps, c10::string_view activation, double slope) {
  constexpr const char* kOp = "genimg_fast._norm_act_backward_apply";
  const Activation act = check_backward_args(grad_y, x, mean, var, weight, bias, activation, kOp);
  TORCH_CHECK_VALUE(sum_dz.has_value() == sum_dz_xhat.has_value(), kOp,
                    ": pass both sum_dz and sum_dz_xhat (batch statistics) or neither (fixed statistics)");
  if (sum_dz.has_value()) {
    TORCH_CHECK_VALUE(sum_dz->sizes() == mean.sizes() && sum_dz_xhat->sizes() == mean.sizes(), kOp,
                      ": sum_dz and sum_dz_xhat must have the shape of mean ", shape_str(mean.sizes()));
    for (const at::Tensor* s : {&*sum_dz, &*sum_dz_xhat}) {
      TORCH_CHECK_TYPE(is_supported_float(s->scalar_type()), kOp,
                       ": sum_dz and sum_dz_xhat must be float32, float16, bfloat16 or float64, got ",
                       dtype_str(s->scalar_type()));
      TORCH_CHECK_VALUE(s->device() == x.device(), kOp, ": sum_dz and sum_dz_xhat must be on the device of x (",
                        x.device(), "), got ", s->device());
    }
  }
  const c10::cuda::CUDAGuard guard(x.device());
  if (x.numel() == 0) return at::empty_like(x);
  if (!take_kernel_path(KernelPath::kNormTiles, kReferenceInstead)) {
    return call_reference<decltype(norm_act_backward_apply_cuda)>("genimg_fast::_norm_act_backward_apply", grad_y, x,
                                                                  mean, var, weight, bias, sum_dz, sum_dz_xhat, count,
                                                                  eps, activation, slope);
  }
  const DenseInput in = dense_input(x);
  const auto acc = acc_scalar_type(x);
  Output dx = output_like(x, in);
  backward_apply_into(in, tiling_for(in, mean.dim() == 2), in_layout(grad_y, in),
                      contiguous_as(mean, acc), contiguous_as(var, acc), as_acc(weight, acc), as_acc(bias, acc),
                      as_acc(sum_dz, acc), as_acc(sum_dz_xhat, acc), count, eps, act, slope, dx.work);
  return dx.finish();
}

// Running statistics for the training forward to update in its kernels (batch norm with a
// momentum), when their types and layout let the kernels write them.
struct RunningBuffers {
  at::Tensor* mean;
  at::Tensor* var;
  at::Tensor* num_batches_tracked;
  double momentum;

  bool kernel_writable(at::ScalarType acc) const { return kernels_can_write(*mean, *var, *num_batches_tracked, acc); }
};

// A training op's input made dense, its tiling and the kernels that take it.
struct TrainingPlan {
  DenseInput in;
  NormTiling tiling;
  TrainPath path;
};

TrainingPlan training_plan(const at::Tensor& x, bool per_sample) {
  const DenseInput in = dense_input(x);
  const NormTiling t = tiling_for(in, per_sample);
  return {in, t, training_path(t, in.x)};
}

// The training forward of a non-empty input on a kernel path: y and the batch statistics, plus
// the running statistics' update when `running` is given (in the kernels, or after them for
// buffers they cannot write: half-precision buffers or views).
std::tuple<at::Tensor, at::Tensor, at::Tensor> train_forward(const at::Tensor& x, const TrainingPlan& plan,
                                                             const OptTensor& weight, const OptTensor& bias,
                                                             bool per_sample, double eps, Activation act, double slope,
                                                             const RunningBuffers* running) {
  at::Tensor mean = stat_tensor(x, per_sample), var = stat_tensor(x, per_sample);
  const DenseInput& in = plan.in;
  const NormTiling& t = plan.tiling;
  const TrainPath path = plan.path;
  const auto acc = acc_scalar_type(x);
  const OptTensor weight_acc = as_acc(weight, acc), bias_acc = as_acc(bias, acc);
  at::Tensor workspace = workspace_for(t, in.x, path);
  Output y = output_like(x, in);
  const int64_t count = values_per_group(t);
  const bool update_in_kernels = running != nullptr && !per_sample && running->kernel_writable(acc);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  GENIMG_DISPATCH_FLOATS(in.x, "genimg_fast_norm_act_train", [&] {
    using acc_t = acc_type_t<scalar_t>;
    RunningStatsTarget<acc_t> target;
    if (update_in_kernels) {  // rounded as update_running's kernel rounds them
      target = {running->mean->mutable_data_ptr<acc_t>(), running->var->mutable_data_ptr<acc_t>(),
                running->num_batches_tracked->mutable_data_ptr<int64_t>(),
                static_cast<acc_t>(1.0 - running->momentum), static_cast<acc_t>(running->momentum),
                static_cast<acc_t>(unbias_factor(count))};
    }
    launch_norm_act_train<scalar_t>(t, path,
                                    make_args<scalar_t>(in.x, mean, var, weight_acc, bias_acc, eps, act, slope),
                                    mean.mutable_data_ptr<acc_t>(), var.mutable_data_ptr<acc_t>(),
                                    y.work.mutable_data_ptr<scalar_t>(), data_or_null(workspace), stream, target);
  });
  if (running != nullptr && !update_in_kernels) {
    update_running(*running->mean, *running->var, *running->num_batches_tracked, mean, var, count, running->momentum);
  }
  return {y.finish(), mean, var};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> norm_act_train_cuda(const at::Tensor& x, const OptTensor& weight,
                                                                   const OptTensor& bias, bool per_sample,
                                                                   double eps, c10::string_view activation,
                                                                   double slope) {
  constexpr const char* kOp = "genimg_fast.norm_act_train";
  check_params(x, weight, bias, kOp);
  const Activation act = parse_activation(activation, kOp);
  check_training_count(x, per_sample);
  const c10::cuda::CUDAGuard guard(x.device());
  if (x.numel() == 0) {
    auto [mean, var] = empty_input_stats(x, per_sample);
    return {at::empty_like(x), mean, var};
  }
  const TrainingPlan plan = training_plan(x, per_sample);
  if (plan.path == TrainPath::kReference) {
    return call_reference<decltype(norm_act_train_cuda)>("genimg_fast::norm_act_train", x, weight, bias, per_sample,
                                                         eps, activation, slope);
  }
  return train_forward(x, plan, weight, bias, per_sample, eps, act, slope, nullptr);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_act_train_cuda(
    const at::Tensor& x, const OptTensor& weight, const OptTensor& bias, at::Tensor& running_mean,
    at::Tensor& running_var, at::Tensor& num_batches_tracked, double momentum, double eps,
    c10::string_view activation, double slope) {
  constexpr const char* kOp = "genimg_fast.batch_norm_act_train_";
  check_params(x, weight, bias, kOp);
  const Activation act = parse_activation(activation, kOp);
  check_training_count(x, false);
  check_running_stats(running_mean, running_var, num_batches_tracked, x.size(1), x.device(), kOp);
  const c10::cuda::CUDAGuard guard(x.device());
  if (x.numel() == 0) {  // like torch: the batch is counted, the running statistics stay
    num_batches_tracked.add_(1);
    auto [mean, var] = empty_input_stats(x, false);
    return {at::empty_like(x), mean, var};
  }
  const TrainingPlan plan = training_plan(x, false);
  if (plan.path == TrainPath::kReference) {
    return call_reference<decltype(batch_norm_act_train_cuda)>("genimg_fast::batch_norm_act_train_", x, weight, bias,
                                                               running_mean, running_var, num_batches_tracked,
                                                               momentum, eps, activation, slope);
  }
  const RunningBuffers running{&running_mean, &running_var, &num_batches_tracked, momentum};
  return train_forward(x, plan, weight, bias, false, eps, act, slope, &running);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> norm_act_train_backward_cuda(
    const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& mean, const at::Tensor& var,
    const OptTensor& weight, const OptTensor& bias, double eps, c10::string_view activation, double slope) {
  constexpr const char* kOp = "genimg_fast._norm_act_train_backward";
  const Activation act = check_backward_args(grad_y, x, mean, var, weight, bias, activation, kOp);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto acc = acc_scalar_type(x);
  const bool per_sample = mean.dim() == 2;
  if (x.numel() == 0) {
    const auto options = x.options().dtype(acc);
    return {at::empty_like(x), at::zeros({x.size(1)}, options), at::zeros({x.size(1)}, options)};
  }
  const TrainingPlan plan = training_plan(x, per_sample);
  if (plan.path == TrainPath::kReference) {
    return call_reference<decltype(norm_act_train_backward_cuda)>("genimg_fast::_norm_act_train_backward", grad_y, x,
                                                                  mean, var, weight, bias, eps, activation, slope);
  }
  const DenseInput& in = plan.in;
  const NormTiling& t = plan.tiling;
  const TrainPath path = plan.path;
  const at::Tensor dy = in_layout(grad_y, in);
  const at::Tensor mean_acc = contiguous_as(mean, acc), var_acc = contiguous_as(var, acc);
  const OptTensor weight_acc = as_acc(weight, acc), bias_acc = as_acc(bias, acc);
  at::Tensor sum_dz = at::empty_like(mean_acc), sum_dz_xhat = at::empty_like(mean_acc);
  at::Tensor workspace = workspace_for(t, in.x, path);
  Output dx = output_like(x, in);
  const double count = static_cast<double>(values_per_group(t));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  GENIMG_DISPATCH_FLOATS(in.x, "genimg_fast_norm_act_train_backward", [&] {
    using acc_t = acc_type_t<scalar_t>;
    launch_norm_act_train_backward<scalar_t>(
        t, path, make_args<scalar_t>(in.x, mean_acc, var_acc, weight_acc, bias_acc, eps, act, slope),
        dy.const_data_ptr<scalar_t>(), sum_dz.mutable_data_ptr<acc_t>(), sum_dz_xhat.mutable_data_ptr<acc_t>(), count,
        dx.work.mutable_data_ptr<scalar_t>(), data_or_null(workspace), stream);
  });
  if (per_sample) {  // parameters are per channel: sum over the samples (a view when there is one)
    return {dx.finish(), per_channel(sum_dz_xhat), per_channel(sum_dz)};
  }
  return {dx.finish(), sum_dz_xhat, sum_dz};
}

void update_running_stats_cuda(at::Tensor& running_mean, at::Tensor& running_var, const at::Tensor& mean,
                               const at::Tensor& var, int64_t count, double momentum) {
  check_batch_stats(mean, var, "genimg_fast.update_running_stats_");
  check_running_stats(running_mean, running_var, std::nullopt, mean.size(-1), mean.device(),
                      "genimg_fast.update_running_stats_");
  const c10::cuda::CUDAGuard guard(mean.device());
  update_running(running_mean, running_var, std::nullopt, mean, var, count, momentum);
}

void update_tracked_running_stats_cuda(at::Tensor& running_mean, at::Tensor& running_var,
                                       at::Tensor& num_batches_tracked, const at::Tensor& mean, const at::Tensor& var,
                                       int64_t count, std::optional<double> momentum) {
  check_batch_stats(mean, var, "genimg_fast.update_tracked_running_stats_");
  check_running_stats(running_mean, running_var, num_batches_tracked, mean.size(-1), mean.device(),
                      "genimg_fast.update_tracked_running_stats_");
  const c10::cuda::CUDAGuard guard(mean.device());
  update_running(running_mean, running_var, num_batches_tracked, mean, var, count, momentum);
}

}  // namespace

TORCH_LIBRARY_IMPL(genimg_fast, CUDA, m) {
  m.impl("norm_act_stats", TORCH_FN(norm_act_stats_cuda));
  m.impl("norm_act_apply", TORCH_FN(norm_act_apply_cuda));
  m.impl("_norm_act_backward_reduce", TORCH_FN(norm_act_backward_reduce_cuda));
  m.impl("_norm_act_backward_apply", TORCH_FN(norm_act_backward_apply_cuda));
  m.impl("norm_act_train", TORCH_FN(norm_act_train_cuda));
  m.impl("batch_norm_act_train_", TORCH_FN(batch_norm_act_train_cuda));
  m.impl("_norm_act_train_backward", TORCH_FN(norm_act_train_backward_cuda));
  m.impl("update_running_stats_", TORCH_FN(update_running_stats_cuda));
  m.impl("update_tracked_running_stats_", TORCH_FN(update_tracked_running_stats_cuda));
}

}  // namespace genimg_fast
