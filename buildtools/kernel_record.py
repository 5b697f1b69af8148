"""The record of kernel paths verified on a GPU (genimg_fast/verified_kernels.json), and its tools.

A path enters the record only from a GPU check: `make gpu-check` reports which paths passed
their CUDA tests at which commit (verified_paths.json in its results folder), and `add` records
each passed path with the fingerprint of that commit's build here, CI's toolchain, provided the
current build's device code for the path is still the same. docs/kernel-verification.md.

    python -m buildtools.kernel_record status                  # each path: fingerprints, state
    python -m buildtools.kernel_record add benchmarks/results/<run> [--commit-build OTHER/_C.so]
    python -m buildtools.kernel_record forget-stale            # paths whose device code changed wait
    python -m buildtools.kernel_record gpu-report --out F --commit C --gpu NAME OUTCOMES...  (on the GPU)
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

from .kernel_fingerprints import FingerprintError, fingerprint_extension, toolchain
from .kernel_paths import KERNEL_PATHS

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "genimg_fast" / "verified_kernels.json"
REPORT_NAME = "verified_paths.json"  # what a GPU check writes into its results folder
ABOUT = ("Kernel paths whose device code passed its CUDA tests on a GPU, each with the fingerprint of its sm_90 "
         "code as CI builds it (docs/kernel-verification.md). Written by `python -m buildtools.kernel_record add`, "
         "checked against the build by tests/test_kernel_record.py.")


class RecordError(RuntimeError):
    """The record cannot be updated as asked."""


def read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RecordError(f"{path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise RecordError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path} does not hold a JSON object")
    return data


def load_record(path: Path = RECORD) -> dict:
    if not Path(path).exists():
        return {"about": ABOUT, "toolchain": None, "paths": {}}
    record = read_json(path)
    record.setdefault("paths", {})
    return record


def write_atomically(path: Path, data: dict) -> None:
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(temporary, path)


def built_extension(root: Path = ROOT) -> Path:
    """The extension built in place (make build) under `root`."""
    found = sorted((Path(root) / "genimg_fast").glob("_C*.so"))
    if not found:
        raise RecordError(f"no built extension in {root}/genimg_fast: run `make build` (with the CUDA kernels)")
    return found[0]


def build_fingerprints(binary: Path, every_path: bool = True) -> dict:
    """{"toolchain", "paths"} of a build: its fingerprints, and the torch it was built with (the
    _build_config.py beside it)."""
    taken = fingerprint_extension(binary, every_path=every_path)
    config = Path(binary).parent / "_build_config.py"
    torch_version = runpy.run_path(str(config)).get("BUILT_WITH_TORCH") if config.exists() else None
    return {"toolchain": toolchain(taken, torch_version or "unknown"), "paths": taken["paths"]}


def stale_entries(record: dict, current: dict) -> dict[str, str]:
    """{path: why} for the record's entries whose machine code this build no longer has. (Equal
    fingerprints are the same code whatever toolchain made them; unequal ones are not the code
    that passed, whatever the reason.)"""
    stale = {}
    for path, entry in record["paths"].items():
        mine = (current["paths"].get(path) or {}).get("fingerprint")
        if mine != entry.get("fingerprint"):
            why = f"verified fingerprint {entry.get('fingerprint')}, this build's {mine}"
            if record.get("toolchain") != current["toolchain"]:
                why += f" (recorded with {record.get('toolchain')}, built with {current['toolchain']})"
            stale[path] = why
    return stale


# ---- the sources a build compiles into device code ----

def _is_device_source(path: str) -> bool:
    return path.startswith("csrc/") or path in ("setup.py", "buildtools/build_plan.py")


def sources_digest(files: dict[str, bytes]) -> str:
    """One hash of the files that make the device code: csrc/, setup.py and the nvcc flags."""
    digest = hashlib.sha256()
    for name in sorted(files):
        if _is_device_source(name):
            digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()[:16]


def working_tree_sources(root: Path = ROOT) -> dict[str, bytes]:
    root = Path(root)
    names = [p for p in (root / "csrc").rglob("*") if p.is_file()]
    names += [root / "setup.py", root / "buildtools" / "build_plan.py"]
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in names if p.is_file()}


def commit_sources(commit: str) -> dict[str, bytes]:
    listing = _git("ls-tree", "-r", "--name-only", commit, "--", "csrc", "setup.py", "buildtools/build_plan.py")
    return {name: _git_bytes("show", f"{commit}:{name}") for name in listing.split()}


def _git_bytes(*args: str) -> bytes:
    run = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, check=False)
    if run.returncode != 0:
        raise RecordError(f"git {' '.join(args)}: {run.stderr.decode(errors='replace').strip()}")
    return run.stdout


def _git(*args: str) -> str:
    return _git_bytes(*args).decode()


# ---- the GPU check's report ----

def _new_counts() -> dict:
    return {"verdict": "not run", "tests_passed": 0, "tests_failed": 0, "failed_tests": []}


def verdicts(outcomes: list[dict]) -> dict[str, dict]:
    """Per path, from the CUDA tests' outcomes ({"test", "paths", "paths_known", "outcome"} each):
    how many tests that ran it passed and failed, and the verdict: failed if any failed, passed if
    any passed. A failed test whose paths are unknown (it crashed, or a child process it started
    did) fails every path."""
    result = {path: _new_counts() for path in KERNEL_PATHS}
    for test in outcomes:
        failed = test["outcome"] != "passed"
        blamed = list(result) if failed and not test.get("paths_known", True) else test["paths"]
        for path in blamed:
            counts = result.setdefault(path, _new_counts())
            if failed:
                counts["tests_failed"] += 1
                counts["failed_tests"].append(test["test"])
            else:
                counts["tests_passed"] += 1
    for counts in result.values():
        counts["verdict"] = ("failed" if counts["tests_failed"] else "passed" if counts["tests_passed"]
                             else "not run")
        counts["failed_tests"] = counts["failed_tests"][:10]
    return result


def gpu_report(outcome_files: list[Path], commit: str, gpu: str, capability: str | None,
               sources: str) -> dict:
    """The GPU check's verified_paths.json: which paths passed their CUDA tests at `commit`. Every
    test run must have finished (pytest's exit status 0 or 1) and written its outcomes; else no
    path is credited."""
    outcomes, unfinished = [], []
    for path in outcome_files:
        try:
            run = read_json(path)
        except RecordError as exc:
            unfinished.append(str(exc))
            continue
        if run.get("exitstatus") not in (0, 1):
            unfinished.append(f"{Path(path).name}: pytest exit status {run.get('exitstatus')}")
        outcomes.extend(run.get("tests", []))
    paths = verdicts(outcomes)
    if unfinished:
        for counts in paths.values():
            counts["verdict"] = "incomplete"
    return {"commit": commit, "gpu": gpu, "capability": capability, "sources": sources,
            "date": datetime.date.today().isoformat(), "tests": len(outcomes), "unfinished": unfinished,
            "paths": paths}


# ---- adding a GPU check's verdicts ----

def added_entries(record: dict, report: dict, at_commit: dict, current: dict,
                  results: str) -> tuple[dict, list[str]]:
    """The record after a GPU check (`report`), given the fingerprints of the checked commit's build
    here (`at_commit`) and of the current build; and a line per path saying what happened."""
    if at_commit["toolchain"] != current["toolchain"]:
        raise RecordError(f"the checked commit was built with {at_commit['toolchain']}, the current build with "
                          f"{current['toolchain']}: build both with one toolchain")
    stale = stale_entries({"toolchain": record.get("toolchain"), "paths": dict(record.get("paths") or {})}, current)
    updated = {"about": ABOUT, "toolchain": current["toolchain"],
               "paths": {p: e for p, e in (record.get("paths") or {}).items() if p not in stale}}
    lines = [f"{path}: its entry is stale ({why}): removed, it waits" for path, why in stale.items()]
    commit = report["commit"]
    for path, outcome in sorted(report.get("paths", {}).items()):
        verdict = outcome.get("verdict")
        then = (at_commit["paths"].get(path) or {}).get("fingerprint")
        now = (current["paths"].get(path) or {}).get("fingerprint")
        if verdict == "failed":
            if updated["paths"].pop(path, None) is not None:
                lines.append(f"{path}: failed at {commit[:12]}: its entry is removed, it waits")
            else:
                lines.append(f"{path}: failed at {commit[:12]}: it waits")
        elif verdict != "passed":
            lines.append(f"{path}: {verdict} at {commit[:12]}: unchanged")
        elif then is None:
            lines.append(f"{path}: passed, but {commit[:12]}'s build has no such kernels: unchanged")
        elif then != now:
            lines.append(f"{path}: passed at {commit[:12]}, but its device code has changed since ({then} -> {now}): "
                         "it waits")
        else:
            updated["paths"][path] = {"fingerprint": now, "commit": commit, "gpu": report.get("gpu"),
                                      "date": report.get("date"), "results": results,
                                      "tests": outcome.get("evidence") or f"{outcome.get('tests_passed')} passed"}
            lines.append(f"{path}: verified ({now})")
    order = [*KERNEL_PATHS, *sorted(set(updated["paths"]) - set(KERNEL_PATHS))]
    updated["paths"] = {path: updated["paths"][path] for path in order if path in updated["paths"]}
    return updated, lines


def check_report(report: dict, where: Path) -> list[str]:
    """Refuse a report that cannot verify sm_90 code of its commit; notes on what is taken on trust."""
    for key in ("commit", "gpu", "paths"):
        if key not in report:
            raise RecordError(f"{where} has no {key!r}")
    capability = report.get("capability")
    if capability is not None and not str(capability).startswith("9."):
        raise RecordError(f"{where}: the check ran on compute capability {capability}; the record holds sm_90 "
                          "code, which only a 9.x GPU (H100, H200) runs")
    notes = []
    if capability is None:
        notes.append(f"{where} names no compute capability: taken to be a 9.x GPU")
    if report.get("sources"):
        at_commit = sources_digest(commit_sources(report["commit"]))
        if report["sources"] != at_commit:
            raise RecordError(f"{where}: the GPU check built other sources ({report['sources']}) than "
                              f"{report['commit'][:12]} holds ({at_commit}): was the tree sent to the GPU committed?")
    else:
        notes.append(f"{where} names no digest of the sources it built: {report['commit'][:12]} is taken on trust")
    return notes


def _same_device_sources(commit: str) -> bool:
    """Whether the working tree's device sources are those of `commit` (so this build is its build)."""
    return sources_digest(working_tree_sources()) == sources_digest(commit_sources(commit))


def add(results_dir: Path, commit_build: Path | None) -> list[str]:
    where = Path(results_dir) / REPORT_NAME
    report = read_json(where)
    notes = check_report(report, where)
    current = build_fingerprints(built_extension())
    if commit_build is None:
        if not _same_device_sources(report["commit"]):
            raise RecordError(f"csrc/, setup.py or the nvcc flags differ from {report['commit'][:12]}, the commit "
                              f"the GPU check ran: build that commit here (git worktree add /tmp/checked "
                              f"{report['commit'][:12]}, then build it in place) and pass --commit-build with its "
                              "genimg_fast/_C*.so")
        at_commit = current
    else:
        at_commit = build_fingerprints(commit_build, every_path=False)
    results = Path(results_dir).resolve()
    results = results.relative_to(ROOT).as_posix() if results.is_relative_to(ROOT) else str(results_dir)
    updated, lines = added_entries(load_record(), report, at_commit, current, results)
    write_atomically(RECORD, updated)
    return notes + lines


def forget_stale() -> list[str]:
    record = load_record()
    stale = stale_entries(record, build_fingerprints(built_extension()))
    for path in stale:
        del record["paths"][path]
    if stale:
        write_atomically(RECORD, record)
    return [f"{path}: {why}: removed, it waits" for path, why in stale.items()] or ["nothing is stale"]


def status() -> tuple[list[str], bool]:
    record = load_record()
    current = build_fingerprints(built_extension())
    stale = stale_entries(record, current)
    lines = [f"this build: {current['toolchain']}", f"the record: {record.get('toolchain')}",
             f"{'path':<20} {'this build':<18} {'verified':<18} state"]
    for path in KERNEL_PATHS:
        entry = record["paths"].get(path)
        mine = (current["paths"].get(path) or {}).get("fingerprint", "-")
        state = ("STALE: " + stale[path] if path in stale else
                 f"verified on {entry['gpu']} at {entry['commit'][:12]} ({entry['results']})" if entry else "waiting")
        lines.append(f"{path:<20} {mine:<18} {(entry or {}).get('fingerprint', '-'):<18} {state}")
    return lines, not stale


def _device_capability() -> str | None:
    """The current GPU's compute capability, e.g. "9.0" (None without torch or a GPU)."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability()
    return f"{major}.{minor}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="each path's fingerprints and state; exit 1 when the record is stale")
    adding = commands.add_parser("add", help="record the paths a GPU check passed")
    adding.add_argument("results", type=Path, help=f"the GPU check's results folder (holding {REPORT_NAME})")
    adding.add_argument("--commit-build", type=Path,
                        help="the checked commit's extension built here, when csrc/ has changed since")
    commands.add_parser("forget-stale", help="remove the entries whose device code has changed: they wait")
    report = commands.add_parser("gpu-report", help="merge the CUDA tests' path outcomes (on the GPU machine)")
    report.add_argument("--out", type=Path, required=True)
    report.add_argument("--commit", required=True)
    report.add_argument("--gpu", required=True)
    report.add_argument("outcomes", type=Path, nargs="+", help="each test run's outcomes; a missing one credits nothing")
    args = parser.parse_args(argv)
    try:
        if args.command == "status":
            lines, fresh = status()
            print("\n".join(lines))
            return 0 if fresh else 1
        if args.command == "add":
            print("\n".join(add(args.results, args.commit_build)))
        elif args.command == "forget-stale":
            print("\n".join(forget_stale()))
        else:
            result = gpu_report(args.outcomes, args.commit, args.gpu, _device_capability(),
                                sources_digest(working_tree_sources()))
            write_atomically(args.out, result)
            print("\n".join([*(f"unfinished: {why}" for why in result["unfinished"]),
                             *(f"{path}: {v['verdict']} ({v['tests_passed']} passed, {v['tests_failed']} failed)"
                               for path, v in result["paths"].items())]))
    except (RecordError, FingerprintError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
