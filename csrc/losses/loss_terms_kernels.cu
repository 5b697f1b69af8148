// Kernels of the multi-term fused losses (see loss_terms_launch.h).
#include <c10/cuda/CUDAException.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>


#include "common/acc_type.h"
#include "common/block_reduce.cuh"
#include "common/reduction_grid.h"
#include "losses/loss_terms_launch.h"

namespace genimg_fast {
namespace {

// The term that block `block` works on (terms are dealt out in order; a trailing block past
// every term, which a grid of only empty terms has, gets num_terms).
template <typename Terms>
__device__ __forceinline__ int term_of_block(const Terms& terms, int num_terms, int64_t block) {
  int t = 0;
  while (t < num_terms && block >= terms[t].first_block + terms[t].blocks) ++t;
  return t;
}

template <typename scalar_t>
__global__ void __launch_bounds__(kLossTermThreads) loss_terms_kernel(const LossTermsArgs args) {
  using acc_t = acc_type_t<scalar_t>;
  const int64_t block = blockIdx.x;
  const int t = term_of_block(args.terms, args.num_terms, block);
  acc_t sum = 0;
  if (t < args.num_terms) {
    const LossTermArgs& term = args.terms[t];
    const auto* input = static_cast<const scalar_t*>(term.input);
    const auto* target = static_cast<const scalar_t*>(term.target);
    auto* grad = static_cast<scalar_t*>(term.grad);
    const acc_t target_value = static_cast<acc_t>(term.target_value);
    const acc_t grad_weight = static_cast<acc_t>(term.grad_weight);
    const int64_t begin = (block - term.first_block) * kLossTermElementsPerBlock;
    const int64_t end = begin + kLossTermElementsPerBlock < term.numel ? begin + kLossTermElementsPerBlock
                                                                        : term.numel;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      const acc_t b = target != nullptr ? static_cast<acc_t>(target[i]) : target_value;
      const LossElement<acc_t> e = loss_element(term.kind, static_cast<acc_t>(input[i]), b);
      sum += e.value;
      if (grad != nullptr) grad[i] = static_cast<scalar_t>(e.grad * grad_weight);
    }
  }

  auto* ticket = static_cast<unsigned int*>(args.workspace);
  auto* partials = reinterpret_cast<acc_t*>(static_cast<char*>(args.workspace) + kTicketBytes);
  __shared__ bool is_last_block;
  const acc_t block_sum = block_reduce_sum(sum);
  if (threadIdx.x == 0) {
    partials[block] = block_sum;
    __threadfence();  // publish the partial before taking a ticket
    is_last_block = atomicAdd(ticket, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (!is_last_block) return;
  __threadfence();  // order the partial reads after the ticket

  acc_t total = 0;
  for (int k = 0; k < args.num_terms; ++k) {  // each term's partials, in block order
    const LossTermArgs& term = args.terms[k];
    acc_t term_sum = 0;
    for (int64_t b = threadIdx.x; b < term.blocks; b += blockDim.x) term_sum += __ldcg(&partials[term.first_block + b]);
    term_sum = block_reduce_sum(term_sum);
    if (threadIdx.x == 0) {
      const acc_t value = term_sum * static_cast<acc_t>(term.value_scale);
      static_cast<scalar_t*>(args.term_values)[k] = static_cast<scalar_t>(value);
      total += value;
    }
  }
  if (threadIdx.x == 0) {
    *static_cast<scalar_t*>(args.total) = static_cast<scalar_t>(total);
    *ticket = 0u;
  }
}

// The op's former name: a __global__ function's name is part of its path's fingerprint
// (buildtools/kernel_paths.py), so renaming it would take the path off until a GPU check.
template <typename scalar_t>
__global__ void __launch_bounds__(kLossTermThreads) scale_stored_grads_kernel(const ScaleTermsArgs args) {
  using acc_t = acc_type_t<scalar_t>;
  const int64_t block = blockIdx.x;
  const int t = term_of_block(args.terms, args.num_terms, block);
  if (t >= args.num_terms) return;
  const ScaleTermArgs& term = args.terms[t];
  const auto* grad_terms = static_cast<const acc_t*>(args.grad_terms);
  const acc_t factor = (*static_cast<const acc_t*>(args.grad_total) + (grad_terms != nullptr ? grad_terms[t] : acc_t(0))) *
                       static_cast<acc_t>(term.scale);
  const auto* stored = static_cast<const scalar_t*>(term.stored);
  auto* out = static_cast<scalar_t*>(term.out);
  const int64_t begin = (block - term.first_block) * kLossTermElementsPerBlock;
  const int64_t end = begin + kLossTermElementsPerBlock < term.numel ? begin + kLossTermElementsPerBlock : term.numel;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    out[i] = static_cast<scalar_t>(static_cast<acc_t>(stored[i]) * factor);
  }
}

template <typename Term>
int64_t deal_out_blocks(Term* terms, int num_terms) {
  int64_t next = 0;
  for (int k = 0; k < num_terms; ++k) {
    terms[k].first_block = next;
    terms[k].blocks = (terms[k].numel + kLossTermElementsPerBlock - 1) / kLossTermElementsPerBlock;
    next += terms[k].blocks;
  }
  return next > 0 ? next : 1;
}

}  // namespace

int64_t plan_loss_term_blocks(LossTermArgs* terms, int num_terms) { return deal_out_blocks(terms, num_terms); }
int64_t plan_scale_term_blocks(ScaleTermArgs* terms, int num_terms) { return deal_out_blocks(terms, num_terms); }

size_t loss_terms_workspace_bytes(int64_t total_blocks, bool is_double) {
  return kTicketBytes + static_cast<size_t>(total_blocks) * (is_double ? sizeof(double) : sizeof(float));
}

template <typename scalar_t>
void launch_loss_terms(const LossTermsArgs& args, cudaStream_t stream) {
  C10_CUDA_CHECK(cudaMemsetAsync(args.workspace, 0, kTicketBytes, stream));
  loss_terms_kernel<scalar_t><<<args.total_blocks, kLossTermThreads, 0, stream>>>(args);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t>
void launch_scale_term_stored_grads(const ScaleTermsArgs& args, cudaStream_t stream) {
  scale_stored_grads_kernel<scalar_t><<<args.total_blocks, kLossTermThreads, 0, stream>>>(args);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

#define GENIMG_INSTANTIATE_LOSS_TERMS(T)                                                 \
  template void launch_loss_terms<T>(const LossTermsArgs&, cudaStream_t);                \
  template void launch_scale_term_stored_grads<T>(const ScaleTermsArgs&, cudaStream_t);
GENIMG_INSTANTIATE_LOSS_TERMS(float)
GENIMG_INSTANTIATE_LOSS_TERMS(double)
GENIMG_INSTANTIATE_LOSS_TERMS(c10::Half)
GENIMG_INSTANTIATE_LOSS_TERMS(c10::BFloat16)
#undef GENIMG_INSTANTIATE_LOSS_TERMS

}  // namespace genimg_fast
