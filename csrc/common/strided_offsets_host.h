#pragma once
// Builds StridedOffsets for tensors of one shape: drops size-1 dims, orders dims by the
// first tensor's strides (so its accesses are as sequential as they can be), then merges
// dims that are contiguous with each other in every tensor.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <array>
#include <numeric>
#include <vector>

#include "common/strided_offsets.h"

namespace genimg_fast {

template <int NumTensors>
StridedOffsets<NumTensors> make_strided_offsets(const std::array<const at::Tensor*, NumTensors>& tensors) {
  const at::Tensor& lead = *tensors[0];
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < lead.dim(); ++d) {
    if (lead.size(d) != 1) dims.push_back(d);
  }
  // Innermost (smallest stride of the lead tensor) first.
  std::stable_sort(dims.begin(), dims.end(), [&](int64_t a, int64_t b) { return lead.stride(a) < lead.stride(b); });

  StridedOffsets<NumTensors> result;
  for (int64_t d : dims) {
    const int k = result.ndim;
    bool merges = k > 0;
    for (int t = 0; t < NumTensors && merges; ++t) {
      merges = tensors[t]->stride(d) == result.strides[t][k - 1] * result.sizes[k - 1];
    }
    if (merges) {
      result.sizes[k - 1] *= lead.size(d);
      continue;
    }
    TORCH_CHECK(k < kMaxStridedDims, "genimg_fast: tensors with more than ", std::to_string(kMaxStridedDims),
                " non-mergeable dimensions are not supported; call .contiguous() first");
    result.sizes[k] = lead.size(d);
    for (int t = 0; t < NumTensors; ++t) result.strides[t][k] = tensors[t]->stride(d);
    result.ndim = k + 1;
  }
  return result;
}

}  // namespace genimg_fast
