"""Ways to lay out a test tensor in memory, each handled by the ops without a hidden copy."""
from __future__ import annotations

import torch


def make_layout(values: torch.Tensor, layout: str) -> torch.Tensor:
    """Return a tensor equal to `values` (shape N, C, H, W) stored as `layout`."""
    if layout == "contiguous":
        return values.clone()
    if layout == "channels_last":
        return values.clone().to(memory_format=torch.channels_last)
    if layout == "transposed":  # a permuted, dense view
        return values.transpose(2, 3).contiguous().transpose(2, 3)
    if layout == "sliced":  # gaps between rows and an odd storage offset: not dense, misaligned
        n, c, h, w = values.shape
        padded = torch.empty(n, c, h, w + 3, dtype=values.dtype, device=values.device)
        padded.normal_()
        view = padded[..., 1:w + 1]
        view.copy_(values)
        return view
    raise ValueError(layout)


LAYOUTS = ("contiguous", "channels_last", "transposed", "sliced")
