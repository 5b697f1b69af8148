// Autograd of norm_act_train (and batch_norm_act_train_, which also updates the running
// statistics), norm_act_apply and the running-statistics updates in C++, registered for CPU and
// CUDA tensors (AutogradCPU / AutogradCUDA take precedence over the Python formulas that
// genimg_fast/ops/norm_act.py registers for every device). The formulas are the same; running
// them here keeps Python off the training step: the Python autograd wrapper of a custom op cost
// more host time than the kernels of a DCGAN-sized norm layer take on the GPU.
//
// Both functions call the forward op below autograd, and the backward ops below autograd too,
// unless the backward itself is being recorded (create_graph=True, e.g. a gradient penalty); then
// the backward is genimg_fast::_norm_act_differentiable_backward, made of torch ops that autograd
// records (genimg_fast/ops/norm_act_differentiable_backward.py).
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/library.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <tuple>

#include "common/autograd_calls.h"

namespace genimg_fast {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using OptTensor = std::optional<at::Tensor>;
using Tensor3 = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

using TrainSignature = Tensor3(const at::Tensor&, const OptTensor&, const OptTensor&, bool, double, c10::string_view,
                               double);
using TrainBackwardSignature = Tensor3(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                       const OptTensor&, const OptTensor&, double, c10::string_view, double);
using ApplySignature = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&,
                                  const OptTensor&, double, c10::string_view, double);
using BackwardReduceSignature = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                                   const at::Tensor&, const at::Tensor&,
                                                                   const OptTensor&, const OptTensor&, double,
                                                                   c10::string_view, double);
using DifferentiableBackwardSignature = Tensor3(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                const at::Tensor&, const OptTensor&, const OptTensor&, bool, double,
                                                c10::string_view, double);
using BackwardApplySignature = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                          const OptTensor&, const OptTensor&, const OptTensor&, const OptTensor&,
                                          double, double, c10::string_view, double);

OptTensor optional_of(const at::Tensor& t) { return t.defined() ? OptTensor(t) : std::nullopt; }

// The forward's tensor inputs become autograd edges only when present: the edge of each.
struct ParamEdges {
  int weight = -1, bias = -1;
  ParamEdges(int first, bool has_weight, bool has_bias) {
    if (has_weight) weight = first++;
    if (has_bias) bias = first;
  }
};

bool needs_grad(AutogradContext* ctx, int edge) { return edge >= 0 && ctx->needs_input_grad(edge); }

at::Tensor param_grad(AutogradContext* ctx, int edge, const at::Tensor& grad, const at::Tensor& param) {
  if (!needs_grad(ctx, edge)) return at::Tensor();
  return grad.scalar_type() == param.scalar_type() ? grad : grad.to(param.scalar_type());
}

void save_options(AutogradContext* ctx, double eps, c10::string_view activation, double slope) {
  ctx->saved_data["eps"] = eps;
  ctx->saved_data["activation"] = std::string(activation);
  ctx->saved_data["slope"] = slope;
}

struct Options {
  double eps;
  std::string activation;
  double slope;
};

// A backward being recorded (create_graph=True): (dx, dweight, dbias) from torch ops, through
// autograd. Looked up on first use: the op is defined in Python, after this library loads.
Tensor3 differentiable_backward(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& mean,
                                const at::Tensor& var, const at::Tensor& weight, const at::Tensor& bias,
                                bool batch_stats, const Options& o) {
  static const auto op =
      typed_op<DifferentiableBackwardSignature>("genimg_fast::_norm_act_differentiable_backward");
  return op.call(grad_y, x, mean, var, optional_of(weight), optional_of(bias), batch_stats, o.eps, o.activation,
                 o.slope);
}

Options saved_options(AutogradContext* ctx) {
  return {ctx->saved_data["eps"].toDouble(), ctx->saved_data["activation"].toStringRef(),
          ctx->saved_data["slope"].toDouble()};
}

using BatchNormTrainSignature = Tensor3(const at::Tensor&, const OptTensor&, const OptTensor&, at::Tensor&, at::Tensor&,
                                        at::Tensor&, double, double, c10::string_view, double);

// The running statistics a batch-norm training forward updates (batch_norm_act_train_). They are
// buffers, not autograd inputs: passed by pointer, Function::apply does not take them for inputs.
struct RunningUpdate {
  at::Tensor* mean;
  at::Tensor* var;
  at::Tensor* num_batches_tracked;
  double momentum;
};

