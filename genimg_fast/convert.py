"""Swap torch norm + activation pairs in any model for the fused modules; fold BN into convs.

convert() keeps every state_dict key (the fused modules hold the norms' own parameters and
buffers, the activations they absorb become nn.Identity, which has none), so checkpoints load
both ways and the numbers stay the same. fold_batchnorm() is for inference only.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from genimg_fast.nn import BatchNormAct2d, InstanceNormAct2d

# exact types: a subclass may have changed forward, which the fused module would not reproduce
_FUSED_FOR = {nn.BatchNorm2d: BatchNormAct2d, nn.SyncBatchNorm: BatchNormAct2d, nn.InstanceNorm2d: InstanceNormAct2d}
_FOLDABLE_NORMS = (nn.BatchNorm2d, nn.SyncBatchNorm, BatchNormAct2d)


def _sequentials(model: nn.Module) -> list[nn.Sequential]:
    return [m for m in model.modules() if isinstance(m, nn.Sequential)]


def _activation_of(module: nn.Module) -> tuple[str, float] | None:
    if type(module) is nn.ReLU:
        return "relu", 0.01
    if type(module) is nn.LeakyReLU:
        return "leaky_relu", module.negative_slope
    return None


def _takes_4d_input(seq: nn.Sequential, names: list[str], i: int) -> bool:
    """nn.SyncBatchNorm takes input of any rank (convert_sync_batchnorm makes it from BatchNorm1d and
    3d too); the fused module is 2-D only, so only one right after a 2-D convolution is fused."""
    return i > 0 and type(seq._modules[names[i - 1]]) in (nn.Conv2d, nn.ConvTranspose2d)


def _fuse_sequential(seq: nn.Sequential) -> None:
    names = list(seq._modules)
    for i, name in enumerate(names):
        fused_cls = _FUSED_FOR.get(type(seq._modules[name]))
        if fused_cls is None:
            continue
        if type(seq._modules[name]) is nn.SyncBatchNorm and not _takes_4d_input(seq, names, i):
            continue
        following = _activation_of(seq._modules[names[i + 1]]) if i + 1 < len(names) else None
        activation, slope = following or ("identity", 0.01)
        seq._modules[name] = fused_cls.from_norm(seq._modules[name], activation, slope)
        if following is not None:
            seq._modules[names[i + 1]] = nn.Identity()  # keeps the indices (and so the state_dict keys)


def convert(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """In every nn.Sequential: BatchNorm2d / SyncBatchNorm / InstanceNorm2d [+ ReLU | LeakyReLU] ->
    BatchNormAct2d / InstanceNormAct2d [+ nn.Identity]; a SyncBatchNorm only right after a Conv2d or
    ConvTranspose2d (elsewhere its input may be 2-D or 5-D). Returns a deep copy unless inplace.

    Only those exact classes are converted (a subclass may compute something else), and only
    inside an nn.Sequential (elsewhere the activation's place is unknown). The fused modules
    hold the norms' own parameter and buffer tensors, and nn.Identity has none, so the
    state_dict keys, the numbers and the training flags stay the same.

    Args:
        model (nn.Module): the model.
        inplace (bool, keyword-only): convert `model` itself instead of a deep copy. Default: False.

    Returns:
        nn.Module: the converted model (`model` itself when inplace).
    """
    if not inplace:
        model = copy.deepcopy(model)
    for seq in _sequentials(model):
        _fuse_sequential(seq)
    return model


def sync_batchnorm(model: nn.Module, process_group=None, *, inplace: bool = False) -> nn.Module:
    """convert(), then synchronize the batch statistics of every BatchNormAct2d over process_group
    (the default group when None). BatchNorm2d layers outside any nn.Sequential are made
    BatchNormAct2d (identity activation, same keys) so that none is left unsynchronized.

    The fused counterpart of nn.SyncBatchNorm.convert_sync_batchnorm. Synchronization takes
    effect in training while torch.distributed is initialized with more than one process in
    the group; otherwise the modules compute plain batch norm. InstanceNorm2d layers are
    converted but not synchronized (their statistics are per sample).

    Args:
        model (nn.Module): the model.
        process_group (ProcessGroup, optional): the group to share statistics with; None: the
            default (world) group.
        inplace (bool, keyword-only): change `model` itself instead of a deep copy. Default: False.

    Returns:
        nn.Module: the model, every BatchNormAct2d with sync=True.
    """
    model = convert(model, inplace=inplace)
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is nn.BatchNorm2d:
                setattr(parent, name, BatchNormAct2d.from_norm(child))
    for module in model.modules():
        if isinstance(module, BatchNormAct2d):
            module.sync, module.process_group = True, process_group
    return model


# ---- folding batch norm into the preceding convolution (inference) ----

def _fold(conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.Module) -> None:
    acc = torch.promote_types(conv.weight.dtype, torch.float32)
    with torch.no_grad():
        scale = torch.rsqrt(bn.running_var.to(acc) + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight.to(acc)
        shift = -bn.running_mean.to(acc) * scale
        if bn.bias is not None:
            shift = shift + bn.bias.to(acc)
        weight = conv.weight.to(acc)
        if isinstance(conv, nn.ConvTranspose2d):
            # weight is (in, out/groups, kh, kw): output channel g*(out/groups)+j is [group g's rows, j]
            groups = conv.groups
            grouped = weight.reshape(groups, -1, *weight.shape[1:])
            weight = (grouped * scale.reshape(groups, 1, -1, 1, 1)).reshape(weight.shape)
        else:  # (out, in/groups, kh, kw)
            weight = weight * scale.reshape(-1, 1, 1, 1)
        bias = shift if conv.bias is None else conv.bias.to(acc) * scale + shift
        conv.weight = nn.Parameter(weight.to(conv.weight.dtype), requires_grad=conv.weight.requires_grad)
        conv.bias = nn.Parameter(bias.to(conv.weight.dtype), requires_grad=conv.weight.requires_grad)


def _activation_after_fold(bn: nn.Module) -> nn.Module:
    if isinstance(bn, BatchNormAct2d) and bn.activation == "relu":
        return nn.ReLU()
    if isinstance(bn, BatchNormAct2d) and bn.activation == "leaky_relu":
        return nn.LeakyReLU(bn.negative_slope)
    return nn.Identity()


def fold_batchnorm(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Inference: in every nn.Sequential, Conv2d/ConvTranspose2d directly followed by a batch norm with
    running statistics gets the norm folded into its weight and bias; the norm is replaced by its
    activation. The model must be in eval mode (training uses batch statistics, which cannot be folded).

    The norms folded are nn.BatchNorm2d, nn.SyncBatchNorm and BatchNormAct2d (exact classes);
    a fused module's ReLU / LeakyReLU becomes a torch activation in its place, anything else
    nn.Identity, so the state_dict keys change: the norms' entries go and every folded
    convolution gains a bias. The folding is computed in float32 (float64 for float64 weights),
    so outputs agree with the original up to rounding.

    Args:
        model (nn.Module): the model, in eval mode.
        inplace (bool, keyword-only): fold into `model` itself instead of a deep copy. Default: False.

    Returns:
        nn.Module: the folded model.

    Raises:
        RuntimeError: the model, or a norm to fold, is in training mode.
    """
    if model.training:
        raise RuntimeError("fold_batchnorm: the model is in training mode; call model.eval() first "
                           "(batch norm uses batch statistics in training, which cannot be folded)")
    if not inplace:
        model = copy.deepcopy(model)
    for seq in _sequentials(model):
        names = list(seq._modules)
        for conv_name, bn_name in zip(names, names[1:]):
            conv, bn = seq._modules[conv_name], seq._modules[bn_name]
            if type(conv) not in (nn.Conv2d, nn.ConvTranspose2d) or type(bn) not in _FOLDABLE_NORMS:
                continue
            if bn.training:
                raise RuntimeError(f"fold_batchnorm: {bn_name} ({type(bn).__name__}) is in training mode; "
                                   "call .eval() on it first")
            if bn.running_mean is None or bn.running_var is None:
                continue  # no running statistics: it normalizes with batch statistics even in eval mode
            _fold(conv, bn)
            seq._modules[bn_name] = _activation_after_fold(bn)
    return model
