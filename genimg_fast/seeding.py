"""Seeds derived from a run's seed (per epoch, item, stream, network): whatever integer the
derivation gives, folded into the range torch.Generator.manual_seed accepts, so no seed the
options accept can overflow (`--seed 2000000000` made ((seed * 7919 + epoch) * 1000003 + index)
pass 2**63). Values already in range are kept, so the draws of the usual seeds stay as they were."""
from __future__ import annotations

import torch

SEED_LIMIT = 2**63  # seeds are 0 .. SEED_LIMIT - 1


def derived_seed(value: int) -> int:
    return value % SEED_LIMIT


def seeded_generator(value: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on `device` seeded with derived_seed(value)."""
    return torch.Generator(device=device).manual_seed(derived_seed(value))
