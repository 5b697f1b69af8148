"""Checkpoints that survive interruption: every file is written to a temporary name beside its
destination, flushed to disk, then renamed over it, so a crash or Ctrl-C at any moment leaves
the previous complete file or the new one, never half of one. Plus the random-number state a
resumed run needs to continue exactly where it stopped."""
from __future__ import annotations

import contextlib
import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from genimg_fast._safe_load import load_torch_file


def _usual_permissions(fd: int) -> None:
    """mkstemp makes files only their owner can read; a checkpoint gets what open() would give."""
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)


def atomic_write(path: str | Path, write: Callable[[IO], None], mode: str) -> None:
    """`write(f)` into a temporary file beside `path` (opened with `mode`), flushed to disk, then
    renamed over `path`; on any error the temporary file is removed and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        _usual_permissions(fd)
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_stale_temporaries(folder: str | Path) -> None:
    """The temporary files a killed process (SIGKILL, power loss) left in `folder` before it could
    rename or remove them: call when a run starts there, before anything writes."""
    for stale in Path(folder).glob(".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            if stale.is_file():
                stale.unlink()


def atomic_save(obj: Any, path: str | Path) -> None:
    atomic_write(path, lambda f: torch.save(obj, f), "wb")


def atomic_write_text(text: str, path: str | Path) -> None:
    atomic_write(path, lambda f: f.write(text), "w")


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():  # the GPUs both runs have (another machine may have fewer)
        for index, gpu_state in enumerate(state["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(gpu_state, index)


STATE_KEYS = ("config", "recipe", "epoch", "batch_in_epoch", "step", "processes")


def _checked_state(state: Any, path: Path) -> dict[str, Any]:
    if not isinstance(state, dict) or not all(key in state for key in STATE_KEYS):
        raise ValueError(f"{path}: not a genimg_fast training state (it needs {', '.join(STATE_KEYS)})")
    if not isinstance(state["config"], dict):
        raise ValueError(f"{path}: not a genimg_fast training state (its config is not a dict)")
    return state


def _state_path(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no training state to resume from (was the run started with this --out?)")
    return path


def saved_run_config(path: str | Path) -> dict[str, Any]:
    """The config record of a saved training state, its tensors mapped rather than read (the CLI
    looks at it before the run, which then loads the whole state)."""
    path = _state_path(path)
    return _checked_state(load_torch_file(path, "training state", mmap=True), path)["config"]


def load_training_state(path: str | Path) -> dict[str, Any]:
    """A resumable state, loaded as tensors and plain data only (_safe_load.py): a state that
    names Python code is refused, not run."""
    path = _state_path(path)
    return _checked_state(load_torch_file(path, "training state"), path)
