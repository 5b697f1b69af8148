"""Times one eager BN+ReLU step several ways, to see whether the suite's timing adds host time.

The suite times each eager step between two CUDA events (the median of many steps). For steps
bound by host time, a constant that timing adds to both variants would pull their ratio towards
1. This times torch's and genimg_fast's step at one shape in one process, several ways:

- host loop: perf_counter around 200 steps, no sync inside (what a training loop pays);
- events per step: the suite's method (bench.timing.time_side_by_side), also in alternating rounds
  with the steps' CUDA-graph replays, as the suite times them;
- events per block: one event pair around 20 steps, divided by 20;
- the same three after both steps were captured into CUDA graphs, as the suite does first;
- events per step with Python's garbage collector off.

    GENIMG_FAST_IMPL=cuda PYTHONPATH=. python benchmarks/profiling/eager_timing_methods.py [--shape 128,256,8,8]
"""
from __future__ import annotations

import argparse
import gc

import torch

from genimg_fast.bench.graphs import add_graph_variants
from genimg_fast.bench.timing import time_callable, time_side_by_side
from profile_norm_act import host_us, norm_act_steps  # the script beside this one


def blocked_events_us(step, device: torch.device, block: int = 20, samples: int = 25) -> float:
    """The median over samples of one event pair around `block` steps (bench.timing's
    time_callable with a block for a call), per step."""
    def run_block(_i: int) -> None:
        for _ in range(block):
            step()
    return time_callable(run_block, device, warmup=1, repeats=samples).median_ms * 1e3 / block


def report(title: str, steps: dict, device: torch.device) -> None:
    eager = {name: steps[name] for name in ("torch", "genimg_fast")}
    host = {name: host_us(lambda fn=fn: fn(0), device) for name, fn in eager.items()}
    events = {name: t.median_ms * 1e3 for name, t in
              time_side_by_side(eager, device, warmup=10, repeats=500).items()}
    blocked = {name: blocked_events_us(lambda fn=fn: fn(0), device) for name, fn in eager.items()}
    methods = [("host loop", host), ("events per step", events), ("events per block of 20", blocked)]
    if len(steps) > len(eager):  # as the suite times them: in alternating rounds with the graph replays
        with_graphs = time_side_by_side(steps, device, warmup=10, repeats=500)
        methods.append(("events per step, with replays", {name: with_graphs[name].median_ms * 1e3 for name in eager}))
    print(f"\n== {title}")
    for method, times in methods:
        print(f"  {method:30s} torch {times['torch']:7.1f} us  genimg_fast {times['genimg_fast']:7.1f} us  "
              f"ratio {times['torch'] / times['genimg_fast']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="128,256,8,8")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("eager_timing_methods.py needs a CUDA GPU")
    device = torch.device("cuda")
    shape = tuple(int(n) for n in args.shape.split(","))
    steps = {name: (lambda _i, fn=fn: fn()) for name, fn in norm_act_steps(shape, device).items()}
    print(f"BN+ReLU {'x'.join(map(str, shape))} fwd+bwd on {torch.cuda.get_device_name()}, torch {torch.__version__}")
    report("before any CUDA graph", steps, device)
    failed = add_graph_variants(steps, device, rtol=2e-2, atol=2e-2)
    report("after capturing both steps into CUDA graphs" + (f" (failed: {failed})" if failed else ""), steps, device)
    gc.disable()
    try:
        report("the same, garbage collector off", steps, device)
    finally:
        gc.enable()


if __name__ == "__main__":
    main()
