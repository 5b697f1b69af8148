"""A step captured once into a CUDA graph, after warm-up on a side stream (as capture requires),
for the benchmarks' graph variants, `genimg-fast sample --cuda-graph` and the trainers'
--cuda-graphs (train/cuda_graph_step.py, which undoes its warm-up iterations before the capture)."""
from __future__ import annotations

from collections.abc import Callable

import torch


def captured(step: Callable[[], object], warmup: int = 3, *, after_warmup: Callable[[], None] | None = None,
             capture_error_mode: str = "global") -> tuple[Callable[[int], None], object]:
    """Returns a callable that replays step() and what the captured step returned (static tensors
    that every replay rewrites). The step must read and write only static tensors. after_warmup
    runs between the warm-up and the capture (e.g. to put back state the warm-up changed);
    capture_error_mode is torch.cuda.graph's."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            step()
    torch.cuda.current_stream().wait_stream(stream)
    if after_warmup is not None:
        after_warmup()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, capture_error_mode=capture_error_mode):
        outputs = step()
    return (lambda _i: graph.replay()), outputs
