"""The recipes' networks, forward and forward + backward: the plain reference layers (eager)
against genimg_fast's fused models, at each network's reference batch size and resolution on a
GPU (reduced widths and sizes on a CPU, which is slower). Variants: torch.compile of
both with --compile; on a GPU both captured as CUDA graphs (the GPU's work alone); outside
--quick both under bf16 autocast and in channels_last. Every variant's output (and, with the
backward, its parameter gradients) is checked against eager torch's before it is timed; peak GPU
memory per step."""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from genimg_fast.bench.checks import check_each, exact_fp32, finish
from genimg_fast.bench.graphs import add_graph_variants
from genimg_fast.bench.rows import add_peak_mb, timing_rows
from genimg_fast.bench.timing import time_side_by_side
from genimg_fast.models import DCGANDiscriminator, DCGANGenerator, ConvVAE, define_D, define_G


@dataclass(frozen=True)
class ModelCase:
    name: str
    build: Callable[[bool], nn.Module]  # fused -> model
    input_shape: tuple[int, ...]
    label: str
    quick: bool = False  # fewer variants (no bf16, no channels_last)


@dataclass(frozen=True)
class Variant:
    model: nn.Module
    inputs: tuple[torch.Tensor, ...]    # rotated from step to step
    autocast: torch.dtype | None = None
    tolerance: float | None = 2e-2      # relative (norm) error allowed against eager torch; None: eager
                                        # torch in low precision, the yardstick (only finite results)
    yardstick: str | None = None        # widen the tolerance to twice this variant's own error


def cases(device: torch.device, quick: bool) -> list[ModelCase]:
    return [dataclasses.replace(case, quick=quick) for case in _cases(device, quick)]


def _cases(device: torch.device, quick: bool) -> list[ModelCase]:
    if device.type != "cuda":  # small stand-ins: a CPU is slower
        return [
            ModelCase("dcgan_G", lambda f: DCGANGenerator(ngf=16, fused=f), (16, 100, 1, 1),
                      "dcgan generator small"),
            ModelCase("resnet_G", lambda f: define_G(3, 3, 16, "resnet_6blocks", "instance", fused=f),
                      (1, 3, 64, 64), "cyclegan generator small"),
        ][: 1 if quick else 2]
    found = [
        ModelCase("dcgan_G", lambda f: DCGANGenerator(fused=f), (128, 100, 1, 1), "dcgan generator b128"),
        ModelCase("dcgan_D", lambda f: DCGANDiscriminator(fused=f), (128, 3, 64, 64), "dcgan discriminator b128"),
        ModelCase("resnet_9blocks", lambda f: define_G(3, 3, 64, "resnet_9blocks", "instance", fused=f),
                  (1, 3, 256, 256), "cyclegan generator b1"),
        ModelCase("basic_D", lambda f: define_D(3, 64, "basic", norm="instance", fused=f), (1, 3, 256, 256),
                  "cyclegan discriminator b1"),
        ModelCase("unet_256", lambda f: define_G(3, 3, 64, "unet_256", "batch", use_dropout=True, fused=f),
                  (1, 3, 256, 256), "pix2pix generator b1"),
    ]
    if not quick:
        found.append(ModelCase("conv_vae", lambda f: ConvVAE(fused=f), (64, 3, 64, 64), "conv vae b64"))
    return found


def _output(result) -> torch.Tensor:
    return result[0] if isinstance(result, tuple) else result


def _variants(case: ModelCase, device: torch.device, compile_too: bool) -> dict[str, Variant]:
    torch.manual_seed(0)
    reference = case.build(False).to(device)
    fused = case.build(True).to(device)
    fused.load_state_dict(reference.state_dict())
    inputs = tuple(torch.randn(case.input_shape, device=device) for _ in range(2))
    found = {"torch": Variant(reference, inputs), "genimg_fast": Variant(fused, inputs)}
    if compile_too:
        found["torch.compile(torch)"] = Variant(torch.compile(reference), inputs)
        found["torch.compile(genimg_fast)"] = Variant(torch.compile(fused), inputs)
    if not case.quick:
        # bf16 rounding moves a deep network's gradients by tens of percent (eager torch's too):
        # genimg_fast in bf16 is judged against eager torch's own bf16 error
        found["torch bf16"] = Variant(reference, inputs, autocast=torch.bfloat16, tolerance=None)
        found["genimg_fast bf16"] = Variant(fused, inputs, autocast=torch.bfloat16, tolerance=0.1,
                                            yardstick="torch bf16")
        last = tuple(x.contiguous(memory_format=torch.channels_last) for x in inputs)
        for name, model in (("torch", reference), ("genimg_fast", fused)):
            found[f"{name} channels_last"] = Variant(copy.deepcopy(model).to(memory_format=torch.channels_last), last)
    return found


