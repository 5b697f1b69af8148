"""CPU inference as `genimg-fast sample` and `translate` run it: the plain torch.nn reference
network's eager forward under no_grad (the 1.00x baseline) against
genimg_fast.optimize_for_inference's copy in each layout, and with --compile torch.compile of
both. Cases at the recipes' own sizes: DCGAN sampling (batch 64 of 100-d noise to 64x64
images, eval mode, batch norms folded), CycleGAN's ResNet-9 and pix2pix's U-Net-256
translating one 256x256 image in training mode, junyanz's test-time default (instance norm;
batch norm with the image's own statistics, dropout on). --quick keeps DCGAN sampling alone.
Every variant's output is checked against the baseline's before it is timed. GPUs have their
own path (fused modules, CUDA graphs): no cases there."""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from genimg_fast.bench.checks import finish, without
from genimg_fast.bench.models_bench import Variant, check_variants
from genimg_fast.bench.rows import forward_rows
from genimg_fast.inference.optimize import TOLERANCE, optimize_for_inference
from genimg_fast.models import DCGANGenerator, define_G

OPTIMIZED = "optimize_for_inference"


@dataclass(frozen=True)
class InferenceCase:
    name: str
    label: str
    build: Callable[[], nn.Module]  # the plain reference network, weights drawn from the current seed
    input_shape: tuple[int, ...]
    train_mode: bool                # junyanz's test-time default (batch statistics, dropout on)
    cost: int = 10                  # the family's repeats are the suite's divided by this


def _dcgan_generator() -> nn.Module:
    net = DCGANGenerator(fused=False)
    with torch.no_grad():  # running statistics of a trained generator, not the (0, 1) defaults
        for _ in range(2):
            net(torch.randn(64, 100, 1, 1))
    return net.eval()


def cases(device: torch.device, quick: bool) -> list[InferenceCase]:
    if device.type != "cpu":
        return []
    found = [InferenceCase("dcgan sampling", "dcgan sampling b64 cpu", _dcgan_generator, (64, 100, 1, 1), False)]
    if not quick:
        found += [
            InferenceCase("resnet_9blocks translate", "cyclegan translate b1 cpu",
                          lambda: define_G(3, 3, 64, "resnet_9blocks", "instance", fused=False),
                          (1, 3, 256, 256), True, cost=20),
            InferenceCase("unet_256 translate", "pix2pix translate b1 cpu",
                          lambda: define_G(3, 3, 64, "unet_256", "batch", use_dropout=True, fused=False),
                          (1, 3, 256, 256), True, cost=20),
        ]
    return found


def _models(case: InferenceCase, compile_too: bool) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    reference = case.build().train(case.train_mode)
    found = {"torch": reference}
    for layout, channels_last in (("", False), (" channels_last", True)):
        found[OPTIMIZED + layout] = optimize_for_inference(reference, train_mode=case.train_mode,
                                                           channels_last=channels_last)
    if compile_too:  # a copy: the eager baseline keeps its own module
        found["torch.compile(torch)"] = torch.compile(copy.deepcopy(reference))
        for layout, channels_last in (("", False), (" channels_last", True)):
            found[f"torch.compile({OPTIMIZED}{layout})"] = optimize_for_inference(
                reference, train_mode=case.train_mode, channels_last=channels_last, compile=True)
    return found


def run_case(case: InferenceCase, device: torch.device, *, compile_too: bool, warmup: int,
             repeats: int) -> list[dict]:
    models = _models(case, compile_too)
    torch.manual_seed(0)
    inputs = tuple(torch.randn(case.input_shape) for _ in range(2))

    def call(model: nn.Module) -> Callable[[int], torch.Tensor]:
        return lambda i: model(inputs[i % len(inputs)])

    calls = {name: call(model) for name, model in models.items()}

    def checked(name: str) -> Callable[[int], tuple[torch.Tensor, ...]]:
        def step(i: int) -> tuple[torch.Tensor, ...]:
            with torch.no_grad():
                return (calls[name](i),)
        return step

    # the documented tolerance, as a relative norm error; dropout off while checking (the masks
    # are random, drawn in another order in channels_last and by another generator when compiled)
    variants = {name: Variant(model, inputs, tolerance=TOLERANCE) for name, model in models.items()}
    failed = check_variants({name: checked(name) for name in models}, variants, case.name)
    rows = forward_rows(without(calls, failed), device, warmup=max(2, warmup // 5),
                        repeats=max(10, repeats // case.cost), op=case.name, case=case.label,
                        shape=case.input_shape, dtype=torch.float32, modeled_bytes=None)
    return finish(rows, failed)
