"""Plain-PyTorch per-element math of the fused losses (the references of csrc/losses/loss_math.h).

Each kind maps (a, b) -> (f(a, b), df/da) in the accumulation dtype; b is the target (a tensor
or a constant) and is ignored by the kinds that have none.
"""
from __future__ import annotations

import torch

# kind -> whether it compares against a target
KINDS = {
    "l1": True,            # |a - b|
    "mse": True,           # (a - b)^2
    "bce": True,           # torch's BCELoss on probabilities (log clamped at -100)
    "bce_logits": True,    # BCE with logits, stable for large |a|
    "linear": False,       # a (WGAN critic terms; the sign goes into the weight)
    "half_square": False,  # a^2 / 2 (the mu part of the VAE's KL divergence)
    "kl_logvar": False,    # (exp(a) - 1 - a) / 2 (the logvar part of the KL divergence)
}
# Kinds whose gradient does not depend on the input (zero second derivative): a double backward
# through a stored gradient of these is exact; for the others it is refused (see loss_terms.py).
LINEAR_GRADIENT_KINDS = ("l1", "linear")
BCE_EPSILON = 1e-12  # torch's clamp of p * (1 - p) in BCELoss's gradient


def element(kind: str, a: torch.Tensor, b: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    if kind == "l1":
        d = a - b
        return d.abs(), torch.sign(d)
    if kind == "mse":
        d = a - b
        return d * d, 2 * d
    if kind == "bce":
        value = (b - 1) * torch.log1p(-a).clamp_min(-100) - b * torch.log(a).clamp_min(-100)
        return value, (a - b) / ((1 - a) * a).clamp_min(BCE_EPSILON)
    if kind == "bce_logits":
        return a.clamp_min(0) - a * b + torch.log1p(torch.exp(-a.abs())), torch.sigmoid(a) - b
    if kind == "linear":
        return a, torch.ones_like(a)
    if kind == "half_square":
        return 0.5 * a * a, a
    if kind == "kl_logvar":
        e = torch.exp(a)
        return 0.5 * (e - 1 - a), 0.5 * (e - 1)
    raise ValueError(f"unknown loss kind {kind!r}")

