#include <c10/cuda/CUDAException.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "common/acc_type.h"
#include "common/reduction_grid.h"
#include "common/vectorized.cuh"
#include "losses/scale_one_stored_grad_launch.h"

namespace genimg_fast {
namespace {

constexpr int kThreads = 256;
constexpr int kBlocksPerSM = 8;

// The op's former name: a __global__ function's name is part of its path's fingerprint
// (buildtools/kernel_paths.py), so renaming it would take the path off until a GPU check.
template <typename scalar_t, typename grad_t, int VEC>
__global__ void __launch_bounds__(kThreads)
    scale_stored_grad_kernel(const scalar_t* __restrict__ stored, const grad_t* __restrict__ grad_output,
                             acc_type_t<scalar_t> scale, scalar_t* __restrict__ out, int64_t numel) {
  using acc_t = acc_type_t<scalar_t>;
  const acc_t factor = static_cast<acc_t>(*grad_output) * scale;
  const int64_t thread = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t num_vectors = numel / VEC;
  for (int64_t v = thread; v < num_vectors; v += stride) {
    const auto s = load_vector<VEC>(stored, v);
    AlignedVector<scalar_t, VEC> r;
#pragma unroll
    for (int k = 0; k < VEC; ++k) r.val[k] = static_cast<scalar_t>(static_cast<acc_t>(s.val[k]) * factor);
    store_vector<VEC>(out, v, r);
  }
  for (int64_t i = num_vectors * VEC + thread; i < numel; i += stride) {
    out[i] = static_cast<scalar_t>(static_cast<acc_t>(stored[i]) * factor);
  }
}

}  // namespace

template <typename scalar_t, typename grad_t>
void launch_scale_one_stored_grad(const scalar_t* stored, const grad_t* grad_output, double scale, scalar_t* out,
                                  int64_t numel, int sm_count, cudaStream_t stream) {
  using acc_t = acc_type_t<scalar_t>;
  constexpr int kVec = kVectorWidth<scalar_t>;
  const bool aligned = is_aligned_16(stored) && is_aligned_16(out);
  const int64_t items = aligned ? (numel + kVec - 1) / kVec : numel;
  const int blocks = grid_stride_blocks(items, kThreads, sm_count, kBlocksPerSM);
  if (aligned) {
    scale_stored_grad_kernel<scalar_t, grad_t, kVec>
        <<<blocks, kThreads, 0, stream>>>(stored, grad_output, static_cast<acc_t>(scale), out, numel);
  } else {
    scale_stored_grad_kernel<scalar_t, grad_t, 1>
        <<<blocks, kThreads, 0, stream>>>(stored, grad_output, static_cast<acc_t>(scale), out, numel);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

#define GENIMG_INSTANTIATE(T, G) \
  template void launch_scale_one_stored_grad<T, G>(const T*, const G*, double, T*, int64_t, int, cudaStream_t);
GENIMG_INSTANTIATE(float, float)
GENIMG_INSTANTIATE(double, double)
GENIMG_INSTANTIATE(c10::Half, c10::Half)
GENIMG_INSTANTIATE(c10::Half, float)
GENIMG_INSTANTIATE(c10::BFloat16, c10::BFloat16)
GENIMG_INSTANTIATE(c10::BFloat16, float)
#undef GENIMG_INSTANTIATE

}  // namespace genimg_fast
