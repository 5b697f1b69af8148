"""L1 loss forward + backward: torch.nn.functional.l1_loss against genimg_fast.ops.l1_loss."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import genimg_fast
from genimg_fast.bench.checks import check_each, finish, without
from genimg_fast.bench.rows import forward_rows, timing_rows
from genimg_fast.bench.timing import time_side_by_side

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class L1Case:
    shape: tuple[int, ...]
    dtype: torch.dtype
    label: str
    forward_too: bool = False  # also time the loss value alone (outside --quick)

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


def cases(device: torch.device, quick: bool) -> list[L1Case]:
    """Image-shaped losses of the reference recipes (pix2pix/CycleGAN at batch 1, DCGAN batches)."""
    return [dataclasses.replace(case, forward_too=not quick) for case in _cases(device, quick)]


def _cases(device: torch.device, quick: bool) -> list[L1Case]:
    found = [
        L1Case((1, 3, 256, 256), torch.float32, "cyclegan/pix2pix batch 1"),
        L1Case((64, 3, 64, 64), torch.float32, "dcgan batch 64"),
        L1Case((16, 3, 256, 256), torch.float32, "256px batch 16"),
    ]
    if device.type == "cuda":
        found += [
            L1Case((16, 3, 256, 256), torch.bfloat16, "256px batch 16"),
            L1Case((64, 3, 512, 512), torch.float32, "512px batch 64 (bandwidth)"),
        ]
        if not quick:
            found += [L1Case((64, 3, 512, 512), torch.float16, "512px batch 64 (bandwidth)")]
    elif not quick:
        found += [L1Case((16, 3, 256, 256), torch.bfloat16, "256px batch 16")]
    return found


def variants(compile_too: bool) -> dict[str, LossFn]:
    found: dict[str, LossFn] = {
        "torch": lambda a, b: F.l1_loss(a, b),
        "genimg_fast": lambda a, b: genimg_fast.ops.l1_loss(a, b),
    }
    if compile_too:
        found["torch.compile(torch)"] = torch.compile(lambda a, b: F.l1_loss(a, b))
        found["torch.compile(genimg_fast)"] = torch.compile(lambda a, b: genimg_fast.ops.l1_loss(a, b))
    return found


def modeled_bytes(case: L1Case) -> int:
    """Fused traffic: forward reads input and target and writes the gradient (3N); backward
    reads the stored gradient and writes grad_input (2N)."""
    return 5 * case.numel * torch.empty((), dtype=case.dtype).element_size()


def _rotation(case: L1Case, device: torch.device) -> int:
    """Enough input sets that one round exceeds the GPU's L2 several times over (at most 8)."""
    if device.type != "cuda":
        return 2
    set_bytes = modeled_bytes(case)
    return max(2, min(8, -(-256 * 2**20 // set_bytes)))


def run_case(case: L1Case, device: torch.device, *, compile_too: bool, warmup: int, repeats: int) -> list[dict]:
    fns = variants(compile_too)
    sets = [
        (torch.randn(case.shape, device=device, dtype=case.dtype).requires_grad_(),
         torch.randn(case.shape, device=device, dtype=case.dtype))
        for _ in range(_rotation(case, device))
    ]

    # Never time a wrong answer: every variant's value and gradient against float64 on the first set.
    a, b = sets[0]
    a64 = a.detach().double().requires_grad_()
    expected = F.l1_loss(a64, b.double())
    expected_grad = torch.autograd.grad(expected, a64)[0]
    rtol = 2e-2 if case.dtype != torch.float32 else 1e-4

    def check(name: str) -> None:
        value = fns[name](a, b)
        torch.testing.assert_close(value.detach().double(), expected.detach(), rtol=rtol, atol=0,
                                   msg=lambda m: f"value disagrees with float64: {m}")
        grad = torch.autograd.grad(value, a)[0]
        torch.testing.assert_close(grad.double(), expected_grad, rtol=rtol, atol=0,
                                   msg=lambda m: f"gradient disagrees with float64: {m}")
    failed = check_each(fns, check)
    fns = without(fns, failed)

    def make_step(fn: LossFn):
        def step(i: int) -> None:
            x, y = sets[i % len(sets)]
            torch.autograd.grad(fn(x, y), x)
        return step

    timings = time_side_by_side({name: make_step(fn) for name, fn in fns.items()}, device, warmup=warmup,
                                repeats=repeats)
    rows = timing_rows(timings, op="l1_loss fwd+bwd", case=case.label, shape=case.shape, dtype=case.dtype,
                       modeled_bytes=modeled_bytes(case))
    if case.forward_too:  # the value alone: input and target read once, no gradient stored
        element_bytes = torch.empty((), dtype=case.dtype).element_size()
        rows += forward_rows({name: (lambda i, fn=fn: fn(*sets[i % len(sets)])) for name, fn in fns.items()},
                             device, warmup=warmup, repeats=repeats, op="l1_loss fwd", case=case.label,
                             shape=case.shape, dtype=case.dtype, modeled_bytes=2 * case.numel * element_bytes)
    return finish(rows, failed)
