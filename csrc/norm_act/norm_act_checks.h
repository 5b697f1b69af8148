#pragma once
// Argument checks of the norm_act ops' CUDA glue, mirroring genimg_fast/ops/norm_act.py.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <c10/util/string_view.h>

#include <optional>
#include <string>
#include <utility>

#include "common/tensor_checks.h"
#include "norm_act/norm_act_math.h"

namespace genimg_fast {

inline void check_norm_input(const at::Tensor& x, const char* op) {
  TORCH_CHECK_TYPE(is_supported_float(x.scalar_type()), op, ": x must be float32, float16, bfloat16 or float64, got ",
                   dtype_str(x.scalar_type()));
  TORCH_CHECK_VALUE(x.dim() == 4, op, ": x must be 4-D (N, C, H, W), got ", std::to_string(x.dim()), "-D input of shape ",
                    shape_str(x.sizes()));
}

inline void check_norm_param(const std::optional<at::Tensor>& param, const char* name, const at::Tensor& x,
                             const char* op) {
  if (!param.has_value()) return;
  TORCH_CHECK_TYPE(is_supported_float(param->scalar_type()), op, ": ", name,
                   " must be float32, float16, bfloat16 or float64, got ", dtype_str(param->scalar_type()));
  TORCH_CHECK_VALUE(param->dim() == 1 && param->size(0) == x.size(1), op, ": ", name, " must have shape [",
                    std::to_string(x.size(1)), "] (one value per channel of x), got ", shape_str(param->sizes()));
  TORCH_CHECK_VALUE(param->device() == x.device(), op, ": ", name, " must be on the same device as x (",
                    x.device(), "), got ", param->device());
}

inline void check_norm_stat(const at::Tensor& stat, const char* name, const at::Tensor& x, const char* op) {
  TORCH_CHECK_TYPE(is_supported_float(stat.scalar_type()), op, ": ", name,
                   " must be float32, float16, bfloat16 or float64, got ", dtype_str(stat.scalar_type()));
  const bool per_channel = stat.dim() == 1 && stat.size(0) == x.size(1);
  const bool per_sample = stat.dim() == 2 && stat.size(0) == x.size(0) && stat.size(1) == x.size(1);
  TORCH_CHECK_VALUE(per_channel || per_sample, op, ": ", name, " must have shape ", shape_str({x.size(1)}), " or ",
                    shape_str({x.size(0), x.size(1)}), ", got ", shape_str(stat.sizes()));
  TORCH_CHECK_VALUE(stat.device() == x.device(), op, ": ", name, " must be on the same device as x (", x.device(),
                    "), got ", stat.device());
}

inline void check_norm_stats(const at::Tensor& mean, const at::Tensor& var, const at::Tensor& x, const char* op) {
  check_norm_stat(mean, "mean", x, op);
  check_norm_stat(var, "var", x, op);
  TORCH_CHECK_VALUE(mean.sizes() == var.sizes(), op, ": mean and var must have the same shape, got ", shape_str(mean.sizes()),
                    " and ", shape_str(var.sizes()));
}

inline void check_norm_grad(const at::Tensor& grad_y, const at::Tensor& x, const char* op) {
  TORCH_CHECK_TYPE(is_supported_float(grad_y.scalar_type()), op,
                   ": grad_y must be float32, float16, bfloat16 or float64, got ", dtype_str(grad_y.scalar_type()));
  // autograd passes y's (= x's) dtype; the kernels read grad_y at x's precision
  TORCH_CHECK_TYPE(grad_y.scalar_type() == x.scalar_type(), op, ": grad_y must have the dtype of x (",
                   dtype_str(x.scalar_type()), "), got ", dtype_str(grad_y.scalar_type()));
  TORCH_CHECK_VALUE(grad_y.sizes() == x.sizes(), op, ": grad_y must have the shape of x ", shape_str(x.sizes()), ", got ",
                    shape_str(grad_y.sizes()));
  TORCH_CHECK_VALUE(grad_y.device() == x.device(), op, ": grad_y must be on the same device as x (", x.device(),
                    "), got ", grad_y.device());
}

inline Activation parse_activation(c10::string_view name, const char* op) {
  if (name == "identity") return Activation::kIdentity;
  if (name == "relu") return Activation::kRelu;
  if (name == "leaky_relu") return Activation::kLeakyRelu;
  TORCH_CHECK_VALUE(false, op, ": activation must be one of identity, relu, leaky_relu, got '", name, "'");
  return Activation::kIdentity;  // unreachable: the check throws
}

// Batch statistics handed to a running-statistics update: (C,) or (N, C), float, same shape and
// device.
inline void check_batch_stats(const at::Tensor& mean, const at::Tensor& var, const char* op) {
  for (const auto& [t, name] : {std::pair<const at::Tensor*, const char*>{&mean, "mean"}, {&var, "var"}}) {
    TORCH_CHECK_TYPE(is_supported_float(t->scalar_type()), op, ": ", name,
                     " must be float32, float16, bfloat16 or float64, got ", dtype_str(t->scalar_type()));
  }
  TORCH_CHECK_VALUE(mean.dim() == 1 || mean.dim() == 2, op, ": mean must have shape [C] or [N, C], got ",
                    shape_str(mean.sizes()));
  TORCH_CHECK_VALUE(var.sizes() == mean.sizes(), op, ": var must have the shape of mean ", shape_str(mean.sizes()),
                    ", got ", shape_str(var.sizes()));
  TORCH_CHECK_VALUE(var.device() == mean.device(), op, ": var must be on the device of mean (", mean.device(),
                    "), got ", var.device());
}

// Running statistics (and the optional batch counter) of `channels` values on `device`.
inline void check_running_stats(const at::Tensor& running_mean, const at::Tensor& running_var,
                                const std::optional<at::Tensor>& num_batches_tracked, int64_t channels,
                                const c10::Device& device, const char* op) {
  const std::pair<const at::Tensor*, const char*> stats[] = {{&running_mean, "running_mean"},
                                                             {&running_var, "running_var"}};
  for (const auto& [t, name] : stats) {
    TORCH_CHECK_TYPE(is_supported_float(t->scalar_type()), op, ": ", name,
                     " must be float32, float16, bfloat16 or float64, got ", dtype_str(t->scalar_type()));
    TORCH_CHECK_VALUE(t->dim() == 1 && t->size(0) == channels, op, ": ", name, " must have shape [",
                      std::to_string(channels), "], got ", shape_str(t->sizes()));
    TORCH_CHECK_VALUE(t->device() == device, op, ": ", name, " must be on the same device as the statistics (",
                      device, "), got ", t->device());
  }
  if (!num_batches_tracked.has_value()) return;
  TORCH_CHECK_VALUE(num_batches_tracked->scalar_type() == at::kLong && num_batches_tracked->numel() == 1, op,
                    ": num_batches_tracked must be a one-element int64 tensor, got ",
                    dtype_str(num_batches_tracked->scalar_type()), " of shape ", shape_str(num_batches_tracked->sizes()));
  TORCH_CHECK_VALUE(num_batches_tracked->device() == device, op,
                    ": num_batches_tracked must be on the same device as the statistics (", device, "), got ",
                    num_batches_tracked->device());
}

// torch's errors for batch statistics of a single value.
inline void check_training_count(const at::Tensor& x, bool per_sample) {
  const int64_t spatial = x.size(2) * x.size(3);
  const int64_t count = per_sample ? spatial : x.size(0) * spatial;
  TORCH_CHECK_VALUE(count != 1, "Expected more than 1 ", per_sample ? "spatial element" : "value per channel",
                    " when training, got input size ", shape_str(x.sizes()));
}

}  // namespace genimg_fast
