"""pytest-benchmark: L1 loss forward + backward, torch.nn.functional.l1_loss vs genimg_fast.

Run with `make bench` (or `pytest benchmarks --benchmark-only`); compare the two variants
of a group side by side. `make test` runs each once with --benchmark-disable as a smoke test.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import genimg_fast

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SHAPES = [(1, 3, 256, 256), (16, 3, 256, 256)]
VARIANTS = {
    "torch": lambda a, b: F.l1_loss(a, b),
    "genimg_fast": lambda a, b: genimg_fast.ops.l1_loss(a, b),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("device", DEVICES)
def test_l1_loss_forward_backward(benchmark, device, shape, dtype, variant):
    fn = VARIANTS[variant]
    sets = [(torch.randn(shape, device=device, dtype=dtype, requires_grad=True),
             torch.randn(shape, device=device, dtype=dtype)) for _ in range(4)]
    counter = iter(range(10**9))

    def step():
        a, b = sets[next(counter) % len(sets)]
        torch.autograd.grad(fn(a, b), a)
        if device == "cuda":
            torch.cuda.synchronize()

    benchmark.group = f"l1_loss fwd+bwd {device} {'x'.join(map(str, shape))} {dtype}"
    benchmark(step)
    a, b = sets[0]
    torch.testing.assert_close(fn(a, b).double(), F.l1_loss(a.double(), b.double()), rtol=2e-2, atol=0)
