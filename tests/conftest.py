"""Shared test setup: CUDA tests are marked `cuda` and skip cleanly where there is no GPU.

The tests exercise every kernel path, those waiting for a GPU check too: GENIMG_FAST_UNVERIFIED_KERNELS
is 1 unless set (the tests of the default choice set their own). Each CUDA test notes the kernel
paths it ran; with GENIMG_FAST_PATH_OUTCOMES=FILE the session writes them with each test's outcome
(the GPU check turns them into verdicts: buildtools/kernel_record.py gpu-report).
"""
from __future__ import annotations

import json
import os

os.environ.setdefault("GENIMG_FAST_UNVERIFIED_KERNELS", "1")  # before genimg_fast loads its kernels

import cuda_helpers  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import genimg_fast  # noqa: E402
from genimg_fast import _backend, _implementation, _kernel_paths  # noqa: E402
from genimg_fast.bench.checks import exact_fp32  # noqa: E402

PATH_OUTCOMES_ENV = "GENIMG_FAST_PATH_OUTCOMES"
_path_outcomes: dict[str, dict] = {}  # CUDA test id -> the paths it ran, whether it passed and failed


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def cuda_kernels():
    """A CUDA device whose ops run the compiled kernels (not the reference): testing the
    reference against itself on a GPU would pass without testing anything."""
    info = genimg_fast.backend_info()
    if _backend.requested_impl() == "reference":
        pytest.skip("GENIMG_FAST_IMPL=reference: no kernels to test")
    assert info["impl"] == "cuda", f"CUDA GPU present but kernels unusable: {info['reason']}"
    return torch.device("cuda")


@pytest.fixture
def fused_op_path():
    """The fused modules and losses take the fused ops' path (the ops' reference on CPU tensors)
    instead of torch's own ops, for tests of the fused ops' contract."""
    with _implementation.forced(_implementation.REFERENCE):
        yield


@pytest.fixture
def no_tf32():
    """float32 convolutions in full precision: TF32's 10 mantissa bits would drown the rounding
    differences the GPU tests compare."""
    with exact_fp32():
        yield


def fresh_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(autouse=True)
def _note_kernel_paths_ran(request):
    """Which kernel paths a CUDA test ran, kept with its report (and so across xdist workers)."""
    kernels = _backend._kernels
    if kernels is None or "cuda" not in request.keywords:
        yield
        return
    kernels.forget_kernel_paths_ran()
    cuda_helpers.CHILD_PATHS.clear()
    yield
    ran = set(kernels.kernel_paths_ran()) | cuda_helpers.CHILD_PATHS
    request.node.user_properties.append(("kernel_paths", sorted(ran)))


def pytest_runtest_logreport(report):
    if "cuda" not in report.keywords:
        return
    entry = _path_outcomes.setdefault(report.nodeid, {"paths": set(), "noted": False, "passed": False,
                                                      "failed": False})
    for name, value in report.user_properties:
        if name == "kernel_paths":
            entry["paths"].update(value)
            entry["noted"] = True
    entry["failed"] |= report.failed
    entry["passed"] |= report.when == "call" and report.passed


def pytest_sessionfinish(session, exitstatus):
    """The CUDA tests' outcomes and kernel paths. A test that crashed (its worker died, its time ran
    out) or whose child process did not say noted no paths: they are unknown, and if it failed,
    every path is blamed (buildtools/kernel_record.py verdicts)."""
    destination = os.environ.get(PATH_OUTCOMES_ENV)
    if not destination or hasattr(session.config, "workerinput"):  # xdist workers report to the controller
        return
    tests = [{"test": test, "paths": sorted(entry["paths"] - {cuda_helpers.UNKNOWN_PATHS}),
              "paths_known": entry["noted"] and cuda_helpers.UNKNOWN_PATHS not in entry["paths"],
              "outcome": "failed" if entry["failed"] else "passed"}
             for test, entry in _path_outcomes.items() if entry["passed"] or entry["failed"]]
    with open(destination, "w") as stream:
        json.dump({"exitstatus": int(exitstatus), "tests": tests}, stream, indent=1)


def pytest_terminal_summary(terminalreporter):
    waiting = [name for name, status in _kernel_paths.statuses().items() if status.state == "waiting"]
    if waiting:
        terminalreporter.write_line(f"kernel paths waiting for a GPU check (off by default, run here): "
                                    f"{', '.join(waiting)}")
