"""pytest-benchmark: the recipes' networks, a training step (forward + backward), plain reference
layers vs genimg_fast's fused models (side by side per group).

`make bench` runs it; `make test` runs each once with --benchmark-disable as a smoke test.
"""
from __future__ import annotations

import pytest
import torch

from genimg_fast.bench import models_bench

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _cases(device: str):
    return {case.name: case for case in models_bench.cases(torch.device(device), quick=False)}


@pytest.mark.parametrize("fused", [False, True], ids=["torch", "genimg_fast"])
@pytest.mark.parametrize("device,name", [(d, n) for d in DEVICES for n in _cases(d)])
def test_model_training_step(benchmark, device, name, fused):
    case = _cases(device)[name]
    torch.manual_seed(0)
    model = case.build(fused).to(device)
    x = torch.randn(case.input_shape, device=device)
    params = list(model.parameters())

    def step():
        out = model(x)
        out = out[0] if isinstance(out, tuple) else out
        torch.autograd.grad(out.square().mean(), params)
        if device == "cuda":
            torch.cuda.synchronize()

    benchmark.group = f"{name} {device}"
    benchmark(step)
