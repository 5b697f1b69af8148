"""Whether a run captures its training iteration in one CUDA graph (--cuda-graphs auto|on|off).

A captured iteration is replayed by one launch instead of hundreds, which is most of an eager
step's cost at these models' sizes, and computes exactly what the eager iteration computes. So
'auto' (the default) captures every run that can be captured; what cannot be:
  - a run off the GPU (CUDA graphs are CUDA's);
  - several processes (the data-parallel gradient exchange runs between the backward and the
    optimizer step, outside any one process's graph);
  - --amp fp16 (torch's gradient scaler reads whether a gradient overflowed on the host, to skip
    that step; bf16 needs no scaler and is captured);
  - --compile (torch.compile's code manages its own launches and recompiles; one of the two).
'on' refuses such a run with the same reason; 'off' never captures.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class CUDAGraphsChoice:
    """enabled: whether the iterations are captured; reason: why not ('' when they are)."""
    enabled: bool
    reason: str = ""

    def describe(self) -> str:
        """One line for the run's header: 'on', or 'off (reason)'."""
        return "on" if self.enabled else f"off ({self.reason})"


def check_mode(mode: object) -> None:
    if mode not in MODES:
        raise ValueError(f"cuda_graphs must be 'auto', 'on' or 'off', got {mode!r}")


def obstacle(options, device: torch.device, processes: int) -> str | None:
    """Why this run's iteration cannot be captured, or None. options: a RunOptions."""
    if device.type != "cuda":
        return f"the run is on {device.type}, not a CUDA GPU"
    if processes > 1:
        return f"{processes} processes: the data-parallel gradient exchange is not captured"
    if options.amp == "fp16":
        return "--amp fp16: its gradient scaler decides on the host whether to skip a step (--amp bf16 is captured)"
    if options.compile:
        return "--compile: torch.compile's code is not captured into the iteration's graph"
    return None


def choose_cuda_graphs(options, device: torch.device, processes: int = 1) -> CUDAGraphsChoice:
    """The run's choice from options.cuda_graphs ('auto', 'on' or 'off'); 'on' where the run
    cannot be captured raises ValueError with the reason."""
    check_mode(options.cuda_graphs)
    if options.cuda_graphs == "off":
        return CUDAGraphsChoice(False, "--cuda-graphs off")
    why = obstacle(options, device, processes)
    if why is None:
        return CUDAGraphsChoice(True)
    if options.cuda_graphs == "on":
        raise ValueError(f"--cuda-graphs on cannot capture this run: {why}")
    return CUDAGraphsChoice(False, why)
