"""backend_info(), GENIMG_FAST_IMPL, and the once-only fallback warning."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
import torch

import genimg_fast
from genimg_fast import _backend

try:
    from genimg_fast import _build_config
except ImportError:  # an unbuilt source tree
    _build_config = None


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


def test_backend_info_reports_everything_a_bug_report_needs():
    info = genimg_fast.backend_info()
    for key in ("impl", "kernels_loaded", "reason", "compiled_archs", "built_arch_list", "built_with", "torch",
                "torch_cuda", "cudnn", "cuda_available", "device", "device_capability", "norm_kernels", "kernel_paths",
                "unverified_kernels", "implementation"):
        assert key in info
    assert (info["norm_kernels"] is None) == (info["impl"] != "cuda")  # which norm kernels: with a GPU
    assert info["torch"] == torch.__version__
    assert info["impl"] in ("cuda", "fallback", "reference")
    assert (info["impl"] == "cuda") == (info["reason"] is None)
    json.dumps(info)  # printable as JSON by `genimg-fast info`


@pytest.mark.skipif(_build_config is None or not _build_config.BUILT_CUDA, reason="this build has no CUDA kernels")
def test_built_kernels_load_and_register_for_cuda():
    """When the build compiled kernels (CI forces it), they must import and be registered."""
    info = genimg_fast.backend_info()
    if _backend.requested_impl() == "reference":
        pytest.skip("GENIMG_FAST_IMPL=reference")
    assert info["kernels_loaded"], info["reason"]
    assert info["compiled_archs"], "the binary reports no device code"
    ops = ("l1_loss", "_scale_one_stored_grad", "norm_act_stats", "norm_act_apply", "_norm_act_backward_reduce",
           "_norm_act_backward_apply", "norm_act_train", "_norm_act_train_backward", "update_running_stats_",
           "update_tracked_running_stats_", "loss_terms", "_scale_term_stored_grads")
    for op in (f"genimg_fast::{name}" for name in ops):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(op, "CUDA"), op
    cpp_autograd = ("norm_act_train", "norm_act_apply", "update_running_stats_", "update_tracked_running_stats_",
                    "loss_terms", "l1_loss")
    for op in (f"genimg_fast::{name}" for name in cpp_autograd):
        for key in ("AutogradCPU", "AutogradCUDA"):
            assert torch._C._dispatch_has_kernel_for_dispatch_key(op, key), (op, key)
    if not torch.cuda.is_available():
        assert info["impl"] == "fallback" and info["reason"].startswith("no GPU")


def _norm_caps(**env: str) -> subprocess.CompletedProcess:
    """The block and cluster caps a child reads from `env` (a cap variable not given is unset)."""
    caps = {name: "" for name in ("GENIMG_FAST_NORM_BLOCK_MAX", "GENIMG_FAST_NORM_CLUSTER_MAX",
                                  _backend.DEPRECATED_NORM_CAP_ENV)}
    return _python("from genimg_fast import _backend\n"
                   "kernels = _backend._kernels\n"
                   "try:\n    print(kernels.norm_block_max_count(), kernels.norm_cluster_max_count())\n"
                   "except RuntimeError as e:\n    print(e)", **{**caps, **env})


@pytest.mark.skipif(_build_config is None or not _build_config.BUILT_CUDA, reason="this build has no CUDA kernels")
@pytest.mark.parametrize("cap,expected", [("", "32768"), ("2048", "2048"), ("0", "0"), ("100000", "32768"),
                                          ("lots", "GENIMG_FAST_NORM_CLUSTER_MAX must be a whole number")])
def test_cluster_cap_is_read_from_the_environment(cap, expected):
    """The largest norm group the cluster kernels take (no GPU needed to ask): 32768 values, or
    GENIMG_FAST_NORM_CLUSTER_MAX, at most 32768; anything but a whole number is refused."""
    out = _norm_caps(GENIMG_FAST_NORM_CLUSTER_MAX=cap)
    assert out.returncode == 0, out.stderr
    assert expected in out.stdout.strip().splitlines()[-1], out.stdout


@pytest.mark.skipif(_build_config is None or not _build_config.BUILT_CUDA, reason="this build has no CUDA kernels")
@pytest.mark.parametrize("cap,expected", [("", "2048 32768"), ("1024", "1024 32768"), ("0", "0 32768"),
                                          ("100000", "2048 32768"),
                                          ("lots", "GENIMG_FAST_NORM_BLOCK_MAX must be a whole number")])
def test_block_cap_is_read_from_the_environment(cap, expected):
    """The block kernels' cap: 2048 values (their largest group), or GENIMG_FAST_NORM_BLOCK_MAX, at
    most 2048; the cluster kernels' stays."""
    out = _norm_caps(GENIMG_FAST_NORM_BLOCK_MAX=cap)
    assert out.returncode == 0, out.stderr
    assert expected in out.stdout.strip().splitlines()[-1], out.stdout


