"""to_reference(model): the equivalent plain-torch.nn model, with no genimg_fast module or op in it
(for ONNX / TorchScript export, or code that knows nothing of genimg_fast), same weights, same
state_dict keys. The inverse of convert(): each fused norm becomes the torch norm again and its
activation goes back into the nn.Identity slot convert() left behind it (or, in a U-Net, at the
head of the next level, where fold_down_activations took it from)."""
from __future__ import annotations

import copy

from torch import nn

from genimg_fast.nn import BatchNormAct2d, InstanceNormAct2d


def _torch_norm(fused: nn.Module) -> nn.Module:
    """The torch norm holding the fused module's parameters and buffers (shared, not copied)."""
    if isinstance(fused, BatchNormAct2d):
        cls = nn.SyncBatchNorm if fused.sync else nn.BatchNorm2d
        extra = {"process_group": fused.process_group} if fused.sync else {}
    else:
        cls, extra = nn.InstanceNorm2d, {}
    norm = cls(fused.num_features, fused.eps, fused.momentum, fused.affine, fused.track_running_stats,
               device="meta", **extra)
    for name in ("weight", "bias"):
        setattr(norm, name, getattr(fused, name))
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        norm._buffers[name] = getattr(fused, name)
    return norm.train(fused.training)


def _activation(fused: nn.Module) -> nn.Module | None:
    if fused.activation == "relu":
        return nn.ReLU(inplace=True)
    if fused.activation == "leaky_relu":
        return nn.LeakyReLU(fused.negative_slope, inplace=True)
    return None


def to_reference(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Plain torch modules for every fused norm in `model` (a deep copy unless inplace).

    Each BatchNormAct2d becomes nn.BatchNorm2d (nn.SyncBatchNorm with its process group when
    sync=True), each InstanceNormAct2d nn.InstanceNorm2d, sharing the fused module's parameter
    and buffer tensors and its training flag; a ReLU / LeakyReLU (inplace=True) goes into the
    nn.Identity slot that follows it in its nn.Sequential, or, in a UnetGenerator, back to the
    head of the next level. The result has the same state_dict keys and computes the same
    numbers, with no genimg_fast module or op in it: what torch.export, ONNX or TorchScript
    take, and the inverse of convert().

    Args:
        model (nn.Module): the model; it may hold no fused module at all.
        inplace (bool, keyword-only): change `model` itself instead of a deep copy. Default: False.

    Returns:
        nn.Module: the plain-torch model.

    Raises:
        ValueError: a fused module with an activation that is not followed by an nn.Identity in
            its nn.Sequential (nor a U-Net level whose first slot is nn.Identity): the activation
            has no slot to go to without changing the keys.
    """
    if not inplace:
        model = copy.deepcopy(model)
    for parent in list(model.modules()):
        names = list(parent._modules)
        for i, name in enumerate(names):
            fused = parent._modules[name]
            if not isinstance(fused, (BatchNormAct2d, InstanceNormAct2d)):
                continue
            parent._modules[name] = _torch_norm(fused)
            activation = _activation(fused)
            if activation is None:
                continue
            following = parent._modules[names[i + 1]] if i + 1 < len(names) else None
            nested = getattr(following, "model", None)
            if isinstance(nested, nn.Sequential) and len(nested) and type(nested[0]) is nn.Identity:
                nested[0] = activation  # a U-Net level whose first LeakyReLU the norm before it took over
                continue
            if not isinstance(parent, nn.Sequential) or type(following) is not nn.Identity:
                raise ValueError(f"to_reference: {type(fused).__name__} '{name}' applies {fused.activation} but is "
                                 "not followed by the nn.Identity slot convert() leaves in an nn.Sequential, so its "
                                 "activation has no place to go without changing the state_dict keys")
            parent._modules[names[i + 1]] = activation
    return model
