"""Whole training iterations of the four recipes (every network's forward and backward, the
losses and the optimizer steps, exactly as `genimg-fast train` runs them), in the variants a user
would compare: the reference layers and losses in eager torch; with --compile, torch.compile of
the reference's networks in each of its modes (compile_modes.py); genimg_fast's fused recipe
eager; and on a GPU genimg_fast captured as one CUDA graph (the trainers' --cuda-graphs), outside
--quick also in bf16 autocast and channels_last, and the reference captured the same way (so the
graph's gain and the kernels' can be told apart). Every row carries the FLOPs of one iteration
(flops.py, counted once in the reference's first iteration), the achieved TFLOP/s, on a GPU the
suite knows the share of its dense peak (peaks.py), and with --compile its ratio to the best
torch.compile mode (versus_compile.py). Peak GPU memory per iteration. Every variant's first two
iterations are checked against the reference's before anything is timed (the same seed gives
every variant the same weights and noise). CycleGAN runs with its image pool of 50, as the
trainer does: every variant, CUDA graphs included, draws from it on the device."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from genimg_fast.bench.checks import check_each, finish, without
from genimg_fast.bench.compile_modes import (MODES, compile_networks, compiled_step, cudagraph_skips, mode_note,
                                             variant_name)
from genimg_fast.bench.flops import count_flops
from genimg_fast.bench.peaks import device_peak
from genimg_fast.bench.rows import add_flop_rates, add_peak_mb, not_run_row, timing_rows
from genimg_fast.bench.timing import time_side_by_side
from genimg_fast.bench.versus_compile import add_speedup_vs_best_compile
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
    quick: bool = False                             # fewer variants (no bf16 + channels_last)


def _dcgan(size: int, width: int, batch: int) -> Callable:
    return lambda options, device: DCGANRecipe(
        DCGANConfig(image_size=size, ngf=width, ndf=width, batch_size=batch, **options), device)


def _conv_vae(batch: int) -> Callable:
    return lambda options, device: VAERecipe(VAEConfig(model="conv", batch_size=batch, **options), device,
                                             ColouredShapes(8, 64, 3, unit_range=True))


def _cyclegan(size: int, netG: str, width: int) -> Callable:
    return lambda options, device: CycleGANRecipe(
        CycleGANConfig(crop_size=size, netG=netG, ngf=width, ndf=width, batch_size=1, **options), device,
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


@dataclass(frozen=True)
class Variant:
    options: dict                     # the trainers' run options
    compile_mode: str | None = None   # torch.compile mode for the recipe's networks (compile_modes.py)
    timed: bool = True                # False: a yardstick for the checks (check_iterations), not timed

    @property
    def precision(self) -> str:
        return "bf16" if self.options.get("amp") == "bf16" else "fp32"


BF16_YARDSTICK = "torch bf16 channels_last"   # eager torch's own bf16 error bounds genimg_fast's
LAYOUT_YARDSTICK = "torch channels_last"      # with dropout, channels_last draws its masks in another order


def _variants(device: torch.device, quick: bool, compile_too: bool) -> dict[str, Variant]:
    """variant name -> how to run it, "torch" first (every check compares with it) and each
    yardstick before the variants it judges."""
    # "off" unless the variant is the graph: the trainers' default ('auto') would make the eager
    # variants' optimizers capturable on a GPU, which is not the eager recipe
    base = {"device": str(device), "progress": False, "cuda_graphs": "off"}
    reference, fused = {**base, "impl": "reference"}, {**base, "impl": "fused"}
    gpu, low_precision = device.type == "cuda", device.type == "cuda" and not quick
    found = {"torch": Variant(reference)}
    if low_precision:
        found[LAYOUT_YARDSTICK] = Variant({**reference, "channels_last": True}, timed=False)
        found[BF16_YARDSTICK] = Variant({**reference, "amp": "bf16", "channels_last": True}, timed=False)
    if compile_too:
        found.update({variant_name(mode): Variant(reference, compile_mode=mode) for mode in MODES})
    if gpu:
        found["torch (cuda graphs)"] = Variant({**reference, "cuda_graphs": "on"})
    found["genimg_fast"] = Variant(fused)
    if gpu:
        found["genimg_fast (cuda graphs)"] = Variant({**fused, "cuda_graphs": "on"})
    if low_precision:
        found["genimg_fast (cuda graphs) bf16 channels_last"] = Variant(
            {**fused, "cuda_graphs": "on", "amp": "bf16", "channels_last": True})
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
    must point where torch's does. In bf16 the update may be off by twice eager torch's own bf16
    (BF16_YARDSTICK's, in the same layout)."""
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
            if name == BF16_YARDSTICK:
                allowed = math.inf
            elif "bf16" in name and BF16_YARDSTICK in runs:
                allowed = max(allowed, 2 * runs[BF16_YARDSTICK].disagreement.get(network, 0.0))
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
        return None if name == LAYOUT_YARDSTICK else LAYOUT_YARDSTICK
    return "torch"


