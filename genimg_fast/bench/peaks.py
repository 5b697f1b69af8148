"""The dense tensor-core peaks of the GPUs the suite knows, so that a row's achieved TFLOP/s can
be read as a share of what the card could do at most.

Dense means without 2:4 structured sparsity: NVIDIA's datasheets print the TF32 and BF16
tensor-core figures "with sparsity", twice the dense rate. The numbers below are those halved:
H100 SXM, PCIe and NVL from the NVIDIA H100 Tensor Core GPU datasheet (the SXM's unrounded
494.7 / 989.4 and the PCIe's 756 from the NVIDIA H100 Tensor Core GPU Architecture
whitepaper), H200 and H200 NVL from the NVIDIA H200 Tensor Core GPU datasheet. A GPU not
listed, or the CPU, has no peak: the share is left empty rather than guessed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DensePeak:
    """One card's dense tensor-core peaks, in TFLOP/s."""
    card: str
    tf32: float
    bf16: float


# First match wins: the NVL and PCIe boards name their form factor; the SXM boards report
# "NVIDIA H100 80GB HBM3" and "NVIDIA H200". \b keeps GH200 (another clock and power budget) and
# H800 out.
_KNOWN = (
    (r"\bH100\b.*\bNVL\b", DensePeak("H100 NVL", tf32=417.5, bf16=835.5)),
    (r"\bH100\b.*\bPCIe\b", DensePeak("H100 PCIe", tf32=378.0, bf16=756.0)),
    (r"\bH100\b.*\b(SXM|HBM3)\b", DensePeak("H100 SXM", tf32=494.7, bf16=989.4)),
    (r"\bH200\b.*\bNVL\b", DensePeak("H200 NVL", tf32=417.5, bf16=835.5)),
    (r"^NVIDIA H200( SXM.*| \d+GB.*)?$", DensePeak("H200 SXM", tf32=494.7, bf16=989.4)),
)


def dense_peak(gpu_name: str | None) -> DensePeak | None:
    """The peaks of the card torch.cuda.get_device_name() calls `gpu_name`; None for a card
    the table does not know, and for None (no GPU)."""
    if not gpu_name or re.search(r"\bMIG\b", gpu_name):  # a MIG slice has a fraction of the card's SMs
        return None
    for pattern, peak in _KNOWN:
        if re.search(pattern, gpu_name.strip(), flags=re.IGNORECASE):
            return peak
    return None


def device_peak(device: torch.device) -> DensePeak | None:
    """dense_peak of `device`'s GPU; None on a CPU."""
    return dense_peak(torch.cuda.get_device_name(device)) if device.type == "cuda" else None


def applicable_peak(peak: DensePeak | None, precision: str, tf32_allowed: bool) -> tuple[str, float] | None:
    """Which peak a row's precision ('fp32' or 'bf16') is measured against, as (name, TFLOP/s):
    bf16 autocast against BF16; fp32 against TF32 only when cuDNN may run the convolutions in
    TF32 (torch.backends.cudnn.allow_tf32), since otherwise the tensor cores' TF32 rate is not
    on offer. None when no peak applies."""
    if peak is None:
        return None
    if precision == "bf16":
        return "BF16", peak.bf16
    if precision == "fp32" and tf32_allowed:
        return "TF32", peak.tf32
    return None


def share_of_peak(tflops: float | None, peak_tflops: float | None) -> float | None:
    """Achieved over peak TFLOP/s (0.25 = a quarter of the peak); None without either."""
    if tflops is None or not peak_tflops:
        return None
    return tflops / peak_tflops
