#pragma once
// How the C++ autograd functions (csrc/*/*_autograd.cpp) call the ops they wrap.
#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/GradMode.h>

#include <utility>

namespace genimg_fast {

// The typed handle of an op (look it up once: keep it in a function-local static).
template <typename Signature>
c10::TypedOperatorHandle<Signature> typed_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

// A forward op's kernel, below autograd: the autograd function records the graph itself.
template <typename Signature, typename... Args>
auto call_below_autograd(const c10::TypedOperatorHandle<Signature>& op, Args&&... args) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  return op.call(std::forward<Args>(args)...);
}

// Work done in a backward: straight to the kernels, unless grad mode asks for a graph of the
// backward (create_graph=True); then through autograd, which refuses double backward with a
// clear error instead of returning a zero.
template <typename Fn>
auto call_in_backward(Fn&& fn) {
  if (at::GradMode::is_enabled()) return fn();
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  return fn();
}

template <typename Signature, typename... Args>
auto call_backward_op(const c10::TypedOperatorHandle<Signature>& op, Args&&... args) {
  return call_in_backward([&] { return op.call(std::forward<Args>(args)...); });
}

}  // namespace genimg_fast
