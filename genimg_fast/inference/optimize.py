"""optimize_for_inference(model): a copy of a model that computes the same outputs faster on a
CPU, built from plain torch layers (see docs/inference.md for the measured speed-ups)."""
from __future__ import annotations

import torch
from torch import nn

from genimg_fast.convert import fold_batchnorm
from genimg_fast.export import to_reference
from genimg_fast.inference.inplace import drop_eval_dropout, make_activations_inplace
from genimg_fast.inference.layouts import prefers_channels_last, to_channels_last
from genimg_fast.inference.norm_swaps import swap_batch_statistics_norms
from genimg_fast.inference.small_deconv import swap_small_input_deconvs

# max |optimized - original| / max |original| over the output, float32 (measured at most 2.1e-5,
# ResNet-9 at 256x256 channels_last; the threshold leaves headroom for other inputs and CPUs)
TOLERANCE = 1e-4


def _flag(value, name: str, allow_none: bool = False) -> None:
    if isinstance(value, bool) or (allow_none and value is None):
        return
    wanted = "True, False or None" if allow_none else "True or False"
    raise TypeError(f"optimize_for_inference: {name} must be {wanted}, got {value!r}")


def optimize_for_inference(model: nn.Module, *, train_mode: bool = False, channels_last: bool | None = None,
                           compile: bool = False) -> nn.Module:
    """A new model computing what `model` computes, faster at inference on a CPU (where every
    choice here was measured; on a GPU, genimg_fast's fused models and CUDA graphs are the fast
    path); `model` is not modified.

    The copy (i) holds plain torch layers in place of genimg_fast's fused norms
    (genimg_fast.to_reference, same weights); (ii) in eval mode (train_mode=False, the default)
    has every batch norm with running statistics folded into the convolution or transposed
    convolution before it (genimg_fast.fold_batchnorm: DCGAN, VAE and U-Net levels) and its
    dropout removed; (iii) computes instance norms, and batch norms that use the batch's own
    statistics, with torch's faster group norm where that is the same computation
    (inference/norm_swaps.py); (iv) computes transposed convolutions of small inputs (a U-Net's
    innermost levels, DCGAN's first layer) as a matrix product and F.fold
    (inference/small_deconv.py); (v) runs activations in place where no other layer reads their
    input; (vi) has parameters that require no gradient (call it under torch.inference_mode() or
    torch.no_grad()); (vii) optionally keeps its weights and activations channels_last; (viii)
    optionally is wrapped by torch.compile.

    train_mode=True is junyanz's pix2pix / CycleGAN test-time default: the model stays in training
    mode, so batch norms normalize with each batch's own statistics (nothing is folded; the
    running statistics are neither used nor updated) and dropout stays on (random, as in the
    original: compare with dropout off or with the same seed and layout).

    channels_last: None picks the layout measured faster on a CPU for the model's family
    (inference/layouts.py); True or False forces it. Outputs are returned in the default
    contiguous layout either way. compile=True returns torch.compile of the optimized model
    (the first call compiles: seconds to minutes).

    Tolerance: the outputs equal the original model's (in the same mode) within
    max |optimized - original| <= TOLERANCE (1e-4) x max |original| in float32; measured at most
    2.1e-5 (ResNet-9 at 256x256, channels_last) on the DCGAN generator, the convolutional VAE
    decoder and the ResNet and U-Net generators, eval and training mode (dropout off), both
    layouts. Folding rounds differently; nothing else changes beyond the order of summation.

    Args:
        model (nn.Module): the model to copy; any model, fused or plain.
        train_mode (bool, keyword-only): keep training mode, as above. Default: False.
        channels_last (bool or None, keyword-only): the layout, as above. Default: None.
        compile (bool, keyword-only): wrap the copy in torch.compile. Default: False.

    Returns:
        nn.Module: the optimized copy (the torch.compile wrapper when compile=True).

    Raises:
        TypeError: model is not an nn.Module, or train_mode / compile not a bool, or
            channels_last not a bool or None.
        ValueError: what genimg_fast.to_reference raises for a fused module whose activation
            has no slot to go back to.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"optimize_for_inference: model must be a torch.nn.Module, got {type(model).__name__}")
    _flag(train_mode, "train_mode")
    _flag(channels_last, "channels_last", allow_none=True)
    _flag(compile, "compile")
    optimized = to_reference(model)  # a deep copy: the caller's model is never touched
    optimized.train(train_mode)
    if not train_mode:
        fold_batchnorm(optimized, inplace=True)
        drop_eval_dropout(optimized)
    swap_batch_statistics_norms(optimized)
    swap_small_input_deconvs(optimized)
    make_activations_inplace(optimized)
    optimized.requires_grad_(False)
    if prefers_channels_last(model) if channels_last is None else channels_last:
        to_channels_last(optimized)
    return torch.compile(optimized) if compile else optimized
