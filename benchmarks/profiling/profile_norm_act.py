"""Host time, launches and GPU kernel time per BN+ReLU training step, torch against genimg_fast.

Also the helpers the other tools here import (the steps, host time per step).

    PYTHONPATH=. python benchmarks/profiling/profile_norm_act.py [--device cuda] [--steps 20]

When host time per step exceeds GPU kernel time, the step is launch/overhead-bound and fewer
launches or less Python per call is what will make it faster, not faster kernels.
"""
from __future__ import annotations

import argparse
import collections
import copy
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from genimg_fast.bench.timing import LAUNCH_EVENTS
from genimg_fast.nn import BatchNormAct2d

SHAPES = [(128, 512, 4, 4), (128, 256, 8, 8), (128, 64, 32, 32), (32, 64, 128, 128)]  # path: block, cluster, tiles, tiles


def norm_act_steps(shape: tuple[int, int, int, int], device: torch.device) -> dict[str, Callable[[], object]]:
    """One BN+ReLU training step (forward + backward) each of eager torch and genimg_fast."""
    eager = nn.Sequential(nn.BatchNorm2d(shape[1]), nn.ReLU()).to(device)
    fused = BatchNormAct2d.from_norm(copy.deepcopy(eager[0]), activation="relu").to(device)
    x = torch.randn(shape, device=device, requires_grad=True)
    gy = torch.randn(shape, device=device)

    def step_of(module: nn.Module):
        params = list(module.parameters())
        return lambda: torch.autograd.grad(module(x), [x, *params], gy)
    return {"torch": step_of(eager), "genimg_fast": step_of(fused)}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def warm_up(step, device: torch.device, times: int) -> None:
    """First calls may allocate, look up kernels or compile: run them before any timing."""
    for _ in range(times):
        step()
    _synchronize(device)


def host_us(step, device: torch.device, steps: int = 200, warmup: int = 20) -> float:
    """Host time per step when the host runs ahead of the GPU (no sync inside the loop), after a
    warm-up."""
    return host_and_wall_us(step, device, steps, warmup)[0]


def host_and_wall_us(step, device: torch.device, steps: int = 200, warmup: int = 20) -> tuple[float, float]:
    """time_steps after a warm-up."""
    warm_up(step, device, warmup)
    return time_steps(step, device, steps)


def time_steps(step, device: torch.device, steps: int) -> tuple[float, float]:
    """Microseconds per step of host time (the host runs ahead: no sync inside the loop) and of
    wall time (until the GPU has finished them)."""
    begin = time.perf_counter()
    for _ in range(steps):
        step()
    host = time.perf_counter() - begin
    _synchronize(device)
    wall = time.perf_counter() - begin
    return host / steps * 1e6, wall / steps * 1e6


def _profile(step, device: torch.device, steps: int) -> dict[str, float]:
    """Launches, GPU kernel time and the kernels of one step, under the profiler."""
    warm_up(step, device, 5)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        time_steps(step, device, steps)
    events = prof.events()
    launches = sum(1 for e in events if e.name in LAUNCH_EVENTS)
    gpu_events = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    kernel_us = sum(e.device_time_total for e in gpu_events)
    per_kernel = collections.Counter(e.name[:90] for e in gpu_events)
    return {"launches": launches / steps, "kernel_us": kernel_us / steps,
            "kernels": {name: n / steps for name, n in per_kernel.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    cases = {(shape, name): step for shape in (SHAPES if device.type == "cuda" else [(8, 16, 8, 8)])
             for name, step in norm_act_steps(shape, device).items()}
    # Every step is timed before the first profiler session: a session leaves CUPTI attached,
    # which slows every later eager step of the process (genimg_fast/bench/launch_counts.py).
    times = {key: host_and_wall_us(step, device) for key, step in cases.items()}
    profiles = {key: _profile(step, device, args.steps) for key, step in cases.items()}
    print(f"{'shape':<18} {'variant':<12} {'host us/step':>12} {'wall us/step':>12} {'launches/step':>14} "
          f"{'kernel us/step':>15}")
    kernel_lists: dict[str, dict[str, float]] = {}
    for (shape, name), (host, wall) in times.items():
        r = profiles[(shape, name)]
        print(f"{'x'.join(map(str, shape)):<18} {name:<12} {host:>12.1f} {wall:>12.1f} "
              f"{r['launches']:>14.1f} {r['kernel_us']:>15.1f}")
        kernel_lists.setdefault(name, r["kernels"])
    for name, kernels in kernel_lists.items():  # which kernels one step runs (first shape)
        print(f"\n{name}: GPU kernels per step")
        for kernel, count in sorted(kernels.items(), key=lambda item: -item[1]):
            print(f"  {count:4.1f}  {kernel}")


if __name__ == "__main__":
    main()
