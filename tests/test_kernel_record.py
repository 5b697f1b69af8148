"""The record of verified kernel paths stays honest: CI fingerprints the built extension and fails
where the record claims a path verified whose device code has changed since; the fingerprints
ignore comments, host code and the build directory and see any change to what the GPU runs; the
record's tools turn a GPU check's outcomes into entries only for the device code that ran.

Fingerprinting needs cuobjdump, pyelftools and (for the compile tests) nvcc. Where they are missing
these tests skip, unless GENIMG_FAST_REQUIRE_FINGERPRINTS=1 (CI) makes that a failure."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

from buildtools import kernel_fingerprints as fingerprints
from buildtools import kernel_record
from buildtools.build_plan import NVCC_FLAGS
from buildtools.cuda_toolkit import CudaToolkitError, find_cuda_toolkit
from buildtools.kernel_paths import KERNEL_PATHS

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = os.environ.get("GENIMG_FAST_REQUIRE_FINGERPRINTS") == "1"


def _unavailable(why: str):
    if REQUIRED:
        pytest.fail(f"GENIMG_FAST_REQUIRE_FINGERPRINTS=1 but {why}")
    pytest.skip(why)


def _tools() -> None:
    try:
        fingerprints.find_cuobjdump()
    except fingerprints.FingerprintError as exc:
        _unavailable(str(exc))
    if importlib.util.find_spec("elftools") is None:
        _unavailable("pyelftools is not installed")


def _built_extension() -> Path:
    try:
        return kernel_record.built_extension()
    except kernel_record.RecordError as exc:
        config = ROOT / "genimg_fast" / "_build_config.py"
        if config.exists() and "BUILT_CUDA = True" in config.read_text():
            pytest.fail(f"the build recorded CUDA kernels but {exc}")
        _unavailable(str(exc))


# ---- the record against this build ----

def test_the_record_claims_no_path_whose_device_code_changed():
    """A stale record fails CI: the device code verified on a GPU must be the code built now."""
    binary = _built_extension()
    _tools()
    current = kernel_record.build_fingerprints(binary)
    record = kernel_record.load_record()
    stale = kernel_record.stale_entries(record, current)
    assert not stale, ("genimg_fast/verified_kernels.json claims device code that this build no longer has:\n"
                       + "\n".join(f"  {path}: {why}" for path, why in stale.items())
                       + "\nThese paths must wait for the next GPU check: run "
                         "`python -m buildtools.kernel_record forget-stale` and commit the record.")
    waiting = [path for path in KERNEL_PATHS if path not in record["paths"]]
    print("kernel paths waiting for a GPU check:", ", ".join(waiting) or "none")


def test_the_build_recorded_its_own_fingerprints():
    """setup.py's fingerprints (what genimg_fast compares at import) are the binary's."""
    binary = _built_extension()
    _tools()
    written = json.loads((binary.parent / "_kernel_fingerprints.json").read_text())
    current = kernel_record.build_fingerprints(binary)
    assert written.get("paths") == current["paths"], written.get("error")
    assert written["toolchain"] == current["toolchain"]


def test_each_entry_points_at_the_gpu_check_that_passed_it():
    record = kernel_record.load_record()
    for path, entry in record["paths"].items():
        assert path in KERNEL_PATHS
        for key in ("fingerprint", "commit", "gpu", "date", "results", "tests"):
            assert entry.get(key), f"{path}: no {key}"
        report = kernel_record.read_json(ROOT / entry["results"] / kernel_record.REPORT_NAME)
        assert report["commit"] == entry["commit"] and report["gpu"] == entry["gpu"]
        assert report["paths"][entry.get("named_in_results", path)]["verdict"] == "passed", path


# ---- what a fingerprint sees ----

def _nvcc() -> Path:
    try:
        toolkit = find_cuda_toolkit(os.environ)
    except CudaToolkitError as exc:
        _unavailable(str(exc))
    if toolkit is None:
        _unavailable("no CUDA toolkit")
    return toolkit.nvcc


def _compile(source: str, directory: Path, name: str = "kernel.cu", includes=()) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(source)
    cubin = directory / "kernel.cubin"
    command = [str(_nvcc()), *NVCC_FLAGS, "-std=c++20", "-cubin", "-arch=sm_90", *(f"-I{p}" for p in includes),
               "-o", str(cubin), name]
    run = subprocess.run(command, cwd=directory, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    return cubin


PROBE = """// a probe kernel
#include <cstdio>
namespace {
template <typename T>
__global__ void __launch_bounds__(BOUNDS) probe_kernel(T* x, T s, int n) {
  __shared__ T staged[SHARED];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  staged[threadIdx.x & 31] = i < n ? x[i] : T(0);
  __syncthreads();
  if (i < n) x[i] = staged[(threadIdx.x + 1) & 31] * s + T(CONSTANT);
}
}  // namespace
void launch(float* x, float s, int n) { probe_kernel<float><<<(n + 127) / 128, 128>>>(x, s, n); }
void launch(double* x, double s, int n) { probe_kernel<double><<<(n + 127) / 128, 128>>>(x, s, n); }
"""
BASE = {"BOUNDS": "128", "SHARED": "32", "CONSTANT": "0.1"}


def _probe(tmp_path: Path, directory: str, source: str = PROBE, **changes: str) -> list[str]:
    for name, value in {**BASE, **changes}.items():
        source = source.replace(name, value)
    return sorted(fingerprints.kernel_digests(_compile(source, tmp_path / directory))["probe_kernel"])


def test_fingerprints_ignore_comments_host_code_and_the_build_directory(tmp_path):
    _tools()
    base = _probe(tmp_path, "base")
    assert _probe(tmp_path, "again") == base  # another directory: another anonymous namespace name
    assert _probe(tmp_path, "commented", "// one more line of comment\n" * 40 + PROBE) == base
    host = PROBE + "int launches() { std::printf(\"two launchers\\n\"); return 2; }\n"
    assert _probe(tmp_path, "host", host.replace("(n + 127) / 128, 128", "(n + 255) / 256, 256")) == base


@pytest.mark.parametrize("change", [
    {"source": PROBE.replace("* s +", "* s -")},   # arithmetic
    {"CONSTANT": "0.3"},                           # a literal
    {"BOUNDS": "256"},                             # launch bounds
    {"SHARED": "64"},                              # shared memory (the code reads only 32 of it)
])
def test_fingerprints_see_any_change_to_what_the_gpu_runs(tmp_path, change):
    _tools()
    assert _probe(tmp_path, "changed", **change) != _probe(tmp_path, "base")


def test_a_throwaway_edit_of_a_real_kernel_changes_its_fingerprint_and_a_comment_does_not(tmp_path):
    """The running-statistics kernel, copied out of csrc/ and compiled like the build does."""
    _tools()
    original = (ROOT / "csrc" / "norm_act" / "running_stats_kernels.cu").read_text()
    edit = "batch_var /= static_cast<stat_t>(stat_rows);"
    assert edit in original

    def digests(directory: str, source: str) -> list[str]:
        cubin = _compile(source, tmp_path / directory, "running_stats_kernels.cu", includes=[ROOT / "csrc", *_torch_includes()])
        return sorted(fingerprints.kernel_digests(cubin)["update_running_stats_kernel"])

    base = digests("base", original)
    assert digests("comment", "// a comment that moves every line\n\n" + original) == base
    assert digests("edited", original.replace(edit, "batch_var /= static_cast<stat_t>(stat_rows + 1);")) != base


def _torch_includes() -> list[str]:
    from torch.utils.cpp_extension import include_paths

    return include_paths()


def test_a_kernel_of_no_path_is_refused(tmp_path):
    _tools()
    cubin = _compile(PROBE.replace("BOUNDS", "128").replace("SHARED", "32").replace("CONSTANT", "1"), tmp_path)
    with pytest.raises(fingerprints.FingerprintError, match="probe_kernel"):
        fingerprints.fingerprint_cubins([cubin])


@pytest.mark.parametrize("mangled,function", [
    ("_ZN11genimg_fast18reduce_nchw_kernelILi1ENS_12StatsReducerIfEEEEvNS_10NormTilingET0_", "reduce_nchw_kernel"),
    ("_ZN11genimg_fast62_GLOBAL__N__7430b57c_24_running_stats_kernels_cu_6145da4f_271227update_running_stats_kernelIdEEvv",
     "update_running_stats_kernel"),
    ("_ZN36_GLOBAL__N__bbf9f58c_4_k_cu_2f5ba23412scale_kernelIfEEvPT_S1_i", "scale_kernel"),
])
def test_function_names_and_anonymous_namespaces(mangled, function):
    assert fingerprints._function_name(mangled) == function
    assert "_GLOBAL__N__" not in fingerprints._canonical(mangled)
    assert fingerprints._canonical(mangled).endswith(mangled[mangled.index(function) - 2:])


# ---- the record's tools ----

def test_verdicts_blame_every_path_a_failing_test_ran():
    outcomes = [{"test": "a", "paths": ["norm_tiles", "norm_cluster"], "paths_known": True, "outcome": "passed"},
                {"test": "b", "paths": ["norm_cluster"], "paths_known": True, "outcome": "failed"},
                {"test": "c", "paths": ["l1_loss"], "paths_known": True, "outcome": "passed"}]
    result = kernel_record.verdicts(outcomes)
    assert result["norm_tiles"]["verdict"] == "passed" and result["l1_loss"]["verdict"] == "passed"
    assert result["norm_cluster"] == {"verdict": "failed", "tests_passed": 1, "tests_failed": 1, "failed_tests": ["b"]}
    assert result["loss_terms"]["verdict"] == "not run"


def test_a_failed_test_that_noted_no_paths_fails_them_all():
    """A worker that died, a test that ran out of time, a child that did not say what it ran."""
    outcomes = [{"test": "a", "paths": ["l1_loss"], "paths_known": True, "outcome": "passed"},
                {"test": "crashed", "paths": [], "paths_known": False, "outcome": "failed"},
                {"test": "skipped work", "paths": [], "paths_known": False, "outcome": "passed"}]
    result = kernel_record.verdicts(outcomes)
    assert all(v["verdict"] == "failed" and v["failed_tests"] == ["crashed"] for v in result.values())


def test_a_test_run_that_did_not_finish_credits_no_path(tmp_path):
    finished = tmp_path / "paths_losses.json"
    finished.write_text(json.dumps({"exitstatus": 0, "tests": [
        {"test": "a", "paths": ["l1_loss"], "paths_known": True, "outcome": "passed"}]}))
    interrupted = tmp_path / "paths_norm_act.json"
    interrupted.write_text(json.dumps({"exitstatus": 2, "tests": []}))
    whole = kernel_record.gpu_report([finished], "c" * 40, "H100", "9.0", "digest")
    assert whole["paths"]["l1_loss"]["verdict"] == "passed" and not whole["unfinished"]
    for runs in ([finished, interrupted], [finished, tmp_path / "paths_training.json"]):  # killed: no file
        report = kernel_record.gpu_report(runs, "c" * 40, "H100", "9.0", "digest")
        assert report["unfinished"] and {v["verdict"] for v in report["paths"].values()} == {"incomplete"}


def test_child_processes_report_the_kernel_paths_they_ran():
    import cuda_helpers

    cuda_helpers.CHILD_PATHS.clear()
    cuda_helpers.run_in_child("import genimg_fast")
    assert cuda_helpers.UNKNOWN_PATHS not in cuda_helpers.CHILD_PATHS
    with pytest.raises(AssertionError, match="crashed"):
        cuda_helpers.run_in_child("import os; os._exit(3)")
    assert cuda_helpers.UNKNOWN_PATHS in cuda_helpers.CHILD_PATHS
    cuda_helpers.CHILD_PATHS.clear()


def test_a_report_must_come_from_a_9x_gpu_and_the_committed_sources():
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    if not head:
        pytest.skip("not a git checkout")
    digest = kernel_record.sources_digest(kernel_record.commit_sources(head))
    report = {"commit": head, "gpu": "H100", "capability": "9.0", "sources": digest, "paths": {}}
    assert kernel_record.check_report(report, Path("r")) == []
    with pytest.raises(kernel_record.RecordError, match="compute capability 8.0"):
        kernel_record.check_report({**report, "capability": "8.0"}, Path("r"))
    with pytest.raises(kernel_record.RecordError, match="other sources"):
        kernel_record.check_report({**report, "sources": "0" * 16}, Path("r"))
    assert len(kernel_record.check_report({**report, "capability": None, "sources": None}, Path("r"))) == 2


def test_the_sources_digest_sees_device_sources_and_the_nvcc_flags_only():
    files = {"csrc/a.cu": b"x", "setup.py": b"s", "buildtools/build_plan.py": b"f", "README.md": b"r"}
    base = kernel_record.sources_digest(files)
    assert kernel_record.sources_digest({**files, "README.md": b"other"}) == base
    for name in ("csrc/a.cu", "setup.py", "buildtools/build_plan.py"):
        assert kernel_record.sources_digest({**files, name: b"changed"}) != base
    assert kernel_record.sources_digest({**files, "csrc/new.cuh": b"n"}) != base


def _fingerprints(toolchain="T", **paths):
    return {"toolchain": toolchain, "paths": {p: {"fingerprint": f} for p, f in paths.items()}}


def test_a_gpu_check_records_only_the_device_code_that_is_still_built():
    record = {"toolchain": "T", "paths": {"l1_loss": {"fingerprint": "old"}, "loss_terms": {"fingerprint": "x"}}}
    report = {"commit": "c0ffee" * 7, "gpu": "H100", "date": "2026-12-07",
              "paths": {"norm_tiles": {"verdict": "passed", "tests_passed": 3},
                        "norm_cluster": {"verdict": "passed", "tests_passed": 2},
                        "l1_loss": {"verdict": "failed", "tests_failed": 1},
                        "loss_terms": {"verdict": "not run"}}}
    at_commit = _fingerprints(norm_tiles="t1", norm_cluster="c1", l1_loss="old")
    current = _fingerprints(norm_tiles="t1", norm_cluster="c2", l1_loss="old", loss_terms="x")
    updated, lines = kernel_record.added_entries(record, report, at_commit, current, "benchmarks/results/run")
    assert set(updated["paths"]) == {"norm_tiles", "loss_terms"}  # cluster changed since; l1 failed
    assert updated["paths"]["norm_tiles"] == {"fingerprint": "t1", "commit": report["commit"], "gpu": "H100",
                                              "date": "2026-12-07", "results": "benchmarks/results/run",
                                              "tests": "3 passed"}
    assert any("norm_cluster" in line and "changed since" in line for line in lines)
    assert any("l1_loss" in line and "removed" in line for line in lines)


def test_a_build_of_another_toolchain_cannot_add_to_the_record():
    report = {"commit": "c" * 40, "gpu": "H100", "paths": {"norm_tiles": {"verdict": "passed"}}}
    with pytest.raises(kernel_record.RecordError, match="one toolchain"):
        kernel_record.added_entries({"paths": {}}, report, _fingerprints("A", norm_tiles="t"),
                                    _fingerprints("B", norm_tiles="t"), "r")


def test_stale_entries_are_those_whose_machine_code_the_build_lacks():
    record = {"toolchain": "T", "paths": {"norm_tiles": {"fingerprint": "t"}, "l1_loss": {"fingerprint": "l"}}}
    assert kernel_record.stale_entries(record, _fingerprints(norm_tiles="t", l1_loss="l")) == {}
    assert list(kernel_record.stale_entries(record, _fingerprints(norm_tiles="t", l1_loss="m"))) == ["l1_loss"]
    # another toolchain that makes the same machine code keeps the entries; other code does not
    assert kernel_record.stale_entries(record, _fingerprints("U", norm_tiles="t", l1_loss="l")) == {}
    assert "built with U" in kernel_record.stale_entries(record, _fingerprints("U", norm_tiles="u", l1_loss="l"))[
        "norm_tiles"]
