"""What a benchmark result must carry to be comparable: device, versions, commit."""
from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

import torch

import genimg_fast


def current_commit() -> str:
    """GENIMG_FAST_COMMIT if set (a copied tree without .git), else `git rev-parse`, else 'unknown'."""
    if os.environ.get("GENIMG_FAST_COMMIT"):
        return os.environ["GENIMG_FAST_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, check=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=Path(__file__).resolve().parent, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def gpu_driver_version() -> str | None:
    """The NVIDIA driver's version (nvidia-smi, else the kernel module's banner); None without one."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return driver_from_banner(Path("/proc/driver/nvidia/version").read_text())
    except OSError:
        return None


def driver_from_banner(text: str) -> str | None:
    """'NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06  Sun Jul 27 ...' -> '580.65.06'."""
    match = re.search(r"Kernel Module(?: for \w+)?\s+(\d[\w.]*)", text)
    return match.group(1) if match else None


def environment_record(device: torch.device) -> dict[str, Any]:
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": current_commit(),
        "device": device_description(device),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "genimg_fast": genimg_fast.__version__,
        "gpu_driver": gpu_driver_version() if device.type == "cuda" else None,
        "backend": genimg_fast.backend_info(),  # torch's CUDA and cuDNN versions, the kernels' build
    }
