"""One run per output folder. A run holds an OS lock on a file in its --out for as long as it
lives, so a second run into that folder is refused while the first is alive; the OS drops the
lock when the process ends in any way (kill -9 included), so no stale lock is ever left behind.
A new run is also refused over a folder that already holds a run, unless the user resumes it
or asks to overwrite it: starting afresh would empty its log and reset its state."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".genimg-fast.lock"
STATE_FILE = "training_state.pt"
LOG_FILE = "losses.jsonl"

try:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
except ImportError:  # Windows: a byte-range lock, dropped by the OS with the process as well
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True


def holds_a_run(out: Path) -> list[str]:
    """The files that mark `out` as a run's folder: its resumable state, or a log with lines in it
    (a run killed before its first save has only that)."""
    marks = []
    if (out / STATE_FILE).is_file():
        marks.append(STATE_FILE)
    log = out / LOG_FILE
    if log.is_file() and log.stat().st_size > 0:
        marks.append(LOG_FILE)
    return marks


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:  # where the lock also bars reading
        return ""


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[int]:
    """The folder's lock file, locked by this process (a ValueError naming the folder when another
    live run holds it); released on leaving."""
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try_lock(fd):
            holder = _read_holder(fd)
            raise ValueError(f"--out {out}: another training run is writing there"
                             + (f" (process {holder})" if holder.isdigit() else "")
                             + "; wait for it to end or choose another --out")
        yield fd
    finally:
        os.close(fd)  # drops the lock


def _check_start(out: Path, resume: bool, overwrite: bool) -> None:
    marks = holds_a_run(out)
    if marks and not resume and not overwrite:
        raise ValueError(f"--out {out}: already holds a training run ({', '.join(marks)}); --resume continues it, "
                         "--overwrite starts afresh in its place, or choose another --out")


def check_output_folder_free(out: str | Path, resume: bool, overwrite: bool) -> None:
    """What claim_output_folder would refuse, checked without holding or changing anything: for a
    command line to refuse before it starts. (The run's own claim checks again.)"""
    out = Path(out)
    if out.is_dir():
        with _locked(out):
            _check_start(out, resume, overwrite)


@contextlib.contextmanager
def claim_output_folder(out: str | Path, resume: bool, overwrite: bool) -> Iterator[None]:
    """Hold `out` for one run: a ValueError naming the folder when a live run holds it, or when it
    holds a run and neither `resume` nor `overwrite` is set. With `overwrite`, the old run's
    resumable state goes at once (a kill before the new run's first save must not resume the old
    one); its other files are replaced as the new run writes them."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out) as fd:
        _check_start(out, resume, overwrite)
        if overwrite and not resume:
            with contextlib.suppress(FileNotFoundError):
                (out / STATE_FILE).unlink()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, str(os.getpid()).encode())  # for the message a second run gets
        yield
