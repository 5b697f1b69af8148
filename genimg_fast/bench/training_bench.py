"""Whole training iterations of the four recipes (every network's forward and backward, the
losses and the optimizer steps, exactly as `genimg-fast train` runs them): the reference
layers and losses in eager torch against genimg_fast's fused recipe, and on a GPU both again
captured as CUDA graphs (the trainers' --cuda-graphs), with bf16 autocast and channels_last
outside --quick, and torch.compile with --compile. Peak GPU memory per iteration. Every
variant's first two iterations are checked against the reference's before anything is timed
(the same seed gives every variant the same weights and noise). CycleGAN runs without its image
pool, so that every variant, CUDA graphs included, does the same work."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from genimg_fast.bench.checks import check_each, finish, without
from genimg_fast.bench.rows import add_peak_mb, timing_rows
from genimg_fast.bench.timing import time_side_by_side
from genimg_fast.data import ColouredShapes, OutlinesToShapes, UnpairedShapeStyles
from genimg_fast.train.cuda_graph_step import CUDAGraphStep
from genimg_fast.train.cyclegan import CycleGANConfig, CycleGANRecipe
from genimg_fast.train.dcgan import DCGANConfig, DCGANRecipe
from genimg_fast.train.pix2pix import Pix2PixConfig, Pix2PixRecipe
from genimg_fast.train.vae import VAEConfig, VAERecipe


@dataclass(frozen=True)
class TrainingCase:
    name: str
    label: str
    batch_shape: tuple[int, ...]
    build: Callable[[dict, torch.device], object]  # run options, device -> recipe
    paired: bool = False                            # batches of (A, B) instead of (images, labels)
    quick: bool = False                             # fewer variants (no bf16)


def _dcgan(size: int, width: int, batch: int) -> Callable:
    return lambda options, device: DCGANRecipe(
        DCGANConfig(image_size=size, ngf=width, ndf=width, batch_size=batch, **options), device)


def _conv_vae(batch: int) -> Callable:
    return lambda options, device: VAERecipe(VAEConfig(model="conv", batch_size=batch, **options), device,
                                             ColouredShapes(8, 64, 3, unit_range=True))


def _cyclegan(size: int, netG: str, width: int) -> Callable:
    return lambda options, device: CycleGANRecipe(
        CycleGANConfig(crop_size=size, netG=netG, ngf=width, ndf=width, batch_size=1, pool_size=0, **options), device,
        UnpairedShapeStyles(3, size))


def _pix2pix(size: int, netG: str, width: int) -> Callable:
    return lambda options, device: Pix2PixRecipe(
        Pix2PixConfig(crop_size=size, netG=netG, ngf=width, ndf=width, batch_size=1, **options), device,
        OutlinesToShapes(3, size))


def cases(device: torch.device, quick: bool) -> list[TrainingCase]:
    return [dataclasses.replace(case, quick=quick) for case in _cases(device, quick)]


def _cases(device: torch.device, quick: bool) -> list[TrainingCase]:
    if device.type != "cuda":  # small stand-ins: a CPU is slower
        found = [TrainingCase("dcgan", "dcgan training small", (16, 3, 32, 32), _dcgan(32, 8, 16))]
        if not quick:
            found += [TrainingCase("pix2pix", "pix2pix training small", (1, 3, 128, 128),
                                   _pix2pix(128, "unet_128", 8), paired=True),
                      TrainingCase("cyclegan", "cyclegan training small", (1, 3, 64, 64),
                                   _cyclegan(64, "resnet_6blocks", 8), paired=True)]
        return found
    return [
        TrainingCase("dcgan", "dcgan training b128", (128, 3, 64, 64), _dcgan(64, 64, 128)),
        TrainingCase("conv_vae", "conv vae training b64", (64, 3, 64, 64), _conv_vae(64)),
        TrainingCase("cyclegan", "cyclegan training b1", (1, 3, 256, 256), _cyclegan(256, "resnet_9blocks", 64),
                     paired=True),
        TrainingCase("pix2pix", "pix2pix training b1", (1, 3, 256, 256), _pix2pix(256, "unet_256", 64), paired=True),
    ]


def _variants(device: torch.device, quick: bool, compile_too: bool) -> dict[str, dict]:
    """variant name -> the trainers' run options."""
    base = {"device": str(device), "progress": False}
    found = {"torch": {**base, "impl": "reference"}, "genimg_fast": {**base, "impl": "fused"}}
    if device.type == "cuda":
        found["torch (cuda graphs)"] = {**base, "impl": "reference", "cuda_graphs": True}
        found["genimg_fast (cuda graphs)"] = {**base, "impl": "fused", "cuda_graphs": True}
    if not quick:
        found["torch bf16"] = {**base, "impl": "reference", "amp": "bf16"}
        found["genimg_fast bf16"] = {**base, "impl": "fused", "amp": "bf16"}
        found["torch channels_last"] = {**base, "impl": "reference", "channels_last": True}
        found["genimg_fast channels_last"] = {**base, "impl": "fused", "channels_last": True}
    if compile_too:
        found["torch.compile(torch)"] = {**base, "impl": "reference", "compile": True}
        found["torch.compile(genimg_fast)"] = {**base, "impl": "fused", "compile": True}
    return found


