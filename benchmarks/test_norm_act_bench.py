"""pytest-benchmark: BatchNorm2d + ReLU and InstanceNorm2d + ReLU, training forward + backward,
eager torch modules vs genimg_fast's fused modules (side by side per group).

`make bench` runs it; `make test` runs each once with --benchmark-disable as a smoke test.
"""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from genimg_fast.nn import BatchNormAct2d, InstanceNormAct2d

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
CASES = {  # (norm, shape): DCGAN generator layer at batch 32, CycleGAN layer at batch 1
    "bn_relu_32x256x8x8": ("batch", (32, 256, 8, 8)),
    "in_relu_1x64x64x64": ("instance", (1, 64, 64, 64)),
}


def _modules(norm: str, channels: int):
    torch_norm = nn.BatchNorm2d(channels) if norm == "batch" else nn.InstanceNorm2d(channels, affine=True)
    fused_type = BatchNormAct2d if norm == "batch" else InstanceNormAct2d
    return {"torch": nn.Sequential(torch_norm, nn.ReLU()),
            "genimg_fast": fused_type.from_norm(copy.deepcopy(torch_norm), activation="relu")}


@pytest.mark.parametrize("variant", ["torch", "genimg_fast"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("device", DEVICES)
def test_norm_relu_forward_backward(benchmark, device, case, variant):
    norm, shape = CASES[case]
    modules = _modules(norm, shape[1])
    module = modules[variant].to(device)
    x = torch.randn(shape, device=device, requires_grad=True)
    gy = torch.randn(shape, device=device)
    params = list(module.parameters())

    def step():
        torch.autograd.grad(module(x), [x, *params], gy)
        if device == "cuda":
            torch.cuda.synchronize()

    benchmark.group = f"{case} {device}"
    benchmark(step)
    torch.testing.assert_close(module(x), modules["torch"].to(device)(x), rtol=1e-4, atol=1e-4)
