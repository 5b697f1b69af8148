#pragma once
// A CUDA kernel's way out when its kernel path may not run (common/kernel_paths.h): the op's
// PyTorch reference. genimg_fast/ops registers each reference for every backend (torch.library's
// CompositeExplicitAutograd), so the kernel in the CPU slot is the reference, and it computes on
// the tensors' own device. Called from inside a CUDA kernel's implementation, already below
// autograd.
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/DispatchKeySet.h>

#include <utility>

#include "common/autograd_calls.h"

namespace genimg_fast {

// `Kernel` is the CUDA implementation's own function type, which is the op's signature. (The op
// is looked up on each call: a slow path, and two ops may share a signature.)
template <typename Kernel, typename... Args>
auto call_reference(const char* op_name, Args&&... args) {
  return typed_op<Kernel>(op_name).redispatch(c10::DispatchKeySet(c10::DispatchKey::CPU), std::forward<Args>(args)...);
}

}  // namespace genimg_fast