// norm_act_train, or with `running` batch_norm_act_train_ (the same forward that also updates
// the running statistics); the same backward.
class NormActTrainFunction : public torch::autograd::Function<NormActTrainFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const OptTensor& weight,
                               const OptTensor& bias, bool per_sample, double eps, c10::string_view activation,
                               double slope, const RunningUpdate* running) {
    static const auto train_op = typed_op<TrainSignature>("genimg_fast::norm_act_train");
    static const auto batch_norm_op = typed_op<BatchNormTrainSignature>("genimg_fast::batch_norm_act_train_");
    auto [y, mean, var] =
        running == nullptr
            ? call_below_autograd(train_op, x, weight, bias, per_sample, eps, activation, slope)
            : call_below_autograd(batch_norm_op, x, weight, bias, *running->mean, *running->var,
                                  *running->num_batches_tracked, running->momentum, eps, activation, slope);
    ctx->mark_non_differentiable({mean, var});
    ctx->set_materialize_grads(false);  // mean/var get no gradient: no zero tensors for them
    ctx->save_for_backward({x, weight.value_or(at::Tensor()), bias.value_or(at::Tensor()), mean, var});
    save_options(ctx, eps, activation, slope);
    return {y, mean, var};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op = typed_op<TrainBackwardSignature>("genimg_fast::_norm_act_train_backward");
    variable_list result(8);  // one per forward argument
    const at::Tensor& grad_y = grads[0];
    if (!grad_y.defined()) return result;  // y took no part in the loss
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &weight = saved[1], &bias = saved[2], &mean = saved[3], &var = saved[4];
    const Options o = saved_options(ctx);
    auto [dx, dweight, dbias] =
        at::GradMode::is_enabled()
            ? differentiable_backward(grad_y, x, mean, var, weight, bias, /*batch_stats=*/true, o)
            : call_backward_op(op, grad_y, x, mean, var, optional_of(weight), optional_of(bias), o.eps, o.activation,
                               o.slope);
    const ParamEdges edges(1, weight.defined(), bias.defined());
    if (ctx->needs_input_grad(0)) result[0] = dx;
    result[1] = param_grad(ctx, edges.weight, dweight, weight);
    result[2] = param_grad(ctx, edges.bias, dbias, bias);
    return result;
  }
};

class NormActApplyFunction : public torch::autograd::Function<NormActApplyFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& mean, const at::Tensor& var,
                            const OptTensor& weight, const OptTensor& bias, double eps, c10::string_view activation,
                            double slope) {
    static const auto op = typed_op<ApplySignature>("genimg_fast::norm_act_apply");
    at::Tensor y = call_below_autograd(op, x, mean, var, weight, bias, eps, activation, slope);
    ctx->save_for_backward({x, mean, var, weight.value_or(at::Tensor()), bias.value_or(at::Tensor())});
    ctx->set_materialize_grads(false);
    save_options(ctx, eps, activation, slope);
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto reduce_op = typed_op<BackwardReduceSignature>("genimg_fast::_norm_act_backward_reduce");
    static const auto apply_op = typed_op<BackwardApplySignature>("genimg_fast::_norm_act_backward_apply");
    TORCH_CHECK(!ctx->needs_input_grad(1) && !ctx->needs_input_grad(2),
                "genimg_fast.norm_act_apply: gradients with respect to mean and var are not supported "
                "(they are treated as constants, like running statistics)");
    variable_list result(8);  // one per forward argument
    const at::Tensor& grad_y = grads[0];
    if (!grad_y.defined()) return result;
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &mean = saved[1], &var = saved[2], &weight = saved[3], &bias = saved[4];
    const Options o = saved_options(ctx);
    const ParamEdges edges(3, weight.defined(), bias.defined());
    if (at::GradMode::is_enabled()) {
      auto [dx, dweight, dbias] = differentiable_backward(grad_y, x, mean, var, weight, bias, /*batch_stats=*/false, o);
      if (ctx->needs_input_grad(0)) result[0] = dx;
      result[3] = param_grad(ctx, edges.weight, dweight, weight);
      result[4] = param_grad(ctx, edges.bias, dbias, bias);
      return result;
    }
    if (ctx->needs_input_grad(0)) {
      result[0] = call_backward_op(apply_op, grad_y, x, mean, var, optional_of(weight), optional_of(bias),
                                   std::nullopt, std::nullopt, 1.0, o.eps, o.activation, o.slope);
    }
    if (needs_grad(ctx, edges.weight) || needs_grad(ctx, edges.bias)) {
      auto [sum_dz, sum_dz_xhat] = call_backward_op(reduce_op, grad_y, x, mean, var, optional_of(weight),
                                                    optional_of(bias), o.eps, o.activation, o.slope);
      if (mean.dim() == 2) {  // per-sample statistics: parameters are per channel
        sum_dz = sum_dz.sum(0);
        sum_dz_xhat = sum_dz_xhat.sum(0);
      }
      result[3] = param_grad(ctx, edges.weight, sum_dz_xhat, weight);
      result[4] = param_grad(ctx, edges.bias, sum_dz, bias);
    }
    return result;
  }
};

Tensor3 norm_act_train_autograd(const at::Tensor& x, const OptTensor& weight, const OptTensor& bias, bool per_sample,
                                double eps, c10::string_view activation, double slope) {
  const variable_list out = NormActTrainFunction::apply(x, weight, bias, per_sample, eps, activation, slope,
                                                        static_cast<const RunningUpdate*>(nullptr));
  return {out[0], out[1], out[2]};
}

