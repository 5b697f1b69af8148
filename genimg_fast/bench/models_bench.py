"""The recipes' networks, forward and forward + backward: the plain reference layers (eager),
genimg_fast's fused models, and torch.compile of the reference, at each network's reference
batch size and resolution on a GPU (reduced widths and sizes on a CPU, where the references run);
with peak GPU memory per step."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from genimg_fast.bench.rows import timing_rows
from genimg_fast.bench.timing import time_side_by_side
from genimg_fast.models import DCGANDiscriminator, DCGANGenerator, ConvVAE, define_D, define_G


@dataclass(frozen=True)
class ModelCase:
    name: str
    build: Callable[[bool], nn.Module]  # fused -> model
    input_shape: tuple[int, ...]
    label: str


def cases(device: torch.device, quick: bool) -> list[ModelCase]:
    if device.type != "cuda":  # small stand-ins: the CPU runs the reference kernels
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


def _peak_mb(step: Callable[[], None], device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    step()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def run_case(case: ModelCase, device: torch.device, *, compile_too: bool, warmup: int, repeats: int) -> list[dict]:
    torch.manual_seed(0)
    reference = case.build(False).to(device)
    fused = case.build(True).to(device)
    fused.load_state_dict(reference.state_dict())
    variants = {"torch": reference, "genimg_fast": fused}
    if compile_too:
        variants["torch.compile(torch)"] = torch.compile(reference)
    x = torch.randn(case.input_shape, device=device)
    rows = []
    for mode in ("forward", "forward+backward"):
        def make_step(model: nn.Module, backward: bool = mode != "forward") -> Callable[[int], None]:
            params = [p for p in model.parameters() if p.requires_grad]

            def step(_i: int) -> None:
                if backward:
                    out = _output(model(x))
                    torch.autograd.grad(out.float().square().mean(), params)
                else:
                    with torch.no_grad():
                        model(x)
            return step

        steps = {name: make_step(model) for name, model in variants.items()}
        timings = time_side_by_side(steps, device, warmup=max(2, warmup // 5), repeats=max(10, repeats // 10))
        new_rows = timing_rows(timings, op=f"{case.name} {mode}", case=case.label, shape=case.input_shape,
                               dtype=torch.float32, modeled_bytes=None)
        for row in new_rows:
            row["peak_mb"] = _peak_mb(lambda name=row["variant"]: steps[name](0), device)
        rows += new_rows
    return rows
