"""torch.compile of the reference recipe's networks, in each mode a user would try before
reaching for genimg_fast: "default", "max-autotune-no-cudagraphs" (autotuned kernels, no
graphs) and "reduce-overhead" (CUDA graphs through torch.compile's graph trees). The networks are
compiled in place after the recipe is built, as the trainers' --compile does, so the optimizers,
losses and the eager parts of the iteration stay the reference's."""
from __future__ import annotations

from collections.abc import Callable

import torch

MODES = ("default", "max-autotune-no-cudagraphs", "reduce-overhead")
PREFIX = "torch.compile(torch)"  # checks.is_torch_variant reads a failure here as torch's own


def variant_name(mode: str) -> str:
    """The row's variant name for `mode`, e.g. 'torch.compile(torch) default'."""
    return f"{PREFIX} {mode}"


def is_compile_variant(name: str) -> bool:
    return name.startswith(PREFIX)


def compile_networks(recipe, mode: str) -> None:
    """Every network of `recipe` compiled in place with `mode` (nothing compiles until the first
    call)."""
    for net in recipe.networks().values():
        net.compile(mode=mode)


def compiled_step(recipe, mode: str) -> Callable:
    """The recipe's step for a compiled mode. In reduce-overhead each call first marks a new
    iteration for the graph trees: the GAN steps call a network several times before its
    backward, and without the mark the trees cannot tell an iteration's end from its middle."""
    if mode != "reduce-overhead":
        return recipe.step

    def step(batch):
        torch.compiler.cudagraph_mark_step_begin()
        return recipe.step(batch)
    return step


def cudagraph_skips() -> int:
    """How many compiled graphs inductor has so far left out of CUDA graphs in this process (it
    logs why under TORCH_LOGS=perf_hints); 0 where this torch does not count them."""
    try:
        from torch._dynamo.utils import counters
        return int(counters["inductor"]["cudagraph_skips"])
    except (ImportError, KeyError, TypeError):
        return 0


def mode_note(mode: str, device: torch.device, skipped: int = 0) -> str | None:
    """What a row must say about `mode` on `device`: reduce-overhead captures CUDA graphs only
    of CUDA tensors, so elsewhere it compiles as "default" does; on a GPU it may still leave a
    graph out (`skipped`: how many its first iterations left out), and the row is then not all
    graphs."""
    if mode != "reduce-overhead":
        return None
    if device.type != "cuda":
        return f"no CUDA graphs on {device.type}: compiles as 'default'"
    if skipped:
        return f"{skipped} compiled graph(s) left out of CUDA graphs (TORCH_LOGS=perf_hints says why)"
    return None
