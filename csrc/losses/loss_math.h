#pragma once
// Per-element math of the fused losses, shared by kernels (and mirrored by the Python
// references in genimg_fast/ops). acc_t is float or double.
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

}  // namespace genimg_fast
