"""Which of the three implementations serves a call of a fused module or loss.

- `kernels`: the CUDA kernels, for CUDA tensors where they are built for this GPU and the
  kernel paths the op family needs are verified (or opted in: _kernel_paths.py).
- `fallback`: torch's own native ops, composed the fastest exact way (F.batch_norm /
  F.instance_norm with the activation in place, torch's loss functions), with torch's autograd.
  Everywhere the kernels do not serve: CPU, CUDA without kernels or with a path still waiting.
- `reference`: the float-exact PyTorch references of the fused ops, the test oracle. Only when
  GENIMG_FAST_IMPL=reference asks for it; never a default.

The choice for CUDA tensors is made once per family (it may ask the GPU its capability) and
cached; forget_choices() drops the cache when the enabled kernel paths change.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

KERNELS, FALLBACK, REFERENCE = "kernels", "fallback", "reference"

# family -> the kernel paths that must run for its kernels to serve (others have a way out
# inside the kernels: the block and cluster norm paths give way to the tiles, the running-
# statistics kernel to torch's tensor ops)
FAMILY_PATHS = {
    "norm": ("norm_tiles",),
    "loss_terms": ("loss_terms", "scale_term_stored_grads"),
    "l1_loss": ("l1_loss", "scale_one_stored_grad"),
}

_cuda_choice: dict[str, tuple[str, str]] = {}  # family -> (implementation, why)
_reference_forced: bool | None = None
_forced: str | None = None  # tests: one implementation for every call (forced())


def _reference_requested() -> bool:
    global _reference_forced
    if _reference_forced is None:
        from genimg_fast import _backend
        _reference_forced = _backend.requested_impl() == "reference"
    return _reference_forced


def forget_choices() -> None:
    """Choose afresh on the next call (the kernels were loaded, or their enabled paths changed)."""
    global _reference_forced
    _cuda_choice.clear()
    _reference_forced = None


_REFERENCE_ASKED = (REFERENCE, "GENIMG_FAST_IMPL=reference asks for the exact references")


def _choose_for_cuda(family: str) -> tuple[str, str]:
    from genimg_fast import _backend
    if _reference_requested():
        return _REFERENCE_ASKED
    reason = _backend.unusable_reason()
    if reason is not None:
        return FALLBACK, f"the CUDA kernels cannot run: {reason}"
    enabled = set(_backend.enabled_kernel_paths())
    waiting = [path for path in FAMILY_PATHS[family] if path not in enabled]
    if waiting:
        return FALLBACK, (f"the {', '.join(waiting)} kernel path{'s' if len(waiting) > 1 else ''} may not run "
                          "(see backend_info()['kernel_paths'])")
    return KERNELS, "the CUDA kernels are built for this GPU and their paths are verified"


def cuda_choice(family: str) -> tuple[str, str]:
    """(implementation, why) for CUDA tensors of this op family."""
    choice = _cuda_choice.get(family)
    if choice is None:
        choice = _cuda_choice[family] = _choose_for_cuda(family)
    return choice


def implementation(x: torch.Tensor, family: str) -> str:
    """The implementation that serves `family` ("norm", "loss_terms" or "l1_loss") for x's device."""
    if _forced is not None:
        return _forced
    if x.is_cuda:
        choice = _cuda_choice.get(family)
        return (choice or cuda_choice(family))[0]
    return REFERENCE if _reference_requested() else FALLBACK


@contextlib.contextmanager
def forced(impl: str) -> Iterator[None]:
    """Every call in the block takes `impl`, whatever the device: tests run the kernel path's host
    code on CPU tensors this way (the ops' CPU slot holds their references)."""
    global _forced
    if impl not in (KERNELS, FALLBACK, REFERENCE):
        raise ValueError(f"impl must be {KERNELS!r}, {FALLBACK!r} or {REFERENCE!r}, got {impl!r}")
    before, _forced = _forced, impl
    try:
        yield
    finally:
        _forced = before


def describe(device: torch.device | str) -> str:
    """One line: what serves the fused modules and losses on `device`, and why."""
    device = torch.device(device)
    if _reference_requested():
        return "genimg_fast runs its exact references (GENIMG_FAST_IMPL=reference): the test oracle, not a fast path"
    if device.type != "cuda":
        return f"genimg_fast runs torch's own ops on {device.type} (the fallback: no kernels run there)"
    choices = {family: cuda_choice(family) for family in FAMILY_PATHS}
    if all(impl == KERNELS for impl, _ in choices.values()):
        return "genimg_fast runs its CUDA kernels"
    waiting = {why for impl, why in choices.values() if impl != KERNELS}
    served = ", ".join(family for family, (impl, _) in choices.items() if impl == KERNELS)
    return ("genimg_fast runs " + (f"its CUDA kernels for {served} and " if served else "")
            + f"torch's own ops for the rest: {'; '.join(sorted(waiting))}")


def report() -> dict[str, Any]:
    """backend_info()'s `implementation`: what serves CPU and CUDA tensors, per family, and why."""
    if _reference_requested():
        cpu = _REFERENCE_ASKED
    else:
        cpu = (FALLBACK, "no kernels run on the CPU: torch's own ops serve")
    cuda = {family: cuda_choice(family) for family in FAMILY_PATHS}
    return {"cpu": {"impl": cpu[0], "why": cpu[1]},
            "cuda": {family: {"impl": impl, "why": why} for family, (impl, why) in cuda.items()}}
