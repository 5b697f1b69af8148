"""A step captured once into a CUDA graph, after warm-up on a side stream (as capture requires),
for the benchmarks' graph variants and `genimg-fast sample --cuda-graph`. (A whole training
iteration needs more: train/cuda_graph_step.py.)"""
from __future__ import annotations

from collections.abc import Callable

import torch


def captured(step: Callable[[], object], warmup: int = 3) -> tuple[Callable[[int], None], object]:
    """Returns a callable that replays step() and what the captured step returned (static tensors
    that every replay rewrites). The step must read and write only static tensors."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = step()
    return (lambda _i: graph.replay()), outputs
