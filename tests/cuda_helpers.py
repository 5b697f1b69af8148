"""Helpers for the CUDA kernel tests."""
from __future__ import annotations

import torch


def poison_allocator(nbytes: int, copies: int = 4) -> None:
    """Make the caching allocator hand out NaN-filled memory next: blocks of exactly the
    outputs' size (best fit picks them), filled with 0xFF bytes (NaN in every float format),
    so an output element the kernel forgets to write cannot pass as a lucky zero."""
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    blocks = [torch.full((max(nbytes, 1),), 255, dtype=torch.uint8, device="cuda") for _ in range(copies)]
    del blocks
