"""What a benchmark result must carry to be comparable: device, versions, commit."""
from __future__ import annotations

import datetime
import os
import platform
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


def environment_record(device: torch.device) -> dict[str, Any]:
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": current_commit(),
        "device": device_description(device),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "genimg_fast": genimg_fast.__version__,
        "backend": genimg_fast.backend_info(),
    }
