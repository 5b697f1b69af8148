"""Normalization + activation, forward + backward (input, weight and bias grads), in training
mode and (batch norm) in eval mode: eager torch (norm module + activation module) against
genimg_fast's fused module, and torch.compile of both; on a GPU also both captured in CUDA graphs
(the GPU's work alone, where the eager step is bound by host overhead). Outside --quick, the
forward alone too."""
from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from genimg_fast.bench.checks import check_each, finish, without
from genimg_fast.bench.graphs import add_graph_variants
from genimg_fast.bench.rows import forward_rows, timing_rows
from genimg_fast.bench.timing import time_side_by_side
from genimg_fast.nn import BatchNormAct2d, InstanceNormAct2d


@dataclass(frozen=True)
class NormCase:
    norm: str  # "batch" | "instance"
    activation: str  # "relu" | "leaky_relu"
    shape: tuple[int, int, int, int]
    dtype: torch.dtype
    channels_last: bool
    label: str
    forward_too: bool = False  # also time the forward alone (outside --quick)
    training: bool = True      # False: eval mode, running statistics (the inference op)

    @property
    def numel(self) -> int:
        n, c, h, w = self.shape
        return n * c * h * w


def cases(device: torch.device, quick: bool) -> list[NormCase]:
    return [dataclasses.replace(case, forward_too=not quick) for case in _cases(device, quick)]


def _cases(device: torch.device, quick: bool) -> list[NormCase]:
    f32 = torch.float32
    if device.type != "cuda":  # a CPU is slower: small shapes only
        return [
            NormCase("batch", "relu", (32, 256, 8, 8), f32, False, "dcgan G"),
            NormCase("instance", "relu", (1, 64, 64, 64), f32, False, "cyclegan 64px"),
        ] + ([] if quick else [NormCase("batch", "relu", (32, 256, 8, 8), f32, False, "dcgan G (eval)",
                                        training=False)])
    found = [
        NormCase("batch", "relu", (128, 512, 4, 4), f32, False, "dcgan G b128"),
        NormCase("batch", "relu", (128, 256, 8, 8), f32, False, "dcgan G b128"),
        NormCase("batch", "relu", (128, 128, 16, 16), f32, False, "dcgan G b128"),
        NormCase("batch", "relu", (128, 64, 32, 32), f32, False, "dcgan G b128"),
        NormCase("batch", "leaky_relu", (128, 256, 8, 8), f32, False, "dcgan D b128"),
        NormCase("batch", "relu", (128, 128, 16, 16), f32, False, "dcgan G b128 (eval)", training=False),
        NormCase("instance", "relu", (1, 64, 256, 256), f32, False, "cyclegan b1"),
        NormCase("instance", "relu", (1, 256, 64, 64), f32, False, "cyclegan b1"),
        NormCase("batch", "relu", (32, 64, 128, 128), f32, False, "32M elements (bandwidth)"),
        NormCase("batch", "relu", (32, 64, 128, 128), f32, True, "32M elements (bandwidth)"),
    ]
    if not quick:
        found += [
            NormCase("batch", "leaky_relu", (128, 128, 16, 16), f32, False, "dcgan D b128"),
            NormCase("batch", "leaky_relu", (128, 512, 4, 4), f32, False, "dcgan D b128"),
            NormCase("instance", "relu", (1, 128, 128, 128), f32, False, "cyclegan b1"),
            NormCase("batch", "relu", (128, 128, 16, 16), torch.bfloat16, False, "dcgan G b128"),
            NormCase("batch", "relu", (32, 64, 128, 128), torch.bfloat16, True, "32M elements (bandwidth)"),
        ]
    return found


def _eager(case: NormCase) -> nn.Module:
    c = case.shape[1]
    norm = nn.BatchNorm2d(c) if case.norm == "batch" else nn.InstanceNorm2d(c, affine=True)
    # eval: running statistics a trained network would hold, not the initial 0 and 1
    if not case.training and norm.running_mean is not None:
        norm.running_mean.uniform_(-0.5, 0.5)
        norm.running_var.uniform_(0.5, 2.0)
    act = nn.ReLU() if case.activation == "relu" else nn.LeakyReLU(0.2)
    return nn.Sequential(norm, act).train(case.training)


def _fused(eager: nn.Sequential, case: NormCase) -> nn.Module:
    fused_type = BatchNormAct2d if case.norm == "batch" else InstanceNormAct2d
    fused = fused_type.from_norm(copy.deepcopy(eager[0]), activation=case.activation, negative_slope=0.2)
    return fused.train(case.training)


def modeled_bytes(case: NormCase, forward_only: bool = False) -> int:
    """Fused traffic. Training: forward 3N (statistics read, apply read + write), backward 5N
    (reduce reads x and dy; apply reads x and dy, writes dx). Eval: forward 2N, backward 5N
    (the weight and bias gradients still need the reduction)."""
    forward = 3 if case.training else 2
    return (forward + (0 if forward_only else 5)) * case.numel * torch.empty((), dtype=case.dtype).element_size()


