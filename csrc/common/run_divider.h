#pragma once
// Division by a divisor fixed for a whole kernel (a run length), without the ~45 instructions
// of a 32-bit integer division per element: a multiply-high, an add and a shift, with the
// multiplier and shift computed once on the host (round-up reciprocal, Granlund & Montgomery,
// "Division by invariant integers using multiplication", 1994).
// Exact for 0 <= n < 2^31 and 1 <= divisor < 2^31; checked on the CPU by
// tests/native/block_cluster_check.cpp.
#include <cstdint>

#if defined(__CUDACC__)
#define GENIMG_DIVIDER_INLINE __host__ __device__ __forceinline__
#else
#define GENIMG_DIVIDER_INLINE inline
#endif

namespace genimg_fast {

struct RunDivider {
  uint32_t divisor = 1;
  uint32_t multiplier = 1;  // floor(2^32 * (2^shift - divisor) / divisor) + 1
  uint32_t shift = 0;       // ceil(log2(divisor))

  RunDivider() = default;
  explicit RunDivider(uint32_t d) : divisor(d) {
    while (shift < 31 && (uint32_t{1} << shift) < d) ++shift;
    multiplier = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - d)) / d + 1);
  }

  GENIMG_DIVIDER_INLINE uint32_t quotient(uint32_t n) const {
#if defined(__CUDA_ARCH__)
    const uint32_t high = __umulhi(n, multiplier);
#else
    const uint32_t high = static_cast<uint32_t>((static_cast<uint64_t>(n) * multiplier) >> 32);
#endif
    return (high + n) >> shift;  // high <= n < 2^31: no overflow
  }
};

}  // namespace genimg_fast
