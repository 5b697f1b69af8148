#pragma once
// Argument checks shared by the ops' CUDA glue. Messages name the op and the argument and
// match the reference implementations' (genimg_fast/ops/_checks.py), so both paths fail alike.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <c10/util/string_view.h>

#include <string>

namespace genimg_fast {

// Error messages pass only strings (and devices) to the TORCH_CHECK macros; shapes, dtypes
// and numbers are formatted here. On the GPU machine (torch 2.11) thrown checks whose
// messages streamed sizes or integers crashed with SIGSEGV, while string-only ones raised.
inline std::string shape_str(c10::IntArrayRef sizes) {
  std::string out = "[";
  for (size_t i = 0; i < sizes.size(); ++i) out += (i ? ", " : "") + std::to_string(sizes[i]);
  return out + "]";
}

inline std::string dtype_str(c10::ScalarType type) { return c10::toString(type); }

inline bool is_supported_float(c10::ScalarType t) {
  return t == at::kFloat || t == at::kHalf || t == at::kBFloat16 || t == at::kDouble;
}

// input/target pair of a loss: same shape, dtype and device; a floating dtype we support.
inline void check_loss_pair(const at::Tensor& input, const at::Tensor& target, const char* op) {
  TORCH_CHECK_TYPE(is_supported_float(input.scalar_type()), op,
                   ": input must be float32, float16, bfloat16 or float64, got ", dtype_str(input.scalar_type()));
  TORCH_CHECK_TYPE(target.scalar_type() == input.scalar_type(), op,
                   ": target must have the same dtype as input (", dtype_str(input.scalar_type()), "), got ",
                   dtype_str(target.scalar_type()));
  TORCH_CHECK_VALUE(target.device() == input.device(), op, ": target must be on the same device as input (",
                    input.device(), "), got ", target.device());
  TORCH_CHECK_VALUE(target.sizes() == input.sizes(), op, ": target must have the same shape as input ",
                    shape_str(input.sizes()), ", got ", shape_str(target.sizes()));
}

// "mean" -> true, "sum" -> false.
inline bool is_mean_reduction(c10::string_view reduction, const char* op) {
  TORCH_CHECK_VALUE(reduction == "mean" || reduction == "sum", op,
                    ": reduction must be 'mean' or 'sum', got '", reduction, "'");
  return reduction == "mean";
}

// Same memory layout: both dense without overlap, equal strides wherever size > 1.
inline bool same_dense_layout(const at::Tensor& a, const at::Tensor& b) {
  if (!a.is_non_overlapping_and_dense() || !b.is_non_overlapping_and_dense()) return false;
  for (int64_t d = 0; d < a.dim(); ++d) {
    if (a.size(d) > 1 && a.stride(d) != b.stride(d)) return false;
  }
  return true;
}

}  // namespace genimg_fast