def describe(case: NormCase) -> str:
    act = "ReLU" if case.activation == "relu" else "LeakyReLU"
    mode = "" if case.training else " eval"
    return (f"{'BN' if case.norm == 'batch' else 'IN'}+{act}{mode} fwd+bwd"
            + (" (channels_last)" if case.channels_last else ""))


def _gradient_errors(module: nn.Module, exact: list[torch.Tensor], x: torch.Tensor, gy: torch.Tensor) -> list[float]:
    """Max error of the step's input, weight and bias gradients against exact ones, each relative
    to the larger of its exact values' size and 1."""
    got = torch.autograd.grad(module(x), [x, *module.parameters()], gy)
    return [((g.double() - e).abs().max() / max(e.abs().max().item(), 1.0)).item() for g, e in zip(got, exact)]


def check_variants(variants: dict[str, nn.Module], eager: nn.Module, x: torch.Tensor,
                   gy: torch.Tensor) -> dict[str, str]:
    """Each variant's output against eager torch's, and its gradients against a float64 copy of
    eager torch, within a tolerance for the activations' precision. torch.compile(torch) may be
    off by up to twice what eager torch is (eager torch's own bf16 weight gradients are far from
    exact); genimg_fast's variants get no such allowance."""
    # Detached at once: a kept graph would pin x's gradient accumulator to this stream and break
    # the CUDA-graph capture of a backward through it. (Not no_grad: compiled variants would
    # recompile for the grad mode.)
    expected = eager(x).detach()
    exact_module = copy.deepcopy(eager).double()
    x64 = x.detach().double().requires_grad_()
    exact = torch.autograd.grad(exact_module(x64), [x64, *exact_module.parameters()], gy.double())
    torch_errors = _gradient_errors(eager, exact, x, gy)
    tol = 2e-2 if x.dtype in (torch.float16, torch.bfloat16) else 1e-3

    def check(name: str) -> None:
        torch.testing.assert_close(variants[name](x).detach(), expected, rtol=2e-2, atol=2e-2,
                                   msg=lambda m: f"output disagrees with torch: {m}")
        errors = torch_errors if name == "torch" else _gradient_errors(variants[name], exact, x, gy)
        for what, error, torch_error in zip(("input", "weight", "bias"), errors, torch_errors):
            allowed = math.inf if name == "torch" else tol
            if name == "torch.compile(torch)":
                allowed = max(tol, 2 * torch_error)
            if not (math.isfinite(error) and error <= allowed):
                raise AssertionError(f"{what} gradient off by {error:.3g} (relative to its size) > {allowed:.3g}")
    return check_each(variants, check)


def run_case(case: NormCase, device: torch.device, *, compile_too: bool, warmup: int, repeats: int) -> list[dict]:
    eager = _eager(case).to(device)
    variants = {"torch": eager, "genimg_fast": _fused(eager, case).to(device)}
    if compile_too:
        variants["torch.compile(torch)"] = torch.compile(copy.deepcopy(eager))
        variants["torch.compile(genimg_fast)"] = torch.compile(_fused(eager, case).to(device))
    fmt = torch.channels_last if case.channels_last else torch.contiguous_format
    sets = [(torch.randn(case.shape, device=device, dtype=case.dtype).contiguous(memory_format=fmt).requires_grad_(),
             torch.randn(case.shape, device=device, dtype=case.dtype).contiguous(memory_format=fmt))
            for _ in range(2 if device.type != "cuda" else 4)]
    # Parameters stay fp32 with bf16 activations, as under autocast.
    failed = check_variants(variants, eager, *sets[0])  # never time a wrong answer
    variants = without(variants, failed)

    def make_step(module: nn.Module):
        params = [p for p in module.parameters() if p.requires_grad]

        def step(i: int):
            x, gy = sets[i % len(sets)]
            return torch.autograd.grad(module(x), [x, *params], gy)
        return step

    steps = {n: make_step(m) for n, m in variants.items()}
    # on a GPU, the GPU's work alone: each step captured once, replayed
    failed.update(add_graph_variants(steps, device, rtol=2e-2, atol=2e-2))
    timings = time_side_by_side(steps, device, warmup=warmup, repeats=repeats)
    rows = timing_rows(timings, op=describe(case), case=case.label, shape=case.shape, dtype=case.dtype,
                       modeled_bytes=modeled_bytes(case))
    if case.forward_too:  # the forward alone (training: batch statistics, running-statistics update, output)
        rows += forward_rows({n: (lambda i, m=m: m(sets[i % len(sets)][0])) for n, m in variants.items()}, device,
                             warmup=warmup, repeats=repeats, op=describe(case).replace("fwd+bwd", "fwd"),
                             case=case.label, shape=case.shape, dtype=case.dtype,
                             modeled_bytes=modeled_bytes(case, forward_only=True))
    return finish(rows, failed)
