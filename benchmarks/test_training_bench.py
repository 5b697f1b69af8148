"""pytest-benchmark: a whole training iteration of each recipe (networks, losses, optimizers),
the reference layers and losses vs genimg_fast's fused recipe (side by side per group).

`make bench` runs it; `make test` runs each once with --benchmark-disable as a smoke test.
"""
from __future__ import annotations

import pytest
import torch

from genimg_fast.bench import training_bench

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _cases(device: str):
    return {case.name: case for case in training_bench.cases(torch.device(device), quick=True)}


@pytest.mark.parametrize("impl", ["reference", "fused"])
@pytest.mark.parametrize("device,name", [(d, n) for d in DEVICES for n in _cases(d)])
def test_training_iteration(benchmark, device, name, impl):
    case = _cases(device)[name]
    options = {"device": device, "impl": impl, "progress": False, "cuda_graphs": "off"}  # an eager iteration
    recipe = case.build(options, torch.device(device))
    batch = training_bench._batches(case, torch.device(device))[0]

    def step():
        recipe.step(batch)
        if device == "cuda":
            torch.cuda.synchronize()

    benchmark.group = f"{name} training {device}"
    benchmark(step)