def _step(variant: Variant, backward: bool, device: torch.device) -> Callable[[int], tuple[torch.Tensor, ...]]:
    """One forward (no grad), or one forward + backward returning the parameters' gradients."""
    params = [p for p in variant.model.parameters() if p.requires_grad]

    def forward(i: int) -> torch.Tensor:
        with torch.autocast(device.type, dtype=variant.autocast, enabled=variant.autocast is not None):
            return _output(variant.model(variant.inputs[i % len(variant.inputs)]))

    def step(i: int) -> tuple[torch.Tensor, ...]:
        if backward:
            return torch.autograd.grad(forward(i).float().square().mean(), params)
        with torch.no_grad():
            return (forward(i),)
    return step


def relative_error(got: torch.Tensor, want: torch.Tensor, floor: float = 1e-12) -> float:
    """|got - want| / |want| (Frobenius norms), the denominator at least `floor`."""
    want = want.detach().double()
    return ((got.detach().double() - want).norm() / want.norm().clamp_min(floor)).item()


def _floor(results: list[torch.Tensor]) -> float:
    """A thousandth of the results' joint norm: a gradient that is zero in exact arithmetic (a conv
    bias before instance norm) is rounding noise on both sides, judged against the whole."""
    return 1e-3 * torch.stack([t.detach().double().norm() for t in results]).norm().item()


@contextlib.contextmanager
def _dropout_off(models: list[nn.Module]):
    layers = {id(m): m for model in models for m in model.modules()
              if isinstance(m, nn.modules.dropout._DropoutNd) and m.training}.values()
    for layer in layers:
        layer.eval()
    try:
        yield
    finally:
        for layer in layers:
            layer.train()


def check_variants(steps: dict[str, Callable[[int], tuple[torch.Tensor, ...]]], variants: dict[str, Variant],
                   what: str) -> dict[str, str]:
    """Every variant's results (output, or parameter gradients) against eager torch's, each from the
    same seed (the VAE draws its noise), with dropout off (the pix2pix generator's: a
    channels_last tensor would draw its mask in another order) and in full float32 (TF32's
    rounding differs by percents between convolution algorithms); returns the variants that fail,
    each with why. Eager torch failing its own repeat fails the whole case."""
    def results(step) -> list[torch.Tensor]:
        torch.manual_seed(0)
        return [t.detach().clone() for t in step(0)]

    with exact_fp32(), _dropout_off([variant.model for variant in variants.values()]):
        expected = results(steps["torch"])
        floor = _floor(expected)
        errors = {name: [relative_error(got, want, floor) for got, want in zip(results(step), expected)]
                  for name, step in steps.items()}

    def check(name: str) -> None:
        variant, errs = variants[name], errors[name]
        allowed = [math.inf if variant.tolerance is None else variant.tolerance] * len(errs)
        if variant.yardstick is not None:
            allowed = [max(a, 2 * y) for a, y in zip(allowed, errors[variant.yardstick])]
        bad = [i for i, (e, a) in enumerate(zip(errs, allowed)) if not (math.isfinite(e) and e <= a)]
        if bad:
            i = bad[0]
            how_many = f" ({len(bad)} of {len(errs)} results)" if len(bad) > 1 else ""
            raise AssertionError(("eager torch does not repeat its own results: " if name == "torch" else "")
                                 + f"disagrees with torch on {what} (result {i}): relative error {errs[i]:.3g} > "
                                 f"{allowed[i]:.3g}{how_many}")
    return check_each(variants, check)


def _same_run(got: list[torch.Tensor], want: list[torch.Tensor], what: str) -> None:
    """A replay against its own eager step: the same kernels, but atomics (reflection padding's
    backward, some cuDNN algorithms) sum in another order, so each result within a thousandth of
    the whole (a gradient that is zero in exact arithmetic is all rounding noise)."""
    floor = _floor(want)
    for index, (g, w) in enumerate(zip(got, want)):
        error = relative_error(g, w, floor)
        if not error <= 1e-3:
            raise AssertionError(f"{what} (result {index}): relative error {error:.3g}")


def run_case(case: ModelCase, device: torch.device, *, compile_too: bool, warmup: int, repeats: int) -> list[dict]:
    variants = _variants(case, device, compile_too)
    rows, failed = [], {}
    for mode in ("forward", "forward+backward"):
        steps = {name: _step(v, mode != "forward", device) for name, v in variants.items()}
        for name, why in check_variants(steps, variants, f"{case.name} {mode}").items():
            failed[f"{name}, {mode}"] = why
            del steps[name]
        # on a GPU, the GPU's work alone: each step captured once, replayed
        graph_failed = add_graph_variants(steps, device, compare=_same_run)
        failed.update({f"{name}, {mode}": why for name, why in graph_failed.items()})
        timings = time_side_by_side(steps, device, warmup=max(2, warmup // 5), repeats=max(10, repeats // 10))
        new_rows = timing_rows(timings, op=f"{case.name} {mode}", case=case.label, shape=case.input_shape,
                               dtype=torch.float32, modeled_bytes=None)
        add_peak_mb(new_rows, steps, device)
        rows += new_rows
    return finish(rows, failed)
