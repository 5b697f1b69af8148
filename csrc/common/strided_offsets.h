#pragma once
// Offsets of element `linear` in several tensors of one shape but arbitrary strides
// (transposed, sliced, expanded). Dims are stored innermost first, already coalesced
// by the host builder, so most tensors need one or two dims. 64-bit throughout.
#include <cstdint>

#if defined(__CUDACC__)
#define GENIMG_HOST_DEVICE __host__ __device__
#else
#define GENIMG_HOST_DEVICE
#endif

namespace genimg_fast {

constexpr int kMaxStridedDims = 16;

template <int NumTensors>
struct StridedOffsets {
  int ndim = 0;
  int64_t sizes[kMaxStridedDims] = {};
  int64_t strides[NumTensors][kMaxStridedDims] = {};

  GENIMG_HOST_DEVICE void offsets_of(int64_t linear, int64_t (&out)[NumTensors]) const {
    for (int t = 0; t < NumTensors; ++t) out[t] = 0;
    for (int d = 0; d < ndim; ++d) {
      const int64_t size = sizes[d];
      const int64_t index = (d == ndim - 1) ? linear : linear % size;
      linear /= size;
      for (int t = 0; t < NumTensors; ++t) out[t] += index * strides[t][d];
    }
  }
};

}  // namespace genimg_fast
