"""Helpers for the CUDA kernel tests."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

# The kernel paths the child processes of the current test ran ("unknown" where a child did not
# say): conftest credits them to the test, with the paths the test's own process ran.
CHILD_PATHS: set[str] = set()
UNKNOWN_PATHS = "unknown"
_PATHS_MARK = "genimg_fast kernel paths ran: "
_REPORT_PATHS = (
    "import atexit as _atexit\n"
    "def _report_paths():\n"
    "    import json, sys\n"
    "    backend = sys.modules.get('genimg_fast._backend')\n"
    "    kernels = getattr(backend, '_kernels', None)\n"
    f"    print({_PATHS_MARK!r} + json.dumps(list(kernels.kernel_paths_ran()) if kernels else []), flush=True)\n"
    "_atexit.register(_report_paths)\n")


def _note_child_paths(stdout: str) -> None:
    for line in stdout.splitlines():
        if line.startswith(_PATHS_MARK):
            CHILD_PATHS.update(json.loads(line[len(_PATHS_MARK):]))
            return
    CHILD_PATHS.add(UNKNOWN_PATHS)


def poison_allocator(nbytes: int, copies: int = 4) -> None:
    """Make the caching allocator hand out NaN-filled memory next: blocks of exactly the
    outputs' size (best fit picks them), filled with 0xFF bytes (NaN in every float format),
    so an output element the kernel forgets to write cannot pass as a lucky zero."""
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    blocks = [torch.full((max(nbytes, 1),), 255, dtype=torch.uint8, device="cuda") for _ in range(copies)]
    del blocks


def run_in_child(code: str, args: tuple[str, ...] = (), env: dict[str, str] | None = None,
                 timeout: int = 120) -> subprocess.CompletedProcess:
    """Run Python `code` (with `args`) in a child process, `env` added to its environment, and
    check it exits cleanly: a crash fails the test with its traceback instead of the whole run.
    The kernel paths the child ran count as the test's."""
    try:
        out = subprocess.run([sys.executable, "-X", "faulthandler", "-c", _REPORT_PATHS + code, *args],
                             capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        CHILD_PATHS.add(UNKNOWN_PATHS)
        raise
    _note_child_paths(out.stdout)
    assert out.returncode == 0, f"crashed (rc {out.returncode}):\n{out.stderr[-3000:]}"
    return out


def assert_raises_in_child(call: str, error: str, message: str, env: dict[str, str] | None = None) -> None:
    """Run `call` (after importing torch and genimg_fast.ops as ops) in a child process (with
    `env` added to the environment) and check it raises `error` with `message`."""
    code = ("import torch, genimg_fast\nfrom genimg_fast import ops\n"
            f"try:\n    {call}\nexcept {error} as e:\n    print('{error}:', e)\n")
    out = run_in_child(code, env=env)
    assert f"{error}:" in out.stdout and message in out.stdout, out.stdout + out.stderr
