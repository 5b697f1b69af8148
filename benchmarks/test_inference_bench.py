"""pytest-benchmark: CPU inference as `genimg-fast sample` / `translate` run it, the plain
reference network against optimize_for_inference's copy (side by side per group).

`make bench` runs it; `make test` runs each once with --benchmark-disable as a smoke test.
"""
from __future__ import annotations

import pytest
import torch

from genimg_fast import optimize_for_inference
from genimg_fast.bench import inference_bench

CASES = {case.name: case for case in inference_bench.cases(torch.device("cpu"), quick=False)}


@pytest.mark.parametrize("optimized", [False, True], ids=["torch", "optimize_for_inference"])
@pytest.mark.parametrize("name", list(CASES))
def test_cpu_inference(benchmark, name, optimized):
    case = CASES[name]
    torch.manual_seed(0)
    model = case.build().train(case.train_mode)
    if optimized:
        model = optimize_for_inference(model, train_mode=case.train_mode)
    x = torch.randn(case.input_shape)

    def forward():
        with torch.no_grad():
            model(x)

    benchmark.group = f"{name} cpu"
    benchmark(forward)
