"""Does a torch.profiler session slow the eager steps that come after it in the same process?

Times a BN+ReLU training step (128x256x8x8, torch's own layers) and one plain op by host time
(no sync inside the loop) and by CUDA events, before any profiler, after a CPU-only session and
after a session with CUDA activity:

    PYTHONPATH=. python benchmarks/profiler_residue.py                   # CUPTI stays attached (kineto's default)
    TEARDOWN_CUPTI=1 PYTHONPATH=. python benchmarks/profiler_residue.py  # detached at the end of each session

On the H200 machine (2026-11-27, torch 2.11) the first run's steps took 25-35% more host time after
a session, and the plain op 20-70% more; with TEARDOWN_CUPTI=1 nothing changed. But with
TEARDOWN_CUPTI=1, repeated launch counts in one process came out wrong and a child process that
counted launches hung (gpu-check-20261127-h100-run9, -h200-run10). So the benchmark suite keeps
kineto's default and counts launches once every case is timed (genimg_fast/bench/launch_counts.py)."""
from __future__ import annotations

import os
import time

import torch
from torch.profiler import ProfilerActivity, profile

from genimg_fast.bench.timing import time_callable
from profile_norm_act import host_us, norm_act_steps  # the script beside this one


def _events_us(fn, device: torch.device) -> float:
    """The median of CUDA events around each call, as the benchmark suite times a step."""
    return time_callable(lambda _i: fn(), device, warmup=0, repeats=500).median_ms * 1e3


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("profiler_residue.py needs a CUDA GPU")
    device = torch.device("cuda")
    step = norm_act_steps((128, 256, 8, 8), device)["torch"]
    small = torch.zeros(16, device=device)

    def plain():
        small.add_(1)

    def report(when: str) -> None:
        step_host, plain_host = (host_us(fn, device, steps=1000, warmup=50) for fn in (step, plain))
        print(f"{when:28s} step host {step_host:7.1f} us, step events {_events_us(step, device):7.1f} us, "
              f"plain op host {plain_host:5.1f} us", flush=True)

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
