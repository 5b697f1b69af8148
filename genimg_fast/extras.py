"""Optional dependencies: the modules each command imports beyond torch, and how to install them.

The base install needs only torch. A command that needs more checks for it before any work (see
`require`), so a missing module is one clear line at the start, not a traceback after the run
has written half its output. Modules are looked up with importlib.util.find_spec, not imported:
the check stays cheap and imports nothing heavy.
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Needs:
    """What a command needs: the top-level modules it imports and the command that installs them."""

    modules: tuple[str, ...]
    install: str


IMAGES = "pip install 'genimg-fast[images]'"
TRAIN = "pip install 'genimg-fast[train]'"

# PIL comes with torchvision (pillow); it is listed because the image code imports it directly.
NEEDS = {
    "train": Needs(("torchvision", "PIL", "tqdm", "matplotlib"), TRAIN),
    "sample": Needs(("torchvision", "PIL"), IMAGES),
    "translate": Needs(("torchvision", "PIL"), IMAGES),
    # matplotlib alone is enough for the chart: no need for the train extra's torchvision
    "bench --plot": Needs(("matplotlib",), "pip install matplotlib"),
}


class MissingExtra(ImportError):
    """A command's optional dependencies are not installed; the message names them and the fix."""


def is_installed(module: str) -> bool:
    """Whether the top-level `module` can be imported, found without importing it."""
    if sys.modules.get(module) is not None:  # already imported (its __spec__ may be None: find_spec would fail)
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder refusing it, or a module without a spec
        return False


def missing(what: str) -> list[str]:
    """The modules `what` (a key of NEEDS) needs that are not installed, in NEEDS' order."""
    return [module for module in NEEDS[what].modules if not is_installed(module)]


def require(what: str) -> None:
    """Raise MissingExtra when `what` (a key of NEEDS: a command, or a command and its option)
    needs modules that are not installed; the message is e.g. "needs tqdm (not installed):
    pip install 'genimg-fast[train]'", or "--plot needs ..." for an option."""
    absent = missing(what)
    if absent:
        option = what.partition(" ")[2]
        subject = f"{option} needs" if option else "needs"
        raise MissingExtra(f"{subject} {', '.join(absent)} (not installed): {NEEDS[what].install}")
