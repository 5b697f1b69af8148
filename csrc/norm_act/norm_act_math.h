#pragma once
// Per-element math of the fused normalization + activation kernels, mirrored by the Python
// references in genimg_fast/ops/_norm_act_math.py. z = xhat * weight + bias is always formed
// with one fma, in forward and backward alike, so the activation mask recomputed in the
// backward is exactly the forward's.
#include <cstdint>

#if defined(__CUDACC__)
#define GENIMG_NORM_INLINE __host__ __device__ __forceinline__
#else
#define GENIMG_NORM_INLINE inline
#endif

namespace genimg_fast {

enum class Activation : int32_t { kIdentity = 0, kRelu = 1, kLeakyRelu = 2 };

// NaN as torch: relu(NaN) = NaN (hence `z <= 0`, false for NaN), leaky_relu(NaN) = NaN.
template <typename acc_t>
GENIMG_NORM_INLINE acc_t activation_forward(acc_t z, Activation act, acc_t slope) {
  if (act == Activation::kRelu) return z <= acc_t(0) ? acc_t(0) : z;
  if (act == Activation::kLeakyRelu) return z > acc_t(0) ? z : z * slope;
  return z;
}

// d act / dz, with torch's conventions at z == 0 (relu: 0, leaky_relu: slope) and at NaN (relu's
// backward passes the gradient where its output is not <= 0: 1; leaky_relu's scales it where z
// is not > 0: slope).
template <typename acc_t>
GENIMG_NORM_INLINE acc_t activation_grad(acc_t z, Activation act, acc_t slope) {
  if (act == Activation::kRelu) return z <= acc_t(0) ? acc_t(0) : acc_t(1);
  if (act == Activation::kLeakyRelu) return z > acc_t(0) ? acc_t(1) : slope;
  return acc_t(1);
}

// Per-group constants every element of a (sample, channel) plane shares.
template <typename acc_t>
struct GroupAffine {
  acc_t mean;
  acc_t invstd;
  acc_t weight;
  acc_t bias;

  GENIMG_NORM_INLINE acc_t xhat(acc_t x) const { return (x - mean) * invstd; }
};

}  // namespace genimg_fast
