"""genimg_fast::_scale_one_stored_grad (backward of the fused losses) on the reference path."""
from __future__ import annotations

import pytest
import torch

from genimg_fast.ops import _scale_one_stored_grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_scales_in_fp32_and_rounds_once(dtype):
    stored = torch.randn(5, 7, dtype=torch.float64).to(dtype)
    grad_output = torch.tensor(3.0, dtype=dtype)
    out = _scale_one_stored_grad(stored, grad_output, 1e-6)
    expected = (stored.double() * (3.0 * 1e-6)).to(dtype)
    assert out.dtype == dtype
    # fp32 arithmetic, one rounding to dtype: within one unit of dtype's precision.
    rtol = torch.finfo(dtype).eps if dtype != torch.float64 else 1e-15
    torch.testing.assert_close(out, expected, rtol=rtol, atol=0)


def test_small_mean_scale_survives_half_precision():
    # 1/n = 1e-7 would be a coarse fp16 subnormal if stored (off by 19%); applied in fp32
    # together with grad_output it is exact to fp16 precision.
    stored = torch.ones(4, dtype=torch.float16)
    out = _scale_one_stored_grad(stored, torch.tensor(1024.0, dtype=torch.float16), 1e-7)
    torch.testing.assert_close(out.double(), torch.full((4,), 1024.0 * 1e-7, dtype=torch.float64),
                               rtol=1e-3, atol=0)


def test_fp32_grad_output_is_applied_before_rounding_to_fp16():
    out = _scale_one_stored_grad(torch.ones(3, dtype=torch.float16), torch.tensor(1e5), 1e-3)
    torch.testing.assert_close(out, torch.full((3,), 100.0, dtype=torch.float16))


def test_keeps_layout_and_accepts_one_element_grad_output():
    stored = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last)
    out = _scale_one_stored_grad(stored, torch.tensor([2.0]), 0.5)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, stored)


def test_bad_grad_output_is_rejected():
    with pytest.raises(ValueError, match="grad_output must hold exactly one value"):
        _scale_one_stored_grad(torch.randn(3), torch.ones(2), 1.0)
    with pytest.raises(TypeError, match="stored must be float32"):
        _scale_one_stored_grad(torch.ones(3, dtype=torch.int32), torch.ones(()), 1.0)


def test_opcheck():
    torch.library.opcheck(_scale_one_stored_grad, (torch.randn(3, 4), torch.tensor(2.0), 0.25))
