"""Where a small training step's host time goes: each layer alone, then the profiler's top entries.

The host's cost of one plain torch op (the yardstick); the host time of each layer of a step
measured alone, without the profiler (the op's C++ kernel, the same with autograd recording, the
Python module or objective, the backward op, the whole step with torch.autograd.grad); then per
step of eager torch and of genimg_fast, at one DCGAN batch-norm layer and one GAN objective, the
profiler's top entries by self CPU time (the profiler inflates each op's own time: read them as
proportions).

    GENIMG_FAST_IMPL=cuda PYTHONPATH=. python benchmarks/profiling/profile_host.py [--device cuda]

For steps whose host time exceeds their GPU work: it shows whether that time is Python,
dispatch, allocation or the CUDA launch calls themselves.
"""
from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

import torch.nn.functional as F

from genimg_fast.bench.objectives_bench import cases as objective_cases
from genimg_fast.bench.objectives_bench import fused, make_inputs, reference
from genimg_fast.ops import objectives
from profile_norm_act import host_us, norm_act_steps  # the script beside this one


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


def no_grad(fn):
    def call():
        with torch.no_grad():
            return fn()
    return call


def below_autograd(fn):
    """As a backward calls its op: below the autograd kernels. (Called from Python, a backward op
    would first pass through custom_op's Python autograd kernel, which a real backward skips.)"""
    def call():
        with torch._C._AutoDispatchBelowAutograd():
            return fn()
    return call


def _norm_layers(steps: dict[str, object], device: torch.device) -> dict[str, object]:
    """Each layer of a BN+ReLU training step at 128x256x8x8 (`steps`: the whole ones), alone."""
    ops = torch.ops.genimg_fast
    shape = (128, 256, 8, 8)
    eager = torch.nn.Sequential(torch.nn.BatchNorm2d(256), torch.nn.ReLU()).to(device)
    from genimg_fast.nn import BatchNormAct2d
    module = BatchNormAct2d(256).to(device)
    x = torch.randn(shape, device=device)
    x_grad = x.clone().requires_grad_()
    gy = torch.randn(shape, device=device)
    w, b = module.weight.detach(), module.bias.detach()
    buffers = (module.running_mean, module.running_var, module.num_batches_tracked)
    _, mean, var = ops.norm_act_train.default(x, w, b, False, 1e-5, "relu", 0.0)
    # the backward alone: autograd.grad of a graph built once (its engine, node and kernels)
    built = {"torch": (eager(x_grad), [x_grad, *eager.parameters()]),
             "genimg_fast": (module(x_grad), [x_grad, *module.parameters()])}

    def backward_of(name):
        y, wrt = built[name]
        return lambda: torch.autograd.grad(y, wrt, gy, retain_graph=True)
    return {
        "torch: F.batch_norm (training) + relu, no grad": no_grad(
            lambda: F.relu(F.batch_norm(x, *buffers[:2], w, b, True, 0.1, 1e-5))),
        "torch: nn.Sequential(BN, ReLU) forward": lambda: eager(x_grad),
        "torch: autograd.grad of the built graph": backward_of("torch"),
        "torch: whole step (forward + autograd.grad)": steps["torch"],
        "genimg_fast: batch_norm_act_train_ kernel, no grad": no_grad(
            lambda: ops.batch_norm_act_train_.default(x, w, b, *buffers, 0.1, 1e-5, "relu", 0.0)),
        "genimg_fast: the same op recording autograd": lambda: ops.batch_norm_act_train_.default(
            x_grad, module.weight, module.bias, *buffers, 0.1, 1e-5, "relu", 0.0),
        "genimg_fast: BatchNormAct2d forward": lambda: module(x_grad),
        "genimg_fast: _norm_act_train_backward kernel, as a backward calls it": below_autograd(
            lambda: ops._norm_act_train_backward.default(gy, x, mean, var, w, b, 1e-5, "relu", 0.0)),
        "genimg_fast: autograd.grad of the built graph": backward_of("genimg_fast"),
        "genimg_fast: whole step (forward + autograd.grad)": steps["genimg_fast"],
    }


def _objective_layers(steps: dict[str, object], device: torch.device) -> dict[str, object]:
    """Each layer of a CycleGAN discriminator objective step (two 1x1x30x30 maps; `steps`: the
    whole ones), alone."""
    ops = torch.ops.genimg_fast
    real, fake = (torch.randn(1, 1, 30, 30, device=device) for _ in range(2))
    real_g, fake_g = real.clone().requires_grad_(), fake.clone().requires_grad_()
    spec, weights = "mse:mean,mse:mean", [0.5, 0.5]
    _, _, stored = ops.loss_terms.default([real, fake], [None, None], [1.0, 0.0], spec, weights, True)
    grad_total = torch.ones((), device=device)
    total = objectives.discriminator_loss(real_g, fake_g, "lsgan")[0]
    return {
        "genimg_fast: loss_terms kernel, inputs without grad": lambda: ops.loss_terms.default(
            [real, fake], [None, None], [1.0, 0.0], spec, weights, True),
        "genimg_fast: the same op recording autograd": lambda: ops.loss_terms.default(
            [real_g, fake_g], [None, None], [1.0, 0.0], spec, weights, True),
        "genimg_fast: discriminator_loss (Python API)": lambda: objectives.discriminator_loss(real_g, fake_g, "lsgan"),
        "genimg_fast: _scale_term_stored_grads kernel, as a backward calls it": below_autograd(
            lambda: ops._scale_term_stored_grads.default(stored, grad_total, None, spec)),
        "genimg_fast: autograd.grad of the built graph": lambda: torch.autograd.grad(total, [real_g, fake_g],
                                                                                   retain_graph=True),
        "genimg_fast: whole step (forward + autograd.grad)": steps["genimg_fast"],
        "torch: whole step (forward + autograd.grad)": steps["torch"],
    }


def _print_layers(title: str, layers: dict[str, object], device: torch.device) -> None:
    print(f"\n== {title}: host us per call, each layer alone (no profiler)")
    for name, call in layers.items():
        print(f"  {host_us(call, device):8.1f}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rows", type=int, default=14)
    args = parser.parse_args()
    device = torch.device(args.device)
    small = torch.zeros(16, device=device)
    print(f"one plain op (x.add_(1) on 16 values): {host_us(lambda: small.add_(1), device):.1f} us of host time")
    print(f"one empty tensor (torch.empty(16)):     {host_us(lambda: torch.empty(16, device=device), device):.1f} us")
    leaf = torch.zeros(16, device=device, requires_grad=True)
    print(f"autograd.grad of one node (x * 2):      {host_us(lambda: torch.autograd.grad(leaf * 2, leaf, small), device):.1f} us")
    (norm_title, norm_steps), (objective_title, objective_steps) = _norm_steps(device), _objective_steps(device)
    _print_layers(norm_title, _norm_layers(norm_steps, device), device)
    _print_layers(objective_title, _objective_layers(objective_steps, device), device)
    # The profiler tables come last: a session leaves CUPTI attached and slows every later eager step.
    for title, steps in ((norm_title, norm_steps), (objective_title, objective_steps)):
        for name, step in steps.items():  # their host times are in the tables above
            print(f"\n== {title}, {name}: the profiler's top entries")
            print(_top_self_cpu(step, args.rows))


if __name__ == "__main__":
    main()
