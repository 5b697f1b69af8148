"""Where the host time of a training step goes, when the GPU work is small: the host's cost of
one plain torch op (the yardstick), then per step of eager torch and of genimg_fast, at one
DCGAN batch-norm layer and one GAN objective, the profiler's top entries by self CPU time.

    GENIMG_FAST_IMPL=cuda PYTHONPATH=. python benchmarks/profile_host.py [--device cuda]

GPU run 6 found genimg_fast's DCGAN-sized steps bound by host time (0.2-0.5 ms per step for
30-90 us of kernels); this shows whether that time is Python, dispatch, allocation or the CUDA
launch calls themselves.
"""
from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from genimg_fast.bench.objectives_bench import cases as objective_cases
from genimg_fast.bench.objectives_bench import fused, make_inputs, reference
from profile_norm_act import norm_act_steps, time_steps, warm_up  # the script beside this one


def _host_us(step, device: torch.device, steps: int = 200) -> float:
    """Host time per step when the host runs ahead of the GPU (no sync inside the loop)."""
    warm_up(step, device, 20)
    return time_steps(step, device, steps)[0]


def _top_self_cpu(step, rows: int) -> str:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(20):
            step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=60)


def _norm_steps(device: torch.device):
    return "BN+ReLU 128x256x8x8 fwd+bwd", norm_act_steps((128, 256, 8, 8), device)


def _objective_steps(device: torch.device):
    case = next(c for c in objective_cases(device, quick=False) if c.name == "cyclegan_D")
    tensors = make_inputs(case, device, 0)
    wrt = [tensors[i] for i in case.differentiable]

    def step_of(objective):
        return lambda: torch.autograd.grad(objective(tensors), wrt)
    return "CycleGAN D objective fwd+bwd", {"torch": step_of(reference(case.name)),
                                            "genimg_fast": step_of(fused(case.name))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rows", type=int, default=14)
    args = parser.parse_args()
    device = torch.device(args.device)
    small = torch.zeros(16, device=device)
    print(f"one plain op (x.add_(1) on 16 values): {_host_us(lambda: small.add_(1), device):.1f} us of host time")
    print(f"one empty tensor (torch.empty(16)):     {_host_us(lambda: torch.empty(16, device=device), device):.1f} us")
    for title, steps in (_norm_steps(device), _objective_steps(device)):
        for name, step in steps.items():
            print(f"\n== {title}, {name}: {_host_us(step, device):.1f} us of host time per step")
            print(_top_self_cpu(step, args.rows))


if __name__ == "__main__":
    main()
