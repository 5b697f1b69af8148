"""Shared test setup: CUDA tests are marked `cuda` and skip cleanly where there is no GPU."""
from __future__ import annotations

import pytest
import torch

import genimg_fast
from genimg_fast import _backend
from genimg_fast.bench.checks import exact_fp32


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def cuda_kernels():
    """A CUDA device whose ops run the compiled kernels (not the reference): testing the
    reference against itself on a GPU would pass without testing anything."""
    info = genimg_fast.backend_info()
    if _backend.requested_impl() == "reference":
        pytest.skip("GENIMG_FAST_IMPL=reference: no kernels to test")
    assert info["impl"] == "cuda", f"CUDA GPU present but kernels unusable: {info['reason']}"
    return torch.device("cuda")


@pytest.fixture
def no_tf32():
    """float32 convolutions in full precision: TF32's 10 mantissa bits would drown the rounding
    differences the GPU tests compare."""
    with exact_fp32():
        yield


def fresh_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
