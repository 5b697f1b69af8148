"""The CUDA _scale_one_stored_grad kernel against its reference, every element, odd sizes and views."""
from __future__ import annotations

import pytest
import torch

from cuda_helpers import poison_allocator

from genimg_fast.ops import _scale_one_stored_grad

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("numel", [1, 5, 129, 1_000_003])
def test_kernel_matches_reference(cuda_kernels, numel, dtype):
    stored = torch.randn(numel, device="cuda").to(dtype)
    grad_output = torch.tensor(1.7, device="cuda", dtype=dtype)
    poison_allocator(stored.numel() * stored.element_size())
    out = _scale_one_stored_grad(stored, grad_output, 3e-4)
    expected = _scale_one_stored_grad(stored.cpu(), grad_output.cpu(), 3e-4)  # CPU reference
    torch.testing.assert_close(out.cpu(), expected, rtol=torch.finfo(dtype).eps, atol=0)


def test_misaligned_and_gappy_views(cuda_kernels):
    base = torch.randn(10, 33, device="cuda")
    for view in (base.view(-1)[1:300], base[:, 1:32], base.t()):
        out = _scale_one_stored_grad(view, torch.tensor(2.0, device="cuda"), 0.5)
        torch.testing.assert_close(out, view, rtol=0, atol=0)
        assert out.stride() == torch.empty_like(view).stride()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_fp32_grad_output_is_not_rounded_to_the_stored_dtype(cuda_kernels, dtype):
    stored = torch.randn(1000, device="cuda").to(dtype)
    grad_output = torch.tensor(1e5, device="cuda")  # beyond fp16's range on its own
    out = _scale_one_stored_grad(stored, grad_output, 1e-3)
    expected = _scale_one_stored_grad(stored.cpu(), grad_output.cpu(), 1e-3)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.cpu(), expected, rtol=torch.finfo(dtype).eps, atol=0)


def test_opcheck_cuda(cuda_kernels):
    torch.library.opcheck(_scale_one_stored_grad,
                          (torch.randn(3, 4, device="cuda"), torch.tensor(2.0, device="cuda"), 0.25))