def _not_run_reason(exc: Exception, device: torch.device) -> str:
    """One line: a compiler's error can run to pages."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"fails on {device.type}: {type(exc).__name__}: {first[:200]}"


def _step(recipe, variant: Variant, case: TrainingCase) -> Callable:
    """One training iteration of `recipe` as `variant` runs it (compiled, captured or eager)."""
    if variant.compile_mode:
        compile_networks(recipe, variant.compile_mode)
        return compiled_step(recipe, variant.compile_mode)
    if variant.options["cuda_graphs"] == "on":
        return CUDAGraphStep(recipe, case.batch_shape[0])
    return recipe.step


def run_case(case: TrainingCase, device: torch.device, *, compile_too: bool, warmup: int, repeats: int) -> list[dict]:
    """The case's rows, one per timed variant and one per torch.compile mode that could not run
    here (its row says why); raises UntimedVariants when a variant failed its check."""
    batches = _batches(case, device)
    variants = _variants(device, case.quick, compile_too)
    steps, runs, reference_updates, not_run, skipped = {}, {}, {}, {}, {}
    flops = None
    for name, variant in variants.items():
        skips_before = cudagraph_skips()
        try:
            recipe = case.build(variant.options, device)
            step = _step(recipe, variant, case)
            before = _flat_parameters(recipe)
            losses = []
            if name == "torch":  # counted once, by op shapes: the same work in every variant
                flops = count_flops(lambda: losses.append(step(batches[0])))
            else:
                losses.append(step(batches[0]))
            update = {net: after - before[net] for net, after in _flat_parameters(recipe).items()}
            del before
            losses.append(step(batches[1]))  # a graph variant: eager, then capture + replay
            if variant.compile_mode:  # reduce-overhead's graph trees record on a second call, replay from a third
                step(batches[0])
        except Exception as exc:  # a compiler mode that cannot run on this device is reported, not fatal
            if variant.compile_mode is None:
                raise
            not_run[name] = _not_run_reason(exc, device)
            continue
        skipped[name] = cudagraph_skips() - skips_before
        has_dropout = any(isinstance(m, nn.modules.dropout._DropoutNd)
                          for net in recipe.networks().values() for m in net.modules())
        if name in ("torch", LAYOUT_YARDSTICK):
            reference_updates[name] = update
        reference = reference_updates.get(_update_reference(name, has_dropout))
        runs[name] = FirstIterations(losses, {net: _disagreement(u, reference[net]) for net, u in update.items()}
                                     if reference else {})
        del update
        steps[name] = lambda i, step=step: step(batches[i % 2])
    del reference_updates
    failed = check_iterations(runs, case)
    timed = {name: step for name, step in without(steps, failed).items() if variants[name].timed}
    del steps
    timings = time_side_by_side(timed, device, warmup=max(4, warmup // 5), repeats=max(10, repeats // 20))
    row_fields = {"op": f"{case.name} training iteration", "case": case.label, "shape": case.batch_shape,
                  "dtype": torch.float32}
    rows = timing_rows(timings, modeled_bytes=None, **row_fields)
    rows += [not_run_row(variant=name, why=why, **row_fields) for name, why in not_run.items()]
    order = list(variants)
    rows.sort(key=lambda row: order.index(row["variant"]))
    for row in rows:
        mode = variants[row["variant"]].compile_mode
        if mode and row["note"] is None:
            row["note"] = mode_note(mode, device, skipped.get(row["variant"], 0))
    add_peak_mb(rows, timed, device)
    add_flop_rates(rows, flops, {name: v.precision for name, v in variants.items()}, device_peak(device),
                   torch.backends.cudnn.allow_tf32)
    add_speedup_vs_best_compile(rows)
    return finish(rows, failed)
