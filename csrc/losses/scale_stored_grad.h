#pragma once
// Backward of every fused loss: grad_input = stored * (grad_output * scale), one elementwise
// pass in fp32 (fp64 for double). grad_output is read on the device: no host sync.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace genimg_fast {

template <typename scalar_t>
void launch_scale_stored_grad(const scalar_t* stored, const scalar_t* grad_output, double scale, scalar_t* out,
                              int64_t numel, int sm_count, cudaStream_t stream);

}  // namespace genimg_fast
