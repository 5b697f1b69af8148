#pragma once
// Per-element math of the fused losses, shared by kernels (and mirrored by the Python
// references in genimg_fast/ops). acc_t is float or double.
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define GENIMG_LOSS_INLINE __host__ __device__ __forceinline__
#else
#define GENIMG_LOSS_INLINE inline
#endif

namespace genimg_fast {

// sign like torch.sign: -1, 0 or +1, and 0 for NaN (the loss itself still turns NaN).
template <typename acc_t>
GENIMG_LOSS_INLINE acc_t sign_of(acc_t x) {
  return static_cast<acc_t>((x > acc_t(0)) - (x < acc_t(0)));
}

// L1: f(a, b) = |a - b|, df/da = sign(a - b).
template <typename acc_t>
struct L1Element {
  acc_t value;
  acc_t grad_a;
};

template <typename acc_t>
GENIMG_LOSS_INLINE L1Element<acc_t> l1_element(acc_t a, acc_t b) {
  const acc_t d = a - b;
  return {d < acc_t(0) ? -d : d, sign_of(d)};
}

// The kinds of loss_terms (genimg_fast/ops/_loss_math.py, same order as its KINDS).
enum class LossKind : int32_t { kL1 = 0, kMse, kBce, kBceLogits, kLinear, kHalfSquare, kKlLogvar };

// f(a, b) and df/da of one element; b is the target (ignored by the kinds without one).
template <typename acc_t>
struct LossElement {
  acc_t value;
  acc_t grad;
};

template <typename acc_t>
GENIMG_LOSS_INLINE LossElement<acc_t> loss_element(LossKind kind, acc_t a, acc_t b) {
  using std::exp;
  using std::log;
  using std::log1p;
  switch (kind) {
    case LossKind::kL1: {
      const auto e = l1_element(a, b);
      return {e.value, e.grad_a};
    }
    case LossKind::kMse: {
      const acc_t d = a - b;
      return {d * d, acc_t(2) * d};
    }
    case LossKind::kBce: {  // torch's BCELoss: logs clamped at -100, gradient denominator at 1e-12
      const acc_t log_p = log(a) < acc_t(-100) ? acc_t(-100) : log(a);
      const acc_t log_q = log1p(-a) < acc_t(-100) ? acc_t(-100) : log1p(-a);
      const acc_t denom = (acc_t(1) - a) * a;
      return {(b - acc_t(1)) * log_q - b * log_p, (a - b) / (denom < acc_t(1e-12) ? acc_t(1e-12) : denom)};
    }
    case LossKind::kBceLogits: {
      const acc_t abs_a = a < acc_t(0) ? -a : a;
      const acc_t positive = a > acc_t(0) ? a : acc_t(0);
      return {positive - a * b + log1p(exp(-abs_a)), acc_t(1) / (acc_t(1) + exp(-a)) - b};
    }
    case LossKind::kLinear:
      return {a, acc_t(1)};
    case LossKind::kHalfSquare:
      return {acc_t(0.5) * a * a, a};
    case LossKind::kKlLogvar: {
      const acc_t e = exp(a);
      return {acc_t(0.5) * (e - acc_t(1) - a), acc_t(0.5) * (e - acc_t(1))};
    }
  }
  return {acc_t(0), acc_t(0)};
}

}  // namespace genimg_fast
