"""junyanz/pytorch-CycleGAN-and-pix2pix's norm choice and weight initialization (networks.py)."""
from __future__ import annotations

import functools

from torch import nn

from genimg_fast.nn import BatchNormAct2d

NORMS = ("batch", "instance", "none")
INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")


def get_norm_layer(norm_type: str = "instance"):
    """junyanz's networks.get_norm_layer: a norm constructor by name.

    Args:
        norm_type (str): 'batch' (affine nn.BatchNorm2d with running statistics), 'instance'
            (nn.InstanceNorm2d without affine parameters or running statistics: no state_dict
            keys) or 'none' (nn.Identity). Default: 'instance'.

    Returns:
        A callable taking the channel count and returning the norm module: a functools.partial
        of the torch class, or, for 'none', a function returning nn.Identity().

    Raises:
        ValueError: an unknown norm_type (junyanz's raises NotImplementedError).
    """
    if norm_type == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm_type == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm_type == "none":
        return lambda num_features: nn.Identity()
    raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm_type!r}")


def uses_bias(norm_layer) -> bool:
    """Convolutions carry a bias exactly when the norm is instance norm."""
    if isinstance(norm_layer, functools.partial):
        return norm_layer.func is nn.InstanceNorm2d
    return norm_layer is nn.InstanceNorm2d


def init_weights(net: nn.Module, init_type: str = "normal", init_gain: float = 0.02) -> nn.Module:
    """junyanz's networks.init_weights, in place: Conv/Linear weights by init_type, biases 0;
    BatchNorm weights N(1, init_gain), biases 0 (fused BatchNormAct2d included, so it works on
    our models as on the reference's), drawn in module order like the reference's.

    Args:
        net (nn.Module): the network; its submodules whose class name contains 'Conv' or
            'Linear' and that have a weight, or contains 'BatchNorm2d', and its BatchNormAct2d
            modules are initialized.
        init_type (str): 'normal' (N(0, init_gain)), 'xavier' (xavier_normal_, gain init_gain),
            'kaiming' (kaiming_normal_, fan_in, init_gain unused) or 'orthogonal' (gain
            init_gain). Default: 'normal'.
        init_gain (float): see init_type. Default: 0.02.

    Returns:
        nn.Module: net itself (junyanz's returns None).

    Raises:
        ValueError: an unknown init_type, before anything is drawn.
    """
    if init_type not in INIT_TYPES:
        raise ValueError(f"init_type must be one of {', '.join(INIT_TYPES)}, got {init_type!r}")

    def init_func(m: nn.Module) -> None:
        name = type(m).__name__
        if hasattr(m, "weight") and ("Conv" in name or "Linear" in name):
            if init_type == "normal":
                nn.init.normal_(m.weight.data, 0.0, init_gain)
            elif init_type == "xavier":
                nn.init.xavier_normal_(m.weight.data, gain=init_gain)
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(m.weight.data, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(m.weight.data, gain=init_gain)
            if getattr(m, "bias", None) is not None:
                nn.init.constant_(m.bias.data, 0.0)
        elif "BatchNorm2d" in name or isinstance(m, BatchNormAct2d):  # a fused model's norms too
            nn.init.normal_(m.weight.data, 1.0, init_gain)
            nn.init.constant_(m.bias.data, 0.0)

    net.apply(init_func)
    return net
