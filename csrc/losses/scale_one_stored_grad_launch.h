#pragma once
// Backward of every fused loss: grad_input = stored * (grad_output * scale), one elementwise
// pass in fp32 (fp64 for double). grad_output is read on the device (no host sync), in the
// stored dtype or the accumulation type (never rounded down: a large fp32 grad_output of an
// fp16 gradient stays exact until the final rounding).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/acc_type.h"

namespace genimg_fast {

// grad_t: scalar_t or acc_type_t<scalar_t>.
template <typename scalar_t, typename grad_t>
void launch_scale_one_stored_grad(const scalar_t* stored, const grad_t* grad_output, double scale, scalar_t* out,
                                  int64_t numel, int sm_count, cudaStream_t stream);

}  // namespace genimg_fast
