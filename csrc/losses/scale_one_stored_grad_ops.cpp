// CUDA implementation of genimg_fast::_scale_one_stored_grad, the backward of the fused losses
// (schema and reference: genimg_fast/ops/stored_grad.py); the reference serves while the kernel
// path may not run (common/kernel_paths.h).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "common/acc_type.h"
#include "common/device_info.h"
#include "common/kernel_paths.h"
#include "common/reference_fallback.h"
#include "common/tensor_checks.h"
#include "losses/scale_one_stored_grad_launch.h"

namespace genimg_fast {
namespace {

at::Tensor scale_one_stored_grad_cuda(const at::Tensor& stored, const at::Tensor& grad_output, double scale) {
  constexpr const char* kOp = "genimg_fast._scale_one_stored_grad";
  TORCH_CHECK_TYPE(is_supported_float(stored.scalar_type()), kOp,
                   ": stored must be float32, float16, bfloat16 or float64, got ", dtype_str(stored.scalar_type()));
  TORCH_CHECK_VALUE(grad_output.numel() == 1, kOp, ": grad_output must hold exactly one value, got shape ",
                    shape_str(grad_output.sizes()));
  TORCH_CHECK_VALUE(grad_output.device() == stored.device(), kOp, ": grad_output must be on ", stored.device(),
                    ", got ", grad_output.device());
  if (!take_kernel_path(KernelPath::kScaleOneStoredGrad, kReferenceInstead)) {
    return call_reference<decltype(scale_one_stored_grad_cuda)>("genimg_fast::_scale_one_stored_grad", stored,
                                                                grad_output, scale);
  }
  const c10::cuda::CUDAGuard device_guard(stored.device());

  at::Tensor out = at::empty_like(stored);
  if (stored.numel() == 0) return out;
  if (!same_dense_layout(stored, out)) {  // overlapping or gappy views: work on a dense copy
    out.copy_(scale_one_stored_grad_cuda(stored.contiguous(), grad_output, scale));
    return out;
  }
  const int sm_count = multiprocessor_count(stored.get_device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, stored.scalar_type(), "genimg_fast_scale_one_stored_grad", [&] {
        using acc_t = acc_type_t<scalar_t>;
        const auto* src = stored.const_data_ptr<scalar_t>();
        auto* dst = out.mutable_data_ptr<scalar_t>();
        if (grad_output.scalar_type() == stored.scalar_type()) {  // what autograd passes
          launch_scale_one_stored_grad(src, grad_output.const_data_ptr<scalar_t>(), scale, dst, stored.numel(),
                                       sm_count, stream);
        } else {  // read in the accumulation type: never round grad_output down to fp16/bf16
          const at::Tensor go = grad_output.to(c10::CppTypeToScalarType<acc_t>::value);
          launch_scale_one_stored_grad(src, go.const_data_ptr<acc_t>(), scale, dst, stored.numel(), sm_count, stream);
        }
      });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(genimg_fast, CUDA, m) { m.impl("_scale_one_stored_grad", TORCH_FN(scale_one_stored_grad_cuda)); }

}  // namespace genimg_fast
