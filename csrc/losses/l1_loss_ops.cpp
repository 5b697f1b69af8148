// CUDA implementation of genimg_fast::l1_loss (schema and reference: genimg_fast/ops/l1_loss.py);
// the reference serves while the kernel path may not run (common/kernel_paths.h).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <limits>
#include <c10/util/string_view.h>
#include <tuple>

#include "common/device_info.h"
#include "common/kernel_paths.h"
#include "common/reference_fallback.h"
#include "common/strided_offsets_host.h"
#include "common/tensor_checks.h"
#include "losses/l1_loss_launch.h"

namespace genimg_fast {
namespace {

int64_t count_non_unit_dims(const at::Tensor& t) {
  int64_t count = 0;
  for (int64_t size : t.sizes()) count += size != 1;
  return count;
}

std::tuple<at::Tensor, at::Tensor> l1_loss_cuda(const at::Tensor& input, const at::Tensor& target, double weight,
                                                c10::string_view reduction, bool compute_grad) {
  constexpr const char* kOp = "genimg_fast.l1_loss";
  check_loss_pair(input, target, kOp);
  const bool mean = is_mean_reduction(reduction, kOp);
  if (!take_kernel_path(KernelPath::kL1Loss, kReferenceInstead)) {
    return call_reference<decltype(l1_loss_cuda)>("genimg_fast::l1_loss", input, target, weight, reduction,
                                                  compute_grad);
  }
  const c10::cuda::CUDAGuard device_guard(input.device());

  at::Tensor loss = at::empty({}, input.options());
  // empty_like keeps a dense input's layout (channels_last stays channels_last); the
  // reference and fake implementations allocate the gradient the same way.
  at::Tensor grad = compute_grad ? at::empty_like(input) : at::empty({0}, input.options());
  const int64_t numel = input.numel();
  if (numel == 0) {  // like torch: the mean of nothing is NaN, the sum is 0
    loss.fill_(mean ? std::numeric_limits<double>::quiet_NaN() : 0.0);
    return {loss, grad};
  }

  const bool flat = same_dense_layout(input, target) && (!compute_grad || same_dense_layout(input, grad));
  if (!flat && count_non_unit_dims(input) > kMaxStridedDims) {
    // Beyond what the strided indexer holds: compute on dense copies (correct, just slower).
    auto [dense_loss, dense_grad] = l1_loss_cuda(input.contiguous(), target.contiguous(), weight, reduction,
                                                 compute_grad);
    if (compute_grad) grad.copy_(dense_grad);
    return {dense_loss, grad};
  }

  const at::Tensor& lead = compute_grad ? grad : input;
  const ReductionGrid grid = plan_l1_loss_forward(numel, multiprocessor_count(input.get_device()),
                                                  input.scalar_type() == at::kDouble);
  at::Tensor workspace = at::empty({static_cast<int64_t>(grid.workspace_bytes)}, input.options().dtype(at::kByte));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "genimg_fast_l1_loss", [&] {
    L1LossForwardArgs<scalar_t> args{};
    args.input = input.const_data_ptr<scalar_t>();
    args.target = target.const_data_ptr<scalar_t>();
    args.grad = compute_grad ? grad.mutable_data_ptr<scalar_t>() : nullptr;
    args.loss = loss.mutable_data_ptr<scalar_t>();
    args.numel = numel;
    args.flat = flat;
    if (!flat) args.strided = make_strided_offsets<3>({&lead, &input, &target});
    args.weight = weight;
    args.loss_scale = mean ? weight / static_cast<double>(numel) : weight;
    args.workspace = workspace.mutable_data_ptr();
    args.grid = grid;
    launch_l1_loss_forward(args, stream);
  });
  return {loss, grad};
}

}  // namespace

TORCH_LIBRARY_IMPL(genimg_fast, CUDA, m) { m.impl("l1_loss", TORCH_FN(l1_loss_cuda)); }

}  // namespace genimg_fast
