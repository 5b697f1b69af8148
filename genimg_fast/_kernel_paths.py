"""Which kernel paths may run: the verified ones, and waiting ones only when opted in.

A kernel path is one set of CUDA kernels the ops choose between: the norm tile kernels, the
block and cluster norm training kernels (one block, or one cluster of blocks, a group), the
running-statistics update, and each loss kernel. A path is verified when the record of kernels
that passed their CUDA tests on a GPU (verified_kernels.json, written from a `make gpu-check`
run) lists it; where this build's own fingerprints were taken with the record's toolchain, the
fingerprints must agree too. Every other path waits, off: its work goes to the next path that
may run, else to the op's reference, unless GENIMG_FAST_UNVERIFIED_KERNELS opts it in (`1` or
`all`: every path; or a comma-separated list of names). docs/kernel-verification.md has the
details.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

OPT_IN_ENV = "GENIMG_FAST_UNVERIFIED_KERNELS"
RECORD_FILE = Path(__file__).with_name("verified_kernels.json")
BUILD_FINGERPRINTS_FILE = Path(__file__).with_name("_kernel_fingerprints.json")  # written by setup.py

logger = logging.getLogger("genimg_fast")


@dataclass(frozen=True)
class PathStatus:
    """One kernel path's verification state, as backend_info() reports it."""

    state: str  # "verified" or "waiting"
    runs: bool  # verified, or opted in
    fingerprint: str | None  # this build's, where it was taken
    verified_by: dict[str, str] | None  # the record's entry: commit, gpu, results, date
    why: str


def opted_in(names: list[str], environ=None) -> set[str]:
    """The waiting paths GENIMG_FAST_UNVERIFIED_KERNELS opts in."""
    value = (os.environ if environ is None else environ).get(OPT_IN_ENV, "").strip()
    if value in ("", "0"):
        return set()
    if value.lower() in ("1", "all"):
        return set(names)
    chosen = {name.strip() for name in value.split(",") if name.strip()}
    unknown = sorted(chosen - set(names))
    if unknown:
        raise ValueError(f"{OPT_IN_ENV} names no kernel path {', '.join(unknown)}: use 1 (all) or some of "
                         f"{', '.join(names)}")
    return chosen


def read_json(path: Path) -> tuple[dict[str, Any], str | None]:
    """A JSON object from `path`, or {} and why not."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}, f"{path.name} is missing"
    except (OSError, ValueError) as exc:
        return {}, f"{path} is unreadable: {exc}"
    if not isinstance(data, dict):
        return {}, f"{path} does not hold a JSON object"
    return data, None


def path_statuses(names: list[str], record: dict[str, Any], build: dict[str, Any],
                  opt_in: set[str]) -> dict[str, PathStatus]:
    """Each path's status from the record of verified paths and this build's fingerprints."""
    entries = record.get("paths") or {}
    mine = build.get("paths") or {}
    same_toolchain = bool(mine) and build.get("toolchain") == record.get("toolchain")
    statuses = {}
    for name in names:
        entry = entries.get(name)
        fingerprint = (mine.get(name) or {}).get("fingerprint")
        if entry is None:
            verified, why = False, "waiting: no GPU check has passed this path's device code"
        elif fingerprint is not None and fingerprint == entry.get("fingerprint"):
            verified, why = True, _verified_on(entry)
        elif same_toolchain:
            verified, why = False, (f"waiting: its device code ({fingerprint}) differs from the code verified on "
                                    f"{entry.get('gpu')} ({entry.get('fingerprint')})")
        else:  # another toolchain's code, or none taken: the record stands for the source
            verified = True
            why = (_verified_on(entry) + "; this build's device code was not compared: "
                   + (f"it was built with {build.get('toolchain')}, the record with {record.get('toolchain')}"
                      if mine else build.get("error", "no fingerprints were taken")))
        runs = verified or name in opt_in
        if runs and not verified:
            why += f" (opted in by {OPT_IN_ENV})"
        statuses[name] = PathStatus("verified" if verified else "waiting", runs, fingerprint,
                                    entry if verified else None, why)
    return statuses


def _verified_on(entry: dict[str, Any]) -> str:
    return f"verified on {entry.get('gpu')} at {str(entry.get('commit'))[:12]} ({entry.get('results')})"


_statuses: dict[str, PathStatus] = {}


def configure(kernels) -> None:
    """Tell the loaded kernels which paths may run, and how to report one passed over."""
    global _statuses
    names = list(kernels.kernel_path_names())
    record, record_problem = read_json(RECORD_FILE)
    if record_problem:
        logger.warning("genimg_fast: the record of verified kernels is unusable (%s): every kernel path waits",
                       record_problem)
    build, _ = read_json(BUILD_FINGERPRINTS_FILE)
    _statuses = path_statuses(names, record, build, opted_in(names))
    kernels.set_enabled_kernel_paths([name for name, status in _statuses.items() if status.runs])
    kernels.set_kernel_path_notifier(_note_passed_over)
    # an op on another thread while the interpreter shuts down must not wait for the GIL
    atexit.register(kernels.set_kernel_path_notifier, None)


def statuses() -> dict[str, PathStatus]:
    """Each kernel path of the loaded kernels and its status (none without kernels)."""
    return dict(_statuses)


def _note_passed_over(path: str, instead: str) -> None:
    status = _statuses.get(path)
    why = status.why if status else "it may not run"
    logger.warning("genimg_fast: the %s kernels did not run (%s), so %s served the call; %s=%s runs them. "
                   "See genimg_fast.backend_info()['kernel_paths'].", path, why, instead, OPT_IN_ENV, path)


def report(kernels) -> dict[str, dict[str, Any]]:
    """backend_info()'s `kernel_paths`: each path of the build, its state, and whether it runs now."""
    running = set(kernels.enabled_kernel_paths())
    return {name: {**asdict(status), "runs": name in running} for name, status in _statuses.items()}
