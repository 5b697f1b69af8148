"""Loading a file torch.save wrote without ever running code from it, with one-line errors.

Checkpoints and training states are shared and downloaded, and a pickle can name any Python
callable to run at load: every file here is loaded with weights_only=True, which admits tensors
and plain data (numbers, strings, lists, tuples, dicts) only. A file that is empty, cut off,
of another format, or that names Python code, is a ValueError naming the path and what is wrong
(the CLI prints it as one line), never a traceback from inside torch.load.
"""
from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch


def load_torch_file(path: str | Path, what: str, *, mmap: bool = False) -> Any:
    """torch.load(path, weights_only=True) onto the CPU. what: the kind of file expected, for the
    messages ('checkpoint', 'training state'). mmap maps a zip-format file instead of reading it.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: the file cannot be read, is not a complete torch.save file, or holds more
            than tensors and plain data.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty, not a {what} (a write that never finished?)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and zipfile.is_zipfile(path))
    except pickle.UnpicklingError as exc:
        code = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if code:
            raise ValueError(f"{path}: refused: besides tensors and plain data it names Python code ({code.group(1)}) "
                             f"that loading would run; a {what} holds no code") from None
        raise ValueError(f"{path}: not a {what}: not a file torch.save wrote") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    except Exception as exc:  # torch.load's many ways to fail on a cut-off or foreign file
        raise ValueError(f"{path}: not a {what}: cut off, or not a file torch.save wrote "
                         f"({type(exc).__name__})") from None
