"""CUDA-graph variants for the benchmarks: a step captured once and replayed, so that the timing
is the GPU's work alone, without the host's per-call overhead (Python, dispatch, launches)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from genimg_fast.graph_capture import captured

# got, want (every result of a step), what -> raises AssertionError if they differ
Compare = Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor], str], None]


def graph_variants(steps: dict[str, Callable[[int], Sequence[torch.Tensor]]], *, rtol: float = 0.0,
                   atol: float = 0.0, compare: Compare | None = None
                   ) -> tuple[dict[str, Callable[[int], None]], dict[str, str]]:
    """'<name> (cuda graph)' replays of the eager 'torch' and 'genimg_fast' steps, and the replays
    that failed their check (name -> why; not to be timed). Each step returns its results
    (gradients, outputs); a replay must reproduce its own eager step's results (the family checks
    the eager steps against the reference: eager torch's own low-precision gradients can be too
    far from exact to be anyone's yardstick). `compare` replaces the element-wise rtol/atol check.
    Both runs start from the same seed, so that steps with dropout draw the same masks (a replay
    reads the generator's seed and offset). A replay always reads the input set it captured."""
    def close(got: Sequence[torch.Tensor], want: Sequence[torch.Tensor], what: str) -> None:
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=rtol, atol=atol, msg=lambda m: f"{what}: {m}")

    compare = compare or close
    replays, failed = {}, {}
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
        replays[graph_name] = replay
    return replays, failed
