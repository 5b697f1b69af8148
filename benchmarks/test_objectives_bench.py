"""pytest-benchmark: the recipes' training objectives, forward + backward, eager torch (one loss
per term, summed) vs genimg_fast's fused objectives (side by side per group).

`make bench` runs it; `make test` runs each once with --benchmark-disable as a smoke test.
"""
from __future__ import annotations

import pytest
import torch

from genimg_fast.bench import objectives_bench

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
CASES = {case.name: case for case in objectives_bench.cases(torch.device("cuda"), quick=False)}


@pytest.mark.parametrize("variant", ["torch", "genimg_fast"])
@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("device", DEVICES)
def test_objective_forward_backward(benchmark, device, name, variant):
    case = CASES[name]
    objective = (objectives_bench.reference if variant == "torch" else objectives_bench.fused)(name)
    tensors = objectives_bench.make_inputs(case, torch.device(device), seed=0)
    wanted = [tensors[i] for i in case.differentiable]

    def step():
        torch.autograd.grad(objective(tensors), wanted)
        if device == "cuda":
            torch.cuda.synchronize()

    benchmark.group = f"{name} {device}"
    benchmark(step)
    torch.testing.assert_close(objective(tensors), objectives_bench.reference(name)(tensors), rtol=1e-4, atol=1e-4)
