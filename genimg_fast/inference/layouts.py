"""Which memory layout a model runs faster in on a CPU, and moving a model to channels_last.

The choice is per model family, measured side by side on a 2-core AMD EPYC CPU with torch 2.14
(benchmarks/profiling/inference_layouts.py; docs/inference.md has the numbers), each model already
optimized as optimize_for_inference does it. oneDNN's convolutions are faster channels_last, but
norms computed over H x W (group norm, instance norm) are slower in it, so the answer depends on
how much of a network is convolution."""
from __future__ import annotations

import torch
from torch import nn

from genimg_fast.models import ConvVAE, DCGANGenerator, ResnetGenerator, UnetGenerator

# model class -> channels_last measured faster (optimized eager, against the plain model; four
# runs of benchmarks/profiling/inference_layouts.py, other load on the machine in some of them):
# DCGAN b64 1.37-1.44x channels_last against 1.04-1.09x contiguous; ConvVAE decoder b64 2.5-2.7x
# against 1.2-1.3x; ResNet-9 b1 1.05-1.20x against 0.97-1.07x; U-Net-256 b1 train mode
# 1.08-1.19x against 1.16-1.21x (contiguous also draws dropout masks in the reference's order)
MEASURED_CHANNELS_LAST = {
    DCGANGenerator: True,
    ConvVAE: True,
    ResnetGenerator: True,
    UnetGenerator: False,
}


def prefers_channels_last(model: nn.Module) -> bool:
    """The measured choice for the model's family; contiguous for anything not measured."""
    return MEASURED_CHANNELS_LAST.get(type(model), False)


def _tensors(value, convert):
    if isinstance(value, torch.Tensor):
        return convert(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_tensors(v, convert) for v in value)
    return value


def _channels_last_input(_module, args):
    # 4-D inputs in the layout the weights are in: the first convolution then needs no reorder
    return _tensors(args, lambda t: t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t)


def _contiguous_output(_module, _args, output):
    # callers get the default layout back (a .view() of a channels_last tensor can fail)
    return _tensors(output, lambda t: t.contiguous())


def to_channels_last(model: nn.Module) -> nn.Module:
    """In place: 4-D weights channels_last, 4-D inputs of forward converted to it, outputs of
    forward returned contiguous."""
    model.to(memory_format=torch.channels_last)
    model.register_forward_pre_hook(_channels_last_input)
    model.register_forward_hook(_contiguous_output)
    return model
