"""Training objectives, forward + backward: the recipes' eager torch losses (one torch loss per
term, summed, as junyanz's models and the VAE examples compute them) against genimg_fast's
fused objective modules, and torch.compile of both; with kernel launches per step counted on a
GPU, where both are also timed captured in CUDA graphs (the GPU's work alone)."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genimg_fast.bench.checks import check_each, finish, without
from genimg_fast.bench.graphs import add_graph_variants
from genimg_fast.bench.launch_counts import DeferredLaunchCounts
from genimg_fast.bench.rows import forward_rows, timing_rows
from genimg_fast.bench.timing import time_side_by_side
from genimg_fast.ops import objectives

Tensors = list[torch.Tensor]
Objective = Callable[[Tensors], torch.Tensor]


@dataclass(frozen=True)
class ObjectiveCase:
    name: str
    shapes: tuple[tuple[int, ...], ...]  # every input; those marked in `differentiable` get gradients
    differentiable: tuple[int, ...]
    label: str
    probabilities: tuple[int, ...] = ()  # inputs that hold probabilities (BCE), drawn in (0, 1)
    forward_too: bool = False            # also time the objective's value alone (outside --quick)

    @property
    def largest_shape(self) -> tuple[int, ...]:  # what the table shows
        return max(self.shapes, key=lambda shape: torch.Size(shape).numel())

    @property
    def numel(self) -> int:
        total = 0
        for shape in self.shapes:
            n = 1
            for s in shape:
                n *= s
            total += n
        return total


PATCH, IMAGE = (1, 1, 30, 30), (1, 3, 256, 256)


def cases(device: torch.device, quick: bool) -> list[ObjectiveCase]:
    found = [
        ObjectiveCase("cyclegan_G", (PATCH, PATCH) + (IMAGE,) * 6, (0, 1, 2, 4, 6, 7), "cyclegan G b1"),
        ObjectiveCase("cyclegan_D", (PATCH, PATCH), (0, 1), "cyclegan D b1"),
        ObjectiveCase("pix2pix_G", (PATCH, IMAGE, IMAGE), (0, 1), "pix2pix G b1"),
        ObjectiveCase("pix2pix_D", (PATCH, PATCH), (0, 1), "pix2pix D b1"),
        ObjectiveCase("dcgan_D", ((128,), (128,)), (0, 1), "dcgan D b128", probabilities=(0, 1)),
        ObjectiveCase("vae", ((128, 784), (128, 784), (128, 20), (128, 20)), (0, 2, 3), "vae b128",
                      probabilities=(0, 1)),
        ObjectiveCase("conv_vae", ((64, 3, 64, 64), (64, 3, 64, 64), (64, 128), (64, 128)), (0, 2, 3),
                      "conv vae b64"),
    ]
    if not quick:
        found.append(ObjectiveCase("wgangp_D", (PATCH, PATCH), (0, 1), "wgan-gp critic b1"))
    found = found[:3] if quick and device.type != "cuda" else found
    return [dataclasses.replace(case, forward_too=not quick) for case in found]


def reference(name: str) -> Objective:
    """The recipes' eager code, term by term."""
    def gan(pred, real):  # lsgan / vanilla as in junyanz's GANLoss: a label tensor, then the loss
        target = torch.full_like(pred, 1.0 if real else 0.0)
        return F.mse_loss(pred, target)

    def cyclegan_g(t):
        fake_b, fake_a, rec_a, real_a, rec_b, real_b, idt_a, idt_b = t
        return (gan(fake_b, True) + gan(fake_a, True) + F.l1_loss(rec_a, real_a) * 10 + F.l1_loss(rec_b, real_b) * 10
                + F.l1_loss(idt_a, real_b) * 5 + F.l1_loss(idt_b, real_a) * 5)

    def cyclegan_d(t):
        return 0.5 * (gan(t[0], True) + gan(t[1], False))

    def pix2pix_d(t):  # vanilla: BCE with logits against a label tensor
        return 0.5 * (F.binary_cross_entropy_with_logits(t[0], torch.ones_like(t[0]))
                      + F.binary_cross_entropy_with_logits(t[1], torch.zeros_like(t[1])))

    def wgangp_d(t):  # junyanz's wgangp GANLoss: -mean for real, +mean for fake (the penalty is separate)
        return 0.5 * (-t[0].mean() + t[1].mean())

    def pix2pix_g(t):
        pred, fake_b, real_b = t
        return F.binary_cross_entropy_with_logits(pred, torch.ones_like(pred)) + 100 * F.l1_loss(fake_b, real_b)

    def dcgan_d(t):  # BCELoss on the sigmoid output, real then fake, summed like the example's errD
        return (F.binary_cross_entropy(t[0], torch.full_like(t[0], 1.0))
                + F.binary_cross_entropy(t[1], torch.full_like(t[1], 0.0)))

    def vae(t):
        recon, x, mu, logvar = t
        return (F.binary_cross_entropy(recon, x, reduction="sum")
                - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()))

    def conv_vae(t):  # AntixK's VanillaVAE.loss_function with the recipe's kld_weight
        recon, x, mu, logvar = t
        kld = torch.mean(-0.5 * torch.sum(1 + logvar - mu ** 2 - logvar.exp(), dim=1), dim=0)
        return F.mse_loss(recon, x) + 0.00025 * kld

    return {"conv_vae": conv_vae, "cyclegan_G": cyclegan_g, "cyclegan_D": cyclegan_d, "pix2pix_G": pix2pix_g,
            "pix2pix_D": pix2pix_d, "wgangp_D": wgangp_d, "dcgan_D": dcgan_d, "vae": vae}[name]


