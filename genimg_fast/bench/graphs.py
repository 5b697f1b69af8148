"""CUDA-graph variants for the benchmarks: a step captured once and replayed, so that the timing
is the GPU's work alone, without the host's per-call overhead (Python, dispatch, launches)."""
from __future__ import annotations

from collections.abc import Callable

import torch


def captured(step: Callable[[], object], warmup: int = 3) -> tuple[Callable[[int], None], object]:
    """step() captured into a CUDA graph (after warm-up on a side stream, as capture requires);
    returns a callable that replays it and what the captured step returned (static tensors that
    every replay rewrites). The step must read and write only static tensors."""
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
