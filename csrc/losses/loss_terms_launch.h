#pragma once
// Multi-term fused losses (genimg_fast::loss_terms and its backward, _scale_term_stored_grads): one
// launch covers every term. Blocks are dealt out term by term, `elements_per_block` elements
// each; every block writes one partial sum, and the last block to finish (atomic ticket) sums
// each term's partials in block order, so values are deterministic.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "losses/loss_math.h"

namespace genimg_fast {

constexpr int kMaxLossTerms = 8;
constexpr int kLossTermThreads = 256;
constexpr int64_t kLossTermElementsPerBlock = 4 * 1024;

struct LossTermArgs {
  const void* input;   // dense, in the layout the target and gradient share
  const void* target;  // nullptr: the constant target_value (or no target)
  void* grad;          // stored weight * df/da; nullptr without compute_grad
  int64_t numel;
  int64_t first_block;
  int64_t blocks;
  double target_value;
  double value_scale;  // weight / numel ('mean'), weight ('sum'); NaN for the mean of nothing
  double grad_weight;  // weight
  LossKind kind;
};

struct LossTermsArgs {
  LossTermArgs terms[kMaxLossTerms];
  int num_terms;
  int64_t total_blocks;  // >= 1
  void* term_values;     // [num_terms], the inputs' dtype
  void* total;           // one element
  void* workspace;       // loss_terms_workspace_bytes
};

// Deals out blocks to the terms and returns the grid size (at least one block).
int64_t plan_loss_term_blocks(LossTermArgs* terms, int num_terms);
size_t loss_terms_workspace_bytes(int64_t total_blocks, bool is_double);

template <typename scalar_t>
void launch_loss_terms(const LossTermsArgs& args, cudaStream_t stream);

// Backward: out[i] = stored[i] * (grad_total + grad_terms[i]) * scale[i], computed in acc_t
// (grad_terms may be absent).
struct ScaleTermArgs {
  const void* stored;
  void* out;
  int64_t numel;
  int64_t first_block;
  int64_t blocks;
  double scale;
};

struct ScaleTermsArgs {
  ScaleTermArgs terms[kMaxLossTerms];
  int num_terms;
  int64_t total_blocks;
  const void* grad_total;  // one element, the accumulation type (float; double for double)
  const void* grad_terms;  // [num_terms], the accumulation type; nullptr: no per-term gradients
};

int64_t plan_scale_term_blocks(ScaleTermArgs* terms, int num_terms);

template <typename scalar_t>
void launch_scale_term_stored_grads(const ScaleTermsArgs& args, cudaStream_t stream);

}  // namespace genimg_fast
