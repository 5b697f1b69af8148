#pragma once
// Fused L1 loss forward: one pass over (input, target) that sums |input - target| and writes
// the per-element gradient weight * sign(input - target) (without the 1/n of 'mean': the
// backward applies grad_output * scale in fp32, so fp16/bf16 never store a tiny 1/n).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/reduction_grid.h"
#include "common/strided_offsets.h"

namespace genimg_fast {

template <typename scalar_t>
struct L1LossForwardArgs {
  const scalar_t* input;
  const scalar_t* target;
  scalar_t* grad;  // nullptr: gradient not wanted
  scalar_t* loss;  // one element
  int64_t numel;   // > 0
  bool flat;       // grad, input, target share one dense layout: index storage directly
  StridedOffsets<3> strided;  // offsets of (grad-or-input, input, target) when !flat
  double weight;
  double loss_scale;  // weight / numel for 'mean', weight for 'sum'
  void* workspace;    // ReductionGrid::workspace_bytes, any content
  ReductionGrid grid;
};

// Launch shape for an L1 forward over `numel` elements on a device with `sm_count` SMs.
ReductionGrid plan_l1_loss_forward(int64_t numel, int sm_count, bool is_double);

template <typename scalar_t>
void launch_l1_loss_forward(const L1LossForwardArgs<scalar_t>& args, cudaStream_t stream);

}  // namespace genimg_fast
