"""CUDA-graph variants for the benchmarks: a step captured once and replayed, so that the timing
is the GPU's work alone, without the host's per-call overhead (Python, dispatch, launches)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from genimg_fast.graph_capture import captured


def graph_variants(steps: dict[str, Callable[[int], Sequence[torch.Tensor]]], *, rtol: float,
                   atol: float) -> dict[str, Callable[[int], None]]:
    """'<name> (cuda graph)' replays of the eager 'torch' and 'genimg_fast' steps. Each step returns
    its gradients; a replay must reproduce its own eager step's gradients before it is timed (the
    family checks the eager steps against the reference: eager torch's own low-precision gradients
    can be too far from exact to be anyone's yardstick)."""
    replays = {}
    for name in ("torch", "genimg_fast"):
        expected = [g.clone() for g in steps[name](0)]
        replay, grads = captured(lambda step=steps[name]: step(0))
        replay(0)
        for got, want in zip(grads, expected):
            torch.testing.assert_close(got, want, rtol=rtol, atol=atol,
                                       msg=lambda m, name=name: f"{name} (cuda graph) disagrees with {name}: {m}")
        replays[f"{name} (cuda graph)"] = replay
    return replays
