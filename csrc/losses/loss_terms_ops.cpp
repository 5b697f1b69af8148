// CUDA implementations of genimg_fast::loss_terms and genimg_fast::_scale_term_stored_grads (schemas
// and references: genimg_fast/ops/loss_terms.py); the references serve while the kernel paths
// may not run (common/kernel_paths.h).
#include <ATen/Dispatch.h>
#include <ATen/core/List.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/string_view.h>
#include <torch/library.h>

#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "common/kernel_paths.h"
#include "common/reference_fallback.h"
#include "common/tensor_checks.h"
#include "losses/loss_spec.h"
#include "losses/loss_terms_launch.h"

namespace genimg_fast {
namespace {

constexpr const char* kOp = "genimg_fast.loss_terms";

std::vector<TermSpec> check_terms(at::TensorList inputs, const c10::List<std::optional<at::Tensor>>& targets,
                                  c10::ArrayRef<double> target_values, c10::string_view spec,
                                  c10::ArrayRef<double> weights) {
  const size_t count = inputs.size();
  TORCH_CHECK_VALUE(count >= 1 && count <= static_cast<size_t>(kMaxLossTerms), kOp, ": between 1 and ",
                    std::to_string(kMaxLossTerms), " terms, got ", std::to_string(count));
  TORCH_CHECK_VALUE(targets.size() == count && target_values.size() == count && weights.size() == count, kOp,
                    ": inputs, targets, target_values and weights must have one entry per term");
  const std::vector<TermSpec> parsed = parse_loss_spec(spec, count, kOp);
  const at::Tensor& first = inputs[0];
  for (size_t i = 0; i < count; ++i) {
    const at::Tensor& x = inputs[i];
    const std::string name = "inputs[" + std::to_string(i) + "]";
    TORCH_CHECK_TYPE(is_supported_float(x.scalar_type()), kOp, ": ", name,
                     " must be float32, float16, bfloat16 or float64, got ", dtype_str(x.scalar_type()));
    TORCH_CHECK_TYPE(x.scalar_type() == first.scalar_type(), kOp, ": every input must have the dtype of inputs[0] (",
                     dtype_str(first.scalar_type()), "), ", name, " is ", dtype_str(x.scalar_type()));
    TORCH_CHECK_VALUE(x.device() == first.device(), kOp, ": every input must be on the device of inputs[0] (",
                      first.device(), "), ", name, " is on ", x.device());
    const std::optional<at::Tensor> target = targets.get(i);
    if (!target.has_value()) continue;
    TORCH_CHECK_VALUE(parsed[i].has_target, kOp, ": a term of this kind takes no target, but targets[",
                      std::to_string(i), "] is a tensor");
    TORCH_CHECK_VALUE(target->scalar_type() == x.scalar_type() && target->device() == x.device() &&
                          target->sizes() == x.sizes(),
                      kOp, ": targets[", std::to_string(i), "] must match ", name, " in shape, dtype and device (",
                      shape_str(x.sizes()), ", ", dtype_str(x.scalar_type()), "), got ", shape_str(target->sizes()),
                      ", ", dtype_str(target->scalar_type()));
  }
  return parsed;
}

// One term's tensors in a layout the kernel can index directly (dense, shared by input, target
// and gradient); `grad` is what the op returns, `grad_work` where the kernel writes.
struct DenseTerm {
  at::Tensor input, target, grad, grad_work;
};

DenseTerm dense_term(const at::Tensor& x, const std::optional<at::Tensor>& target, bool compute_grad) {
  DenseTerm d{x, target.value_or(at::Tensor()), at::Tensor(), at::Tensor()};
  d.grad = compute_grad ? at::empty_like(x) : at::empty({0}, x.options());
  const bool direct = x.is_non_overlapping_and_dense() && (!target.has_value() || same_dense_layout(x, *target)) &&
                      (!compute_grad || same_dense_layout(x, d.grad));
  if (!direct) {
    d.input = x.contiguous();
    if (target.has_value()) d.target = target->contiguous();
  }
  if (compute_grad) d.grad_work = direct ? d.grad : at::empty_like(d.input);
  return d;
}

std::tuple<at::Tensor, at::Tensor, std::vector<at::Tensor>> loss_terms_cuda(
    at::TensorList inputs, const c10::List<std::optional<at::Tensor>>& targets, c10::ArrayRef<double> target_values,
    c10::string_view spec, c10::ArrayRef<double> weights, bool compute_grad) {
  const std::vector<TermSpec> parsed = check_terms(inputs, targets, target_values, spec, weights);
  if (!take_kernel_path(KernelPath::kLossTerms, kReferenceInstead)) {
    return call_reference<decltype(loss_terms_cuda)>("genimg_fast::loss_terms", inputs, targets, target_values, spec,
                                                     weights, compute_grad);
  }
  const at::Tensor& first = inputs[0];
  const c10::cuda::CUDAGuard guard(first.device());
  const int num_terms = static_cast<int>(inputs.size());

  std::vector<DenseTerm> dense;
  LossTermsArgs args{};
  args.num_terms = num_terms;
  for (int i = 0; i < num_terms; ++i) {
    dense.push_back(dense_term(inputs[i], targets.get(i), compute_grad));
    const DenseTerm& d = dense.back();
    LossTermArgs& term = args.terms[i];
    term.input = d.input.const_data_ptr();
    term.target = d.target.defined() ? d.target.const_data_ptr() : nullptr;
    term.grad = compute_grad ? d.grad_work.mutable_data_ptr() : nullptr;
    term.numel = d.input.numel();
    term.target_value = target_values[i];
    term.grad_weight = weights[i];
    term.kind = parsed[i].kind;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    term.value_scale = !parsed[i].mean ? weights[i] : term.numel > 0 ? weights[i] / term.numel : nan;
  }
  args.total_blocks = plan_loss_term_blocks(args.terms, num_terms);
  at::Tensor term_values = at::empty({num_terms}, first.options());
  at::Tensor total = at::empty({}, first.options());
  const bool is_double = first.scalar_type() == at::kDouble;
  at::Tensor workspace = at::empty({static_cast<int64_t>(loss_terms_workspace_bytes(args.total_blocks, is_double))},
                                   first.options().dtype(at::kByte));
  args.term_values = term_values.mutable_data_ptr();
  args.total = total.mutable_data_ptr();
  args.workspace = workspace.mutable_data_ptr();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, first.scalar_type(), "genimg_fast_loss_terms",
                                  [&] { launch_loss_terms<scalar_t>(args, stream); });

