"""How every model here is built: the reference architecture in plain torch layers (same order,
same keys, same initialization draws), then convert() swaps each Norm [+ activation] for the fused
module in place. `fused=False` keeps the plain layers (the reference itself)."""
from __future__ import annotations

from torch import nn

from genimg_fast.convert import convert
from genimg_fast.nn import InstanceNormAct2d

_STALE_INSTANCE_NORM_KEYS = ("running_mean", "running_var", "num_batches_tracked")


def _drop_stale_instance_norm_keys(model: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """junyanz's loader rule: old InstanceNorm checkpoints carry running statistics that a norm
    without track_running_stats does not have; drop them so strict loading works."""
    for name, module in model.named_modules():
        if isinstance(module, (nn.InstanceNorm2d, InstanceNormAct2d)) and not module.track_running_stats:
            for key in _STALE_INSTANCE_NORM_KEYS:
                state_dict.pop(f"{prefix}{name}.{key}" if name else f"{prefix}{key}", None)


def finish(model: nn.Module, fused: bool) -> nn.Module:
    model._register_load_state_dict_pre_hook(_drop_stale_instance_norm_keys, with_module=True)
    return convert(model, inplace=True) if fused else model


def check_image(x, channels: int, divisor: int, what: str, dims: int = 4) -> None:
    """Clear errors for inputs the architecture cannot take."""
    if x.dim() != dims:
        raise ValueError(f"{what}: expected a {dims}-D input (N, C, H, W), got shape {list(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(f"{what}: expected {channels} input channels, got {x.shape[1]} (shape {list(x.shape)})")
    h, w = x.shape[-2:]
    if h % divisor or w % divisor:
        raise ValueError(f"{what}: H and W must be divisible by {divisor}, got {h}x{w}")
