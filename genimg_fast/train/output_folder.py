"""--out checked before a run starts: a folder that can be made and written to, so a run does not
fail at its first checkpoint, or with a traceback, over a path the user gave."""
from __future__ import annotations

import os
from pathlib import Path


def check_output_folder(out: str | Path) -> None:
    """Make `out` (with its parents) if it does not exist; a ValueError naming it when it is a
    file, cannot be made (read-only file system, no permission) or cannot be written to."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {path}: is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and Path(exc.filename) != path else ""
        raise ValueError(f"--out {path}: cannot make the folder{where}: {(exc.strerror or str(exc)).lower()}") from None
    # the files are written to temporaries in the folder, then renamed: both need write and search
    if not os.access(path, os.W_OK | os.X_OK):
        reason = "read-only file system" if _read_only_mount(path) else "permission denied"
        raise ValueError(f"--out {path}: cannot write in the folder: {reason}")


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs (Windows): call it a permission problem
        return False