at::Tensor norm_act_apply_autograd(const at::Tensor& x, const at::Tensor& mean, const at::Tensor& var,
                                   const OptTensor& weight, const OptTensor& bias, double eps,
                                   c10::string_view activation, double slope) {
  return NormActApplyFunction::apply(x, mean, var, weight, bias, eps, activation, slope);
}

}  // namespace

using UpdateRunningSignature = void(at::Tensor&, at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, double);
using UpdateTrackedSignature = void(at::Tensor&, at::Tensor&, at::Tensor&, const at::Tensor&, const at::Tensor&,
                                    int64_t, std::optional<double>);

// The running-statistics updates have nothing to differentiate. They bump the buffers' versions
// here, as torch's own in-place kernels do (the custom op's generic in-place kernel would run
// Python on every training step): a graph that saved them (eval mode saves the running
// statistics) then refuses a backward after they changed instead of using the new values.
void bump_versions(std::initializer_list<const at::Tensor*> mutated) {
  for (const at::Tensor* t : mutated) {
    if (!t->is_inference()) torch::autograd::impl::bump_version(*t);
  }
}

void check_not_differentiated(const at::Tensor& running_mean, const at::Tensor& running_var, const at::Tensor& mean,
                              const at::Tensor& var, const char* op) {
  TORCH_CHECK(!at::GradMode::is_enabled() || !(mean.requires_grad() || var.requires_grad() ||
                                                running_mean.requires_grad() || running_var.requires_grad()),
              op, " is not differentiable: detach mean, var and the running statistics (they are buffers, "
              "not parameters)");
}

void update_running_stats_autograd(c10::DispatchKeySet keys, at::Tensor& running_mean, at::Tensor& running_var,
                                   const at::Tensor& mean, const at::Tensor& var, int64_t count, double momentum) {
  static const auto op = typed_op<UpdateRunningSignature>("genimg_fast::update_running_stats_");
  check_not_differentiated(running_mean, running_var, mean, var, "genimg_fast.update_running_stats_");
  op.redispatch(keys & c10::after_ADInplaceOrView_keyset, running_mean, running_var, mean, var, count, momentum);
  bump_versions({&running_mean, &running_var});
}

void update_tracked_running_stats_autograd(c10::DispatchKeySet keys, at::Tensor& running_mean,
                                           at::Tensor& running_var, at::Tensor& num_batches_tracked,
                                           const at::Tensor& mean, const at::Tensor& var, int64_t count,
                                           std::optional<double> momentum) {
  static const auto op = typed_op<UpdateTrackedSignature>("genimg_fast::update_tracked_running_stats_");
  check_not_differentiated(running_mean, running_var, mean, var, "genimg_fast.update_tracked_running_stats_");
  op.redispatch(keys & c10::after_ADInplaceOrView_keyset, running_mean, running_var, num_batches_tracked, mean, var,
                count, momentum);
  bump_versions({&running_mean, &running_var, &num_batches_tracked});
}

Tensor3 batch_norm_act_train_autograd(const at::Tensor& x, const OptTensor& weight, const OptTensor& bias,
                                      at::Tensor& running_mean, at::Tensor& running_var, at::Tensor& num_batches_tracked,
                                      double momentum, double eps, c10::string_view activation, double slope) {
  TORCH_CHECK(!at::GradMode::is_enabled() || !(running_mean.requires_grad() || running_var.requires_grad()),
              "genimg_fast.batch_norm_act_train_: the running statistics are buffers and must not require grad");
  const RunningUpdate running{&running_mean, &running_var, &num_batches_tracked, momentum};
  const variable_list out = NormActTrainFunction::apply(x, weight, bias, false, eps, activation, slope, &running);
  bump_versions({&running_mean, &running_var, &num_batches_tracked});
  return {out[0], out[1], out[2]};
}

#define GENIMG_REGISTER_NORM_ACT_AUTOGRAD(key)                                          \
  TORCH_LIBRARY_IMPL(genimg_fast, key, m) {                                             \
    m.impl("norm_act_train", TORCH_FN(norm_act_train_autograd));                        \
    m.impl("batch_norm_act_train_", TORCH_FN(batch_norm_act_train_autograd));           \
    m.impl("norm_act_apply", TORCH_FN(norm_act_apply_autograd));                        \
    m.impl("update_running_stats_", TORCH_FN(update_running_stats_autograd));           \
    m.impl("update_tracked_running_stats_", TORCH_FN(update_tracked_running_stats_autograd)); \
  }
GENIMG_REGISTER_NORM_ACT_AUTOGRAD(AutogradCUDA)
GENIMG_REGISTER_NORM_ACT_AUTOGRAD(AutogradCPU)
#undef GENIMG_REGISTER_NORM_ACT_AUTOGRAD

}  // namespace genimg_fast
