"""CUDA-graph variants for the benchmarks: a step captured once and replayed, so that the timing
is the GPU's work alone, without the host's per-call overhead (Python, dispatch, launches)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from genimg_fast.graph_capture import captured

# got, want (every result of a step), what -> raises AssertionError if they differ
Compare = Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor], str], None]


def add_graph_variants(steps: dict[str, Callable[[int], Sequence[torch.Tensor]]], device: torch.device, *,
                       rtol: float = 0.0, atol: float = 0.0, compare: Compare | None = None) -> dict[str, str]:
    """On a GPU, adds to `steps` '<name> (cuda graph)' replays of the eager 'torch' and
    'genimg_fast' steps, and returns the replays that failed their check (name -> why; not
    added, not to be timed); elsewhere adds nothing. Each step returns its results
    (gradients, outputs); a replay must reproduce its own eager step's results (the family checks
    the eager steps against the reference: eager torch's own low-precision gradients can be too
    far from exact to be anyone's yardstick). `compare` replaces the element-wise rtol/atol check.
    Both runs start from the same seed, so that steps with dropout draw the same masks (a replay
    reads the generator's seed and offset). A replay always reads the input set it captured."""
    def close(got: Sequence[torch.Tensor], want: Sequence[torch.Tensor], what: str) -> None:
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=rtol, atol=atol, msg=lambda m: f"{what}: {m}")

    if device.type != "cuda":
        return {}
    compare = compare or close
    failed = {}
    for name in ("torch", "genimg_fast"):
        if name not in steps:  # a variant that failed its own check
            continue
        graph_name = f"{name} (cuda graph)"
        torch.manual_seed(0)
        expected = [t.detach().clone() for t in steps[name](0)]
        replay, results = captured(lambda step=steps[name]: step(0))
        torch.manual_seed(0)
        replay(0)
        try:
            compare(results, expected, f"{graph_name} disagrees with {name}")
        except AssertionError as exc:
            failed[graph_name] = str(exc)
            continue
        steps[graph_name] = replay
    return failed