  std::vector<at::Tensor> grads;
  for (DenseTerm& d : dense) {
    if (compute_grad && !d.grad_work.is_same(d.grad)) d.grad.copy_(d.grad_work);
    grads.push_back(d.grad);
  }
  return {term_values, total, grads};
}

std::vector<at::Tensor> scale_term_stored_grads_cuda(at::TensorList stored, const at::Tensor& grad_total,
                                                     const std::optional<at::Tensor>& grad_terms,
                                                     c10::string_view spec) {
  constexpr const char* kScaleOp = "genimg_fast._scale_term_stored_grads";
  const size_t count = stored.size();
  TORCH_CHECK_VALUE(count >= 1 && count <= static_cast<size_t>(kMaxLossTerms), kScaleOp, ": between 1 and ",
                    std::to_string(kMaxLossTerms), " stored gradients, got ", std::to_string(count));
  const std::vector<TermSpec> parsed = parse_loss_spec(spec, count, kScaleOp);
  TORCH_CHECK_VALUE(!grad_terms.has_value() ||
                        (grad_terms->dim() == 1 && grad_terms->size(0) == static_cast<int64_t>(count)),
                    kScaleOp, ": one grad_terms entry per stored gradient (", std::to_string(count),
                    "), got grad_terms of shape ", grad_terms.has_value() ? shape_str(grad_terms->sizes()) : "");
  TORCH_CHECK_VALUE(grad_total.numel() == 1, kScaleOp, ": grad_total must hold one value, got shape ",
                    shape_str(grad_total.sizes()));
  const at::ScalarType dtype = stored[0].scalar_type();
  for (size_t i = 0; i < count; ++i) {
    TORCH_CHECK_TYPE(stored[i].scalar_type() == dtype && is_supported_float(dtype), kScaleOp, ": stored[",
                     std::to_string(i), "] must be a floating tensor of the dtype of stored[0] (", dtype_str(dtype),
                     "), got ", dtype_str(stored[i].scalar_type()));
    TORCH_CHECK_VALUE(stored[i].device() == grad_total.device() &&
                          (!grad_terms.has_value() || grad_terms->device() == grad_total.device()),
                      kScaleOp, ": stored[", std::to_string(i), "], grad_total and grad_terms must share a device");
  }
  if (!take_kernel_path(KernelPath::kScaleTermStoredGrads, kReferenceInstead)) {
    return call_reference<decltype(scale_term_stored_grads_cuda)>("genimg_fast::_scale_term_stored_grads", stored,
                                                                  grad_total, grad_terms, spec);
  }
  const c10::cuda::CUDAGuard guard(grad_total.device());
  // both incoming gradients in the accumulation type, as the reference reads them
  const at::ScalarType acc = dtype == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor total = grad_total.reshape({}).to(acc);
  const at::Tensor terms = grad_terms.has_value() ? grad_terms->to(acc).contiguous() : at::Tensor();
  std::vector<at::Tensor> outs, dense_stored;
  ScaleTermsArgs args{};
  args.num_terms = static_cast<int>(count);
  for (size_t i = 0; i < count; ++i) {
    outs.push_back(at::empty_like(stored[i]));
    const bool direct = same_dense_layout(stored[i], outs.back());
    dense_stored.push_back(direct ? stored[i] : stored[i].contiguous());
    ScaleTermArgs& term = args.terms[i];
    term.stored = dense_stored.back().const_data_ptr();
    term.numel = stored[i].numel();
    term.scale = parsed[i].mean && term.numel > 0 ? 1.0 / static_cast<double>(term.numel) : 1.0;
  }
  std::vector<at::Tensor> work;
  for (size_t i = 0; i < count; ++i) {
    const bool direct = dense_stored[i].is_same(stored[i]);
    work.push_back(direct ? outs[i] : at::empty_like(dense_stored[i]));
    args.terms[i].out = work.back().mutable_data_ptr();
  }
  args.total_blocks = plan_scale_term_blocks(args.terms, args.num_terms);
  args.grad_total = total.const_data_ptr();
  args.grad_terms = terms.defined() ? terms.const_data_ptr() : nullptr;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "genimg_fast_scale_term_stored_grads",
                                  [&] { launch_scale_term_stored_grads<scalar_t>(args, stream); });
  for (size_t i = 0; i < count; ++i) {
    if (!work[i].is_same(outs[i])) outs[i].copy_(work[i]);
  }
  return outs;
}

}  // namespace

TORCH_LIBRARY_IMPL(genimg_fast, CUDA, m) {
  m.impl("loss_terms", TORCH_FN(loss_terms_cuda));
  m.impl("_scale_term_stored_grads", TORCH_FN(scale_term_stored_grads_cuda));
}

}  // namespace genimg_fast
