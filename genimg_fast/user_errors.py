"""Which exceptions are the user's to fix rather than genimg_fast's bugs, and the one line the CLI
says for each: a mistake in what was asked for (a missing folder, an option out of range, a run
that cannot resume as asked, a command whose optional dependencies are not installed), or the
machine refusing a file (a full disk, a read-only file system, no permission). Everything else is
a bug and keeps its traceback."""
from __future__ import annotations

import errno

from genimg_fast.extras import MissingExtra

# Raised with a message meant for the user (ValueError, MissingExtra), or by a path the user gave that
# is not there. Not ImportError in general: one from inside genimg_fast is a bug.
MISTAKES = (ValueError, FileNotFoundError, NotADirectoryError, MissingExtra)

# OSErrors that say something about the machine or a path, not about the code writing to it.
REFUSALS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EEXIST,
                      errno.ENOTDIR, errno.EISDIR, errno.ENOENT, errno.EFBIG, errno.ENAMETOOLONG})


def is_user_error(exc: BaseException) -> bool:
    """True for the exceptions the CLI reports in one line with exit status 2."""
    if isinstance(exc, MISTAKES):
        return True
    return isinstance(exc, OSError) and exc.errno in REFUSALS


def one_line(exc: BaseException, where: str | None = None) -> str:
    """The exception in one line. An OSError from the system is '<path>: <reason>'; one raised
    while writing to an open file carries no path, so `where` (e.g. the output folder) stands in."""
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        path = exc.filename if exc.filename is not None else (f"writing in {where}" if where else None)
        reason = exc.strerror.lower()
        return f"{path}: {reason}" if path is not None else reason
    return " ".join(str(exc).split())  # a message over several lines, on one
