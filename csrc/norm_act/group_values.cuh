#pragma once
// Values the grouped reductions carry: Welford (count, mean, M2) for statistics, a pair of
// sums for the backward. Each merges with `combine` in an order fixed by the thread layout,
// so results are bit-identical run to run.
#include <cuda_runtime.h>

namespace genimg_fast {

constexpr int kWarpLanes = 32;

template <typename T>
struct WelfordValue {
  T count;
  T mean;
  T m2;

  __device__ static WelfordValue identity() { return {T(0), T(0), T(0)}; }

  __device__ void push(T x) {
    count += T(1);
    const T delta = x - mean;
    mean += delta / count;
    m2 += delta * (x - mean);
  }

  // Chan et al.: exact merge of two partial statistics, any counts.
  __device__ static WelfordValue combine(const WelfordValue& a, const WelfordValue& b) {
    if (b.count == T(0)) return a;
    if (a.count == T(0)) return b;
    const T count = a.count + b.count;
    const T delta = b.mean - a.mean;
    const T b_share = b.count / count;
    return {count, a.mean + delta * b_share, a.m2 + b.m2 + delta * delta * a.count * b_share};
  }

  __device__ WelfordValue shfl_down(unsigned delta) const {
    return {__shfl_down_sync(0xffffffffu, count, delta), __shfl_down_sync(0xffffffffu, mean, delta),
            __shfl_down_sync(0xffffffffu, m2, delta)};
  }
};

template <typename T>
struct SumPair {
  T first;
  T second;

  __device__ static SumPair identity() { return {T(0), T(0)}; }

  __device__ static SumPair combine(const SumPair& a, const SumPair& b) {
    return {a.first + b.first, a.second + b.second};
  }

  __device__ SumPair shfl_down(unsigned delta) const {
    return {__shfl_down_sync(0xffffffffu, first, delta), __shfl_down_sync(0xffffffffu, second, delta)};
  }
};

// Lane 0 receives the warp's combination (lane order fixed: deterministic).
template <typename V>
__device__ __forceinline__ V warp_combine(V v) {
#pragma unroll
  for (unsigned delta = 16; delta > 0; delta /= 2) v = V::combine(v, v.shfl_down(delta));
  return v;
}

}  // namespace genimg_fast