@pytest.mark.skipif(_build_config is None or not _build_config.BUILT_CUDA, reason="this build has no CUDA kernels")
@pytest.mark.parametrize("env,expected", [({}, "1000 1000"), ({"GENIMG_FAST_NORM_CLUSTER_MAX": "4096"}, "1000 4096")])
def test_the_deprecated_cap_caps_each_path_whose_own_cap_is_unset(env, expected):
    """GENIMG_FAST_SINGLE_PASS_MAX, which once capped both paths, still does, with a warning."""
    out = _norm_caps(**{_backend.DEPRECATED_NORM_CAP_ENV: "1000"}, **env)
    assert out.returncode == 0, out.stderr
    assert expected in out.stdout.strip().splitlines()[-1], out.stdout
    assert f"{_backend.DEPRECATED_NORM_CAP_ENV} is deprecated" in out.stderr


def test_impl_reference_forces_the_reference():
    out = _python("import genimg_fast, json; print(json.dumps(genimg_fast.backend_info()))",
                  GENIMG_FAST_IMPL="reference")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["kernels_loaded"] is False and info["impl"] == "reference"
    assert "GENIMG_FAST_IMPL=reference" in info["reason"]


def test_impl_cuda_fails_loudly_without_kernels_or_gpu():
    out = _python("import genimg_fast", GENIMG_FAST_IMPL="cuda")
    if genimg_fast.backend_info()["impl"] == "cuda":
        assert out.returncode == 0, out.stderr
    else:
        assert out.returncode != 0
        assert "GENIMG_FAST_IMPL=cuda" in out.stderr


def test_unknown_impl_is_rejected(monkeypatch):
    monkeypatch.setenv("GENIMG_FAST_IMPL", "fastest")
    with pytest.raises(ValueError, match="GENIMG_FAST_IMPL must be one of auto, reference, cuda"):
        _backend.requested_impl()


def test_fallback_on_cuda_is_logged_once(monkeypatch, caplog):
    monkeypatch.setattr(_backend, "_warned_fallback", False)
    monkeypatch.setattr(_backend, "_kernels", None)  # with kernels, the kernel path passed over is logged instead
    monkeypatch.setattr(_backend, "_load_failure", "not built: test")
    monkeypatch.delenv("GENIMG_FAST_IMPL", raising=False)
    with caplog.at_level(logging.WARNING, logger="genimg_fast"):
        _backend.note_reference_on_cuda("l1_loss")
        _backend.note_reference_on_cuda("l1_loss")
    warnings = [r for r in caplog.records if r.name == "genimg_fast"]
    assert len(warnings) == 1
    assert "not built: test" in warnings[0].getMessage()


@pytest.mark.parametrize("impl", ["auto", "reference"])
def test_kernels_built_but_unloadable_say_so_once_at_import(monkeypatch, caplog, impl):
    """A build that compiled kernels which then fail to load (e.g. beside another torch): one
    warning line at import, with backend_info()'s reason; nothing more at the first fallback."""
    import importlib
    import types

    built = types.SimpleNamespace(BUILT_CUDA=True, REASON=None, BUILT_WITH_TORCH="2.0.0+cu118")
    monkeypatch.setattr(_backend, "_build_config", lambda: built)
    real_import = importlib.import_module

    def unloadable(name, *args):
        if name == "genimg_fast._C":
            raise ImportError("undefined symbol: _ZN3c10test")
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", unloadable)
    monkeypatch.setattr(_backend, "_warned_fallback", False)
    monkeypatch.setenv("GENIMG_FAST_IMPL", impl)
    try:
        with caplog.at_level(logging.WARNING, logger="genimg_fast"):
            _backend.load_kernels()
            reason = genimg_fast.backend_info()["reason"]
            _backend.note_reference_on_cuda("l1_loss")
        lines = [r.getMessage() for r in caplog.records if r.name == "genimg_fast"]
    finally:
        monkeypatch.undo()
        _backend.load_kernels()  # as this install loads them
    if impl == "reference":  # asked for: nothing to warn of
        assert lines == []
        return
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert reason in lines[0] and "undefined symbol" in reason and "built with torch 2.0.0+cu118" in reason


def test_forced_reference_does_not_warn(monkeypatch, caplog):
    monkeypatch.setattr(_backend, "_warned_fallback", False)
    monkeypatch.setenv("GENIMG_FAST_IMPL", "reference")
    with caplog.at_level(logging.WARNING, logger="genimg_fast"):
        _backend.note_reference_on_cuda("l1_loss")
    assert not caplog.records


@pytest.mark.parametrize(
    "capability,compiled,arch_list,covered",
    [
        ((9, 0), [80, 90], "8.0;9.0", True),
        ((8, 6), [75, 80, 90], "7.5;8.0;9.0", True),  # sm_80 code runs on 8.6
        ((8, 6), [90], "9.0", False),
        ((10, 0), [80, 90], "8.0;9.0", False),
        ((12, 0), [90, 120], "9.0;12.0+PTX", True),
        ((12, 1), [90], "9.0+PTX", True),  # PTX is JIT-compiled for newer cards
        ((7, 5), [80], "8.0+PTX", False),  # PTX never runs on an older card
    ],
)
def test_arch_coverage(capability, compiled, arch_list, covered):
    assert _backend._arch_covers(capability, compiled, arch_list) is covered