def _batches(case: TrainingCase, device: torch.device) -> list[tuple[torch.Tensor, ...]]:
    g = torch.Generator(device=device).manual_seed(1)
    images = [torch.rand(case.batch_shape, generator=g, device=device) * 2 - 1 for _ in range(4)]
    if case.paired:
        return [(images[0], images[1]), (images[2], images[3])]
    labels = torch.zeros(case.batch_shape[0], dtype=torch.long, device=device)
    if case.name == "conv_vae":  # the VAE's data are in [0, 1]
        images = [(x + 1) / 2 for x in images]
    return [(images[0], labels), (images[1], labels)]


def _flat_parameters(recipe) -> dict[str, torch.Tensor]:
    return {name: torch.cat([p.detach().double().flatten() for p in net.parameters()])
            for name, net in recipe.networks().items()}


def _disagreement(update: torch.Tensor, reference: torch.Tensor) -> float:
    """1 - the cosine between two parameter updates: 0 for the same direction. (Adam's first step
    moves every weight by about the learning rate, the sign of its gradient: wrong gradients
    point the update elsewhere even where the next losses barely move.)"""
    return 1.0 - (torch.dot(update, reference) / (update.norm() * reference.norm()).clamp_min(1e-30)).item()


@dataclass
class FirstIterations:
    losses: list[dict[str, torch.Tensor]]   # of the first two iterations
    disagreement: dict[str, float]          # network -> how far its first update is from torch's
                                            # (see _update_reference; empty: nothing to compare with)


def check_iterations(runs: dict[str, FirstIterations], case: TrainingCase) -> dict[str, str]:
    """Every variant starts from the same weights and draws the same noise: its losses over the
    first two iterations must be the reference's (the second follows the first's gradients and
    optimizer steps and, with CUDA graphs, is the first replay), and each network's first update
    must point where torch's does. In bf16 the update may be off by twice eager torch's own bf16."""
    def check(name: str) -> None:
        rel = 0.1 if "bf16" in name else 2e-2  # cuDNN's and our norms round apart; TF32 convolutions
        for iteration, (got_losses, want_losses) in enumerate(zip(runs[name].losses, runs["torch"].losses), 1):
            for key, value in want_losses.items():
                got, want = float(got_losses[key]), float(value)
                if not abs(got - want) <= rel * max(abs(want), 1e-3):  # NaN fails too
                    raise AssertionError(f"disagrees with torch on {case.name}'s iteration {iteration}: {key} "
                                         f"{got:.6g} vs {want:.6g}")
        for network, off in runs[name].disagreement.items():
            allowed = 0.1
            if name == "torch bf16":
                allowed = math.inf
            elif "bf16" in name and "torch bf16" in runs:
                allowed = max(allowed, 2 * runs["torch bf16"].disagreement[network])
            if not (math.isfinite(off) and off <= allowed):
                raise AssertionError(f"{network}'s first update on {case.name} points elsewhere than torch's: "
                                     f"1 - cosine = {off:.3g} > {allowed:.3g}")
    return check_each(runs, check)


def _update_reference(name: str, has_dropout: bool) -> str | None:
    """Whose first update a variant's must point along: eager torch's. With dropout, a
    channels_last variant draws its masks in another order: eager torch's in channels_last
    (which itself has none to compare with); torch.compile draws its own: none."""
    if has_dropout and "compile" in name:
        return None
    if has_dropout and "channels_last" in name:
        return None if name == "torch channels_last" else "torch channels_last"
    return "torch"


def run_case(case: TrainingCase, device: torch.device, *, compile_too: bool, warmup: int, repeats: int) -> list[dict]:
    batches = _batches(case, device)
    steps, runs, reference_updates = {}, {}, {}
    for name, options in _variants(device, case.quick, compile_too).items():
        recipe = case.build(options, device)
        has_dropout = any(isinstance(m, nn.modules.dropout._DropoutNd)
                          for net in recipe.networks().values() for m in net.modules())
        step = CUDAGraphStep(recipe, case.batch_shape[0]) if options.get("cuda_graphs") else recipe.step
        before = _flat_parameters(recipe)
        losses = [step(batches[0])]
        update = {net: after - before[net] for net, after in _flat_parameters(recipe).items()}
        del before
        if name in ("torch", "torch channels_last"):
            reference_updates[name] = update
        reference = reference_updates.get(_update_reference(name, has_dropout))
        disagreement = {net: _disagreement(u, reference[net]) for net, u in update.items()} if reference else {}
        del update
        losses.append(step(batches[1]))  # a graph variant: eager, then capture + replay
        runs[name] = FirstIterations(losses, disagreement)
        steps[name] = lambda i, step=step: step(batches[i % 2])
    del reference_updates
    failed = check_iterations(runs, case)
    steps = without(steps, failed)
    timings = time_side_by_side(steps, device, warmup=max(4, warmup // 5), repeats=max(10, repeats // 20))
    rows = timing_rows(timings, op=f"{case.name} training iteration", case=case.label, shape=case.batch_shape,
                       dtype=torch.float32, modeled_bytes=None)
    add_peak_mb(rows, steps, device)
    return finish(rows, failed)
