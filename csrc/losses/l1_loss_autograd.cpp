// Autograd of genimg_fast::l1_loss in C++ for CPU and CUDA tensors (taking precedence over the
// Python formula of genimg_fast/ops/l1_loss.py): the forward stored weight * sign(input - target),
// the backward scales it by grad_output (and 1/n for 'mean') in one launch, with no Python
// between. The target's gradient is minus the input's.
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "common/autograd_calls.h"

namespace genimg_fast {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using L1Signature = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, double, c10::string_view,
                                                       bool);
using ScaleSignature = std::vector<at::Tensor>(at::TensorList, const at::Tensor&, const std::optional<at::Tensor>&,
                                               c10::string_view);
using ScaleOneSignature = at::Tensor(const at::Tensor&, const at::Tensor&, double);

// stored * grad_loss (/ n for 'mean'): the vectorized single-tensor kernel when the count is a
// number, the multi-term op (which counts itself) when it is symbolic (torch.compile tracing).
at::Tensor scale_stored(const at::Tensor& stored, const at::Tensor& grad_loss, const std::string& spec) {
  static const auto one = typed_op<ScaleOneSignature>("genimg_fast::_scale_one_stored_grad");
  static const auto many = typed_op<ScaleSignature>("genimg_fast::_scale_term_stored_grads");
  const std::optional<int64_t> n = stored.sym_numel().maybe_as_int();
  if (!n.has_value()) return many.call({stored}, grad_loss, std::nullopt, spec)[0];
  const bool mean = spec == "l1:mean";
  return one.call(stored, grad_loss, mean && *n > 0 ? 1.0 / static_cast<double>(*n) : 1.0);
}

class L1LossFunction : public torch::autograd::Function<L1LossFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& target, double weight,
                               c10::string_view reduction, bool compute_grad) {
    static const auto op = typed_op<L1Signature>("genimg_fast::l1_loss");
    auto [loss, stored] = call_below_autograd(op, input, target, weight, reduction, compute_grad);
    ctx->mark_non_differentiable({stored});
    ctx->set_materialize_grads(false);
    ctx->save_for_backward({stored});
    // the loss spec of _scale_term_stored_grads, which divides by the count itself for 'mean'
    ctx->saved_data["spec"] = "l1:" + std::string(reduction);
    ctx->saved_data["compute_grad"] = compute_grad;
    return {loss, stored};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list result(5);  // input, target, weight, reduction, compute_grad
    const at::Tensor& grad_loss = grads[0];
    const bool wanted = ctx->needs_input_grad(0) || ctx->needs_input_grad(1);
    if (!grad_loss.defined() || !wanted) return result;
    TORCH_CHECK(ctx->saved_data["compute_grad"].toBool(), "genimg_fast.l1_loss was called with compute_grad=False, "
                "so it stored no gradient; call genimg_fast.ops.l1_loss, which sets it when a gradient is needed");
    const variable_list stored = ctx->get_saved_variables();
    const std::string spec = ctx->saved_data["spec"].toStringRef();
    const at::Tensor grad_input = call_in_backward([&] { return scale_stored(stored[0], grad_loss, spec); });
    if (ctx->needs_input_grad(1)) result[1] = grad_input.neg();
    if (ctx->needs_input_grad(0)) result[0] = grad_input;
    return result;
  }
};

std::tuple<at::Tensor, at::Tensor> l1_loss_autograd(const at::Tensor& input, const at::Tensor& target, double weight,
                                                    c10::string_view reduction, bool compute_grad) {
  const variable_list out = L1LossFunction::apply(input, target, weight, reduction, compute_grad);
  return {out[0], out[1]};
}

}  // namespace

TORCH_LIBRARY_IMPL(genimg_fast, AutogradCUDA, m) { m.impl("l1_loss", TORCH_FN(l1_loss_autograd)); }
TORCH_LIBRARY_IMPL(genimg_fast, AutogradCPU, m) { m.impl("l1_loss", TORCH_FN(l1_loss_autograd)); }

}  // namespace genimg_fast
