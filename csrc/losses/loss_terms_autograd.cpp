// Autograd of genimg_fast::loss_terms in C++ for CPU and CUDA tensors (taking precedence over
// the Python formula of genimg_fast/ops/loss_terms.py, which serves other devices and installs
// without the extension): a combined objective is then one op call forward and one backward,
// with no Python in between. Same formula: each input's gradient is its stored
// weight * df/da times (grad_total + grad_terms[i]) times 1/n for a mean, in one launch.
#include <ATen/core/List.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "common/autograd_calls.h"
#include "losses/loss_spec.h"

namespace genimg_fast {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using OptTensorList = c10::List<std::optional<at::Tensor>>;
using LossTermsResult = std::tuple<at::Tensor, at::Tensor, std::vector<at::Tensor>>;
using LossTermsSignature = LossTermsResult(at::TensorList, const OptTensorList&, c10::ArrayRef<double>,
                                           c10::string_view, c10::ArrayRef<double>, bool);
using ScaleSignature = std::vector<at::Tensor>(at::TensorList, const at::Tensor&, const std::optional<at::Tensor>&,
                                               c10::string_view);

// A backward being recorded (create_graph=True, e.g. an R1 penalty on a loss's gradient) would
// take the stored gradients for constants: wrong for every kind whose gradient depends on its
// input. Refused, as genimg_fast/ops/loss_terms.py refuses it.
void refuse_double_backward(const std::string& spec, size_t count) {
  std::vector<std::string> curved;  // those kinds, once each
  for (const TermSpec& term : parse_loss_spec(spec, count, "genimg_fast.loss_terms")) {
    if (gradient_depends_on_input(term.kind) && std::find(curved.begin(), curved.end(), term.name) == curved.end()) {
      curved.push_back(term.name);
    }
  }
  if (curved.empty()) return;
  std::string kinds = curved[0];
  for (size_t i = 1; i < curved.size(); ++i) kinds += ", " + curved[i];
  TORCH_CHECK(false, "genimg_fast.loss_terms: double backward (create_graph=True through the fused ", kinds,
              " loss) is not supported: the fused loss computes its gradient in the forward, and a graph of its "
              "backward would treat that gradient as a constant. Compute a loss you differentiate twice with "
              "torch's own functions (torch.nn.functional, or impl='reference' in the recipes)");
}

class LossTermsFunction : public torch::autograd::Function<LossTermsFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, at::TensorList inputs, const OptTensorList& targets,
                               c10::ArrayRef<double> target_values, c10::string_view spec,
                               c10::ArrayRef<double> weights, bool compute_grad) {
    static const auto op = typed_op<LossTermsSignature>("genimg_fast::loss_terms");
    auto [terms, total, stored] = call_below_autograd(op, inputs, targets, target_values, spec, weights, compute_grad);
    ctx->saved_data["spec"] = std::string(spec);  // the backward divides the 'mean' terms by their counts
    ctx->saved_data["compute_grad"] = compute_grad;
    ctx->mark_non_differentiable(stored);
    ctx->set_materialize_grads(false);  // no zero-filled gradients for the outputs nobody differentiated
    ctx->save_for_backward(stored);
    variable_list out{terms, total};
    out.insert(out.end(), stored.begin(), stored.end());
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op = typed_op<ScaleSignature>("genimg_fast::_scale_term_stored_grads");
    const variable_list stored = ctx->get_saved_variables();
    variable_list result(stored.size() + 5);  // one per input tensor, then the other arguments
    at::Tensor grad_terms = grads[0], grad_total = grads[1];
    if (!grad_terms.defined() && !grad_total.defined()) return result;
    TORCH_CHECK(ctx->saved_data["compute_grad"].toBool(), "genimg_fast.loss_terms was called with "
                "compute_grad=False, so it stored no gradient; call genimg_fast.ops.loss_terms, which sets it "
                "when a gradient is needed");
    if (!grad_total.defined()) grad_total = at::zeros({}, grad_terms.options());  // only logged terms were used
    const std::optional<at::Tensor> terms = grad_terms.defined() ? std::optional<at::Tensor>(grad_terms) : std::nullopt;
    const std::string spec = ctx->saved_data["spec"].toStringRef();
    if (at::GradMode::is_enabled()) refuse_double_backward(spec, stored.size());
    const std::vector<at::Tensor> input_grads = call_backward_op(op, stored, grad_total, terms, spec);
    for (size_t i = 0; i < input_grads.size(); ++i) {
      if (ctx->needs_input_grad(i)) result[i] = input_grads[i];
    }
    return result;
  }
};

LossTermsResult loss_terms_autograd(at::TensorList inputs, const OptTensorList& targets,
                                    c10::ArrayRef<double> target_values, c10::string_view spec,
                                    c10::ArrayRef<double> weights, bool compute_grad) {
  // A target that requires grad would get none: refuse it when a graph is being recorded (the
  // forward itself runs with grad mode off, so the check is here).
  for (size_t i = 0; i < targets.size() && at::GradMode::is_enabled(); ++i) {
    const std::optional<at::Tensor> target = targets.get(i);
    TORCH_CHECK(!target.has_value() || !target->requires_grad(), "genimg_fast.loss_terms: targets[",
                std::to_string(i), "] requires grad, but gradients with respect to targets are not computed; "
                "detach it, or use genimg_fast.ops.l1_loss / torch's loss for that term");
  }
  const variable_list out = LossTermsFunction::apply(inputs, targets, target_values, spec, weights, compute_grad);
  return {out[0], out[1], std::vector<at::Tensor>(out.begin() + 2, out.end())};
}

}  // namespace

TORCH_LIBRARY_IMPL(genimg_fast, AutogradCUDA, m) { m.impl("loss_terms", TORCH_FN(loss_terms_autograd)); }
TORCH_LIBRARY_IMPL(genimg_fast, AutogradCPU, m) { m.impl("loss_terms", TORCH_FN(loss_terms_autograd)); }

}  // namespace genimg_fast
