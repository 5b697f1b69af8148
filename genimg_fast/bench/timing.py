"""Timing of one callable: warm-up, then the median of many repeats.

On CUDA each repeat is bracketed by CUDA events on the current stream; on CPU by
perf_counter. Callers rotate their inputs so repeated runs do not just measure a warm cache.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Timing:
    median_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int


def _quantile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _samples_ms(fn: Callable[[int], object], device: torch.device, first: int, repeats: int) -> list[float]:
    samples: list[float] = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
        for i in range(repeats):
            starts[i].record()
            fn(first + i)
            ends[i].record()
        torch.cuda.synchronize(device)
        samples = [s.elapsed_time(e) for s, e in zip(starts, ends)]
    else:
        for i in range(repeats):
            begin = time.perf_counter()
            fn(first + i)
            samples.append((time.perf_counter() - begin) * 1e3)
    return samples


def _summarize(samples: list[float]) -> Timing:
    ordered = sorted(samples)
    return Timing(statistics.median(ordered), _quantile(ordered, 0.1), _quantile(ordered, 0.9), len(ordered))


def time_callable(fn: Callable[[int], object], device: torch.device, *, warmup: int, repeats: int) -> Timing:
    """Time `fn(i)` for i = 0, 1, ... (i selects the rotated input set)."""
    for i in range(warmup):
        fn(i)
    return _summarize(_samples_ms(fn, device, warmup, repeats))


def time_side_by_side(fns: dict[str, Callable[[int], object]], device: torch.device, *, warmup: int, repeats: int,
                      rounds: int = 5) -> dict[str, Timing]:
    """Time several variants in alternating rounds, so drift in the machine's state (clocks,
    other load) spreads over all of them instead of biasing whichever ran last."""
    for fn in fns.values():
        for i in range(warmup):
            fn(i)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    per_round = max(1, repeats // rounds)
    for r in range(rounds):
        for name, fn in fns.items():
            samples[name] += _samples_ms(fn, device, warmup + r * per_round, per_round)
    return {name: _summarize(values) for name, values in samples.items()}


def peak_mb(step: Callable[[], object], device: torch.device) -> float | None:
    """GPU memory one call of `step` allocates at its peak, above what was allocated before; None
    off the GPU."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    step()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


LAUNCH_EVENTS = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx", "cudaGraphLaunch",
                 "cudaMemsetAsync", "cudaMemcpyAsync")


def count_launches(fn: Callable[[], object], device: torch.device) -> int | None:
    """Kernel launches (and memsets/copies) one call of `fn` issues, counted by torch.profiler;
    None off the GPU, and None when the profiler saw no launch at all (every step on a GPU
    launches something: it recorded no GPU activity). The session leaves CUPTI attached, which
    slows the process's later eager steps: count after timing (launch_counts.py)."""
    if device.type != "cuda":
        return None
    from torch.profiler import ProfilerActivity, profile

    fn()  # warm: first calls may compile or allocate
    torch.cuda.synchronize(device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize(device)
    return sum(1 for event in prof.events() if event.name in LAUNCH_EVENTS) or None


def copy_bandwidth_gbs(device: torch.device, megabytes: int = 512) -> float | None:
    """Measured device-to-device copy bandwidth (bytes read + written per second), CUDA only."""
    if device.type != "cuda":
        return None
    src = torch.rand(megabytes * 2**20 // 4, device=device)
    dst = torch.empty_like(src)
    timing = time_callable(lambda _i: dst.copy_(src), device, warmup=3, repeats=20)
    return 2 * src.numel() * src.element_size() / (timing.median_ms * 1e-3) / 1e9
