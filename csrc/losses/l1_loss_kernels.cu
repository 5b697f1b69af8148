// L1 loss forward with the gradient written in the same pass, and a deterministic one-launch
// reduction of the loss (block partials + last-block final sum in a fixed order).
#include <c10/cuda/CUDAException.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "common/acc_type.h"
#include "common/block_reduce.cuh"
#include "common/vectorized.cuh"
#include "losses/l1_loss_launch.h"
#include "losses/loss_math.h"

namespace genimg_fast {
namespace {

// Sums the block's partial into the workspace; the last block to arrive writes the loss.
template <typename scalar_t, typename acc_t>
__device__ void finish_reduction(acc_t thread_sum, acc_t loss_scale, scalar_t* loss, void* workspace) {
  auto* ticket = static_cast<unsigned int*>(workspace);
  auto* partials = reinterpret_cast<acc_t*>(static_cast<char*>(workspace) + kTicketBytes);
  __shared__ bool is_last_block;

  const acc_t block_sum = block_reduce_sum(thread_sum);
  if (threadIdx.x == 0) {
    partials[blockIdx.x] = block_sum;
    __threadfence();  // publish the partial before taking a ticket
    is_last_block = atomicAdd(ticket, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (!is_last_block) return;
  __threadfence();  // acquire side: order the partial reads after the ticket

  acc_t total = 0;
  for (int b = threadIdx.x; b < gridDim.x; b += blockDim.x) total += __ldcg(&partials[b]);
  total = block_reduce_sum(total);
  if (threadIdx.x == 0) {
    *loss = static_cast<scalar_t>(total * loss_scale);
    *ticket = 0u;  // leave the workspace reusable (graph replays)
  }
}

template <typename scalar_t, int VEC>
__global__ void __launch_bounds__(kReductionThreads)
    l1_loss_forward_flat_kernel(const scalar_t* __restrict__ input, const scalar_t* __restrict__ target,
                                scalar_t* __restrict__ grad, int64_t numel, acc_type_t<scalar_t> weight,
                                acc_type_t<scalar_t> loss_scale, scalar_t* __restrict__ loss, void* workspace) {
  using acc_t = acc_type_t<scalar_t>;
  const int64_t thread = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  acc_t sum = 0;

  const int64_t num_vectors = numel / VEC;
  for (int64_t v = thread; v < num_vectors; v += stride) {
    const auto a = load_vector<VEC>(input, v);
    const auto b = load_vector<VEC>(target, v);
    AlignedVector<scalar_t, VEC> g;
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const auto e = l1_element(static_cast<acc_t>(a.val[k]), static_cast<acc_t>(b.val[k]));
      sum += e.value;
      g.val[k] = static_cast<scalar_t>(weight * e.grad_a);
    }
    if (grad != nullptr) store_vector<VEC>(grad, v, g);
  }
  for (int64_t i = num_vectors * VEC + thread; i < numel; i += stride) {
    const auto e = l1_element(static_cast<acc_t>(input[i]), static_cast<acc_t>(target[i]));
    sum += e.value;
    if (grad != nullptr) grad[i] = static_cast<scalar_t>(weight * e.grad_a);
  }
  finish_reduction(sum, loss_scale, loss, workspace);
}

template <typename scalar_t>
__global__ void __launch_bounds__(kReductionThreads)
    l1_loss_forward_strided_kernel(const scalar_t* __restrict__ input, const scalar_t* __restrict__ target,
                                   scalar_t* __restrict__ grad, StridedOffsets<3> strided, int64_t numel,
                                   acc_type_t<scalar_t> weight, acc_type_t<scalar_t> loss_scale,
                                   scalar_t* __restrict__ loss, void* workspace) {
  using acc_t = acc_type_t<scalar_t>;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  acc_t sum = 0;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < numel; i += stride) {
    int64_t offset[3];
    strided.offsets_of(i, offset);
    const auto e = l1_element(static_cast<acc_t>(input[offset[1]]), static_cast<acc_t>(target[offset[2]]));
    sum += e.value;
    if (grad != nullptr) grad[offset[0]] = static_cast<scalar_t>(weight * e.grad_a);
  }
  finish_reduction(sum, loss_scale, loss, workspace);
}

}  // namespace

ReductionGrid plan_l1_loss_forward(int64_t numel, int sm_count, bool is_double) {
  // Work items of about 4 elements (one 16-byte access of fp32); the same plan on every path.
  return plan_reduction_grid((numel + 3) / 4, sm_count, is_double ? sizeof(double) : sizeof(float));
}

template <typename scalar_t>
void launch_l1_loss_forward(const L1LossForwardArgs<scalar_t>& args, cudaStream_t stream) {
  using acc_t = acc_type_t<scalar_t>;
  C10_CUDA_CHECK(cudaMemsetAsync(args.workspace, 0, kTicketBytes, stream));
  const auto weight = static_cast<acc_t>(args.weight);
  const auto loss_scale = static_cast<acc_t>(args.loss_scale);
  const dim3 blocks(args.grid.blocks), threads(kReductionThreads);
  constexpr int kVec = kVectorWidth<scalar_t>;
  const bool aligned = is_aligned_16(args.input) && is_aligned_16(args.target) &&
                       (args.grad == nullptr || is_aligned_16(args.grad));
  if (!args.flat) {
    l1_loss_forward_strided_kernel<scalar_t><<<blocks, threads, 0, stream>>>(
        args.input, args.target, args.grad, args.strided, args.numel, weight, loss_scale, args.loss, args.workspace);
  } else if (aligned) {
    l1_loss_forward_flat_kernel<scalar_t, kVec><<<blocks, threads, 0, stream>>>(
        args.input, args.target, args.grad, args.numel, weight, loss_scale, args.loss, args.workspace);
  } else {
    l1_loss_forward_flat_kernel<scalar_t, 1><<<blocks, threads, 0, stream>>>(
        args.input, args.target, args.grad, args.numel, weight, loss_scale, args.loss, args.workspace);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template void launch_l1_loss_forward<float>(const L1LossForwardArgs<float>&, cudaStream_t);
template void launch_l1_loss_forward<double>(const L1LossForwardArgs<double>&, cudaStream_t);
template void launch_l1_loss_forward<c10::Half>(const L1LossForwardArgs<c10::Half>&, cudaStream_t);
template void launch_l1_loss_forward<c10::BFloat16>(const L1LossForwardArgs<c10::BFloat16>&, cudaStream_t);

}  // namespace genimg_fast