def fused(name: str) -> Objective:
    return {
        "cyclegan_G": lambda t: objectives.cyclegan_generator_loss(*t)[0],
        "cyclegan_D": lambda t: objectives.discriminator_loss(t[0], t[1], "lsgan")[0],
        "pix2pix_G": lambda t: objectives.pix2pix_generator_loss(*t)[0],
        "pix2pix_D": lambda t: objectives.discriminator_loss(t[0], t[1], "vanilla")[0],
        "wgangp_D": lambda t: objectives.discriminator_loss(t[0], t[1], "wgangp")[0],
        "dcgan_D": lambda t: objectives.discriminator_loss(t[0], t[1], "bce", weight=1.0)[0],
        "vae": lambda t: objectives.vae_loss(*t)[0],
        "conv_vae": lambda t: objectives.vae_loss(*t, recon_loss="mse", recon_reduction="mean", kld_weight=0.00025,
                                                  kld_reduction="batchmean")[0],
    }[name]


def make_inputs(case: ObjectiveCase, device: torch.device, seed: int) -> Tensors:
    g = torch.Generator(device=device).manual_seed(seed)
    out = []
    for i, shape in enumerate(case.shapes):
        t = (torch.rand(shape, generator=g, device=device) * 0.98 + 0.01 if i in case.probabilities
             else torch.randn(shape, generator=g, device=device))
        out.append(t.requires_grad_(i in case.differentiable))
    return out


def modeled_bytes(case: ObjectiveCase) -> int:
    """Fused traffic: every input read once, a gradient written for each differentiable input,
    then read and written again by the backward (fp32)."""
    grads = sum(torch.Size(case.shapes[i]).numel() for i in case.differentiable)
    return 4 * (case.numel + 3 * grads)


def check_variants(variants: dict[str, Objective], case: ObjectiveCase, tensors: Tensors) -> dict[str, str]:
    """Each variant's value and gradients against eager torch's (fp32 inputs: tight tolerances)."""
    inputs = [tensors[k] for k in case.differentiable]

    def value_and_grads(objective: Objective) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        # the graph goes with this frame: a kept one would pin the inputs' gradient accumulators
        # to this stream and break the CUDA-graph capture of the backward below
        value = objective(tensors)
        return value.detach(), torch.autograd.grad(value, inputs)

    expected, expected_grads = value_and_grads(variants["torch"])

    def check(name: str) -> None:
        value, grads = value_and_grads(variants[name])
        torch.testing.assert_close(value, expected, rtol=1e-4, atol=1e-4,
                                   msg=lambda m: f"value disagrees with torch on {case.name}: {m}")
        for got, want in zip(grads, expected_grads):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5,
                                       msg=lambda m: f"gradients disagree with torch on {case.name}: {m}")
    return check_each(variants, check)


def run_case(case: ObjectiveCase, device: torch.device, *, compile_too: bool, warmup: int, repeats: int,
             launch_counts: DeferredLaunchCounts | None = None) -> list[dict]:
    """The case's rows; their launches counted by `launch_counts` once the suite has timed
    everything (a profiler session slows the eager steps timed after it), or not at all (None)."""
    variants = {"torch": reference(case.name), "genimg_fast": fused(case.name)}
    if compile_too:
        variants["torch.compile(torch)"] = torch.compile(reference(case.name))
        variants["torch.compile(genimg_fast)"] = torch.compile(fused(case.name))
    sets = [make_inputs(case, device, seed) for seed in range(2)]
    failed = check_variants(variants, case, sets[0])  # never time a wrong answer
    variants = without(variants, failed)

    def make_step(objective: Objective):
        def step(i: int):
            tensors = sets[i % len(sets)]
            return torch.autograd.grad(objective(tensors), [tensors[k] for k in case.differentiable])
        return step

    steps = {n: make_step(o) for n, o in variants.items()}
    # on a GPU, the GPU's work alone: each step captured once, replayed
    failed.update(add_graph_variants(steps, device, rtol=1e-4, atol=1e-5))
    timings = time_side_by_side(steps, device, warmup=warmup, repeats=repeats)
    rows = timing_rows(timings, op=f"{case.name} objective fwd+bwd", case=case.label, shape=case.largest_shape,
                       dtype=torch.float32, modeled_bytes=modeled_bytes(case))
    if launch_counts is not None:  # a copy of the list: the forward-only rows below are not its steps'
        launch_counts.add(list(rows), steps, device)
    if case.forward_too:  # the value alone (no gradient wanted: the fused op stores none)
        rows += forward_rows({n: (lambda i, o=o: o(sets[i % len(sets)])) for n, o in variants.items()}, device,
                             warmup=warmup, repeats=repeats, op=f"{case.name} objective fwd", case=case.label,
                             shape=case.largest_shape, dtype=torch.float32, modeled_bytes=4 * case.numel)
    return finish(rows, failed)
