"""Does a torch.profiler session slow the eager steps that come after it in the same process?

Times a BN+ReLU training step (128x256x8x8, torch's own layers) and one plain op by host time
(no sync inside the loop) and by CUDA events, before any profiler, after a CPU-only session and
after a session with CUDA activity. Run it twice, as the GPU check does:

    python benchmarks/profiler_residue.py                      # CUPTI stays attached (kineto's default)
    TEARDOWN_CUPTI=1 python benchmarks/profiler_residue.py     # detached at the end of each session

On the H200 machine (2026-11-27, torch 2.11) the first run's steps took 25-35% more host time after
a session, and the plain op 20-70% more; with TEARDOWN_CUPTI=1 nothing changed. The benchmark
suite therefore sets TEARDOWN_CUPTI=1 before it counts launches (genimg_fast.bench.timing)."""
from __future__ import annotations

import os
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile


def _host_us(fn, repeats: int = 1000) -> float:
    for _ in range(50):
        fn()
    torch.cuda.synchronize()
    begin = time.perf_counter()
    for _ in range(repeats):
        fn()
    host = time.perf_counter() - begin
    torch.cuda.synchronize()
    return host / repeats * 1e6


def _events_us(fn, repeats: int = 500) -> float:
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
    torch.cuda.synchronize()
    for start, end in zip(starts, ends):
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) for s, e in zip(starts, ends)) * 1e3


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("profiler_residue.py needs a CUDA GPU")
    device = torch.device("cuda")
    norm, relu = torch.nn.BatchNorm2d(256).to(device), torch.nn.ReLU()
    x = torch.randn(128, 256, 8, 8, device=device, requires_grad=True)
    small = torch.zeros(16, device=device)

    def step():
        y = relu(norm(x))
        return torch.autograd.grad(y, [x, norm.weight, norm.bias], torch.ones_like(y))

    def plain():
        small.add_(1)

    def report(when: str) -> None:
        print(f"{when:28s} step host {_host_us(step):7.1f} us, step events {_events_us(step):7.1f} us, "
              f"plain op host {_host_us(plain):5.1f} us", flush=True)

    print(f"TEARDOWN_CUPTI={os.environ.get('TEARDOWN_CUPTI')}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    report("before any profiler")
    report("again")
    for activities, when in (([ProfilerActivity.CPU], "after a CPU-only session"),
                             ([ProfilerActivity.CPU, ProfilerActivity.CUDA], "after a CUDA session")):
        with profile(activities=activities):
            step()
            torch.cuda.synchronize()
        report(when)
    time.sleep(1)
    report("1 s later")


if __name__ == "__main__":
    main()
