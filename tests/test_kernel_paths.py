"""Only kernel paths verified on a GPU run by default: the choice (host code, tested without a
GPU), GENIMG_FAST_UNVERIFIED_KERNELS, backend_info(), the one-time warning; and on a GPU, that a
path that may not run gives way to the next one or to the reference with the same results."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys

import pytest
import torch

import genimg_fast
from buildtools.kernel_paths import KERNEL_PATHS
from genimg_fast import _backend, _kernel_paths
from genimg_fast.nn import BatchNormAct2d
from genimg_fast.ops import _norm_act_math as ref
from genimg_fast.ops import l1_loss, norm_act_train

ALL = list(KERNEL_PATHS)
needs_kernels = pytest.mark.skipif(_backend._kernels is None, reason="this build has no CUDA kernels")


@contextlib.contextmanager
def paths_enabled(names):
    """Only `names` may run, for the block."""
    kernels = _backend._kernels
    before = kernels.enabled_kernel_paths()
    kernels.set_enabled_kernel_paths(list(names))
    try:
        yield
    finally:
        kernels.set_enabled_kernel_paths(before)


def _record_verified() -> list[str]:
    record, _ = _kernel_paths.read_json(_kernel_paths.RECORD_FILE)
    return [name for name in ALL if name in record.get("paths", {})]


# ---- the opt-in and the statuses (pure Python) ----

@pytest.mark.parametrize("value,expected", [("", set()), ("0", set()), ("1", set(ALL)), ("all", set(ALL)),
                                            (" norm_cluster , l1_loss ", {"norm_cluster", "l1_loss"})])
def test_opt_in_names_the_waiting_paths_to_run(value, expected):
    assert _kernel_paths.opted_in(ALL, {_kernel_paths.OPT_IN_ENV: value}) == expected


def test_opt_in_refuses_an_unknown_path():
    with pytest.raises(ValueError, match="GENIMG_FAST_UNVERIFIED_KERNELS names no kernel path norm_clusters"):
        _kernel_paths.opted_in(ALL, {_kernel_paths.OPT_IN_ENV: "norm_clusters"})


TOOLCHAIN = "ptxas V13.0.88 -arch sm_90; torch 2.14.1"
ENTRY = {"fingerprint": "aaaa", "commit": "0123456789abcdef", "gpu": "H100", "results": "benchmarks/results/run",
         "date": "2026-11-27", "tests": "9 passed"}


def _status(entry, build, opt_in=()):
    record = {"toolchain": TOOLCHAIN, "paths": {"l1_loss": entry} if entry else {}}
    return _kernel_paths.path_statuses(["l1_loss"], record, build, set(opt_in))["l1_loss"]


def test_a_path_without_an_entry_waits_unless_opted_in():
    build = {"toolchain": TOOLCHAIN, "paths": {"l1_loss": {"fingerprint": "aaaa"}}}
    status = _status(None, build)
    assert (status.state, status.runs, status.verified_by) == ("waiting", False, None)
    opted = _status(None, build, ["l1_loss"])
    assert (opted.state, opted.runs) == ("waiting", True) and "opted in" in opted.why


def test_a_path_whose_device_code_differs_from_the_verified_waits():
    status = _status(ENTRY, {"toolchain": TOOLCHAIN, "paths": {"l1_loss": {"fingerprint": "bbbb"}}})
    assert (status.state, status.runs) == ("waiting", False)
    assert "bbbb" in status.why and "aaaa" in status.why


@pytest.mark.parametrize("toolchain", [TOOLCHAIN, "ptxas V13.1; torch 2.15"])
def test_a_path_with_the_verified_device_code_runs(toolchain):
    """The same machine code, whatever toolchain made it."""
    status = _status(ENTRY, {"toolchain": toolchain, "paths": {"l1_loss": {"fingerprint": "aaaa"}}})
    assert (status.state, status.runs, status.verified_by) == ("verified", True, ENTRY)
    assert "H100" in status.why and "not compared" not in status.why


@pytest.mark.parametrize("build", [{"toolchain": "ptxas V12.8; torch 2.11", "paths": {"l1_loss": {"fingerprint": "c"}}},
                                   {"error": "no cuobjdump found"}, {}])
def test_a_build_that_cannot_be_compared_trusts_the_record_and_says_so(build):
    """Another toolchain's (or no) fingerprints cannot be compared: the record stands for the source."""
    status = _status(ENTRY, build)
    assert (status.state, status.runs) == ("verified", True)
    assert "not compared" in status.why


def test_the_passed_over_warning_names_the_path_and_the_way_to_run_it(caplog):
    with caplog.at_level(logging.WARNING, logger="genimg_fast"):
        _kernel_paths._note_passed_over("norm_cluster", "the tile kernels")
    (message,) = [r.getMessage() for r in caplog.records if r.name == "genimg_fast"]
    assert "norm_cluster" in message and "the tile kernels" in message
    assert "GENIMG_FAST_UNVERIFIED_KERNELS=norm_cluster" in message


# ---- the loaded kernels (no GPU needed) ----

@needs_kernels
def test_cpp_and_python_name_the_same_paths():
    assert list(_backend._kernels.kernel_path_names()) == ALL


@needs_kernels
def test_unknown_path_names_are_refused():
    with pytest.raises(ValueError, match="no kernel path is named 'norm_clusters'"):
        _backend._kernels.set_enabled_kernel_paths(["norm_clusters"])


# (N, C, H*W) at DCGAN's batch-128 layers and beyond, per channel: 2048, 8192, 32768, 131072 values.
DCGAN_SHAPES = [(128, 512, 16), (128, 256, 64), (128, 128, 256), (128, 64, 1024)]


@needs_kernels
@pytest.mark.parametrize("enabled,clusters,expected", [
    (ALL, True, ["norm_block", "norm_cluster", "norm_cluster", "norm_tiles"]),
    (ALL, False, ["norm_block", "norm_tiles", "norm_tiles", "norm_tiles"]),
    ([p for p in ALL if p != "norm_cluster"], True, ["norm_block", "norm_tiles", "norm_tiles", "norm_tiles"]),
    ([p for p in ALL if p != "norm_block"], True, ["norm_tiles", "norm_cluster", "norm_cluster", "norm_tiles"]),
    ([p for p in ALL if p != "norm_tiles"], True, ["norm_block", "norm_cluster", "norm_cluster", "reference"]),
    (["norm_tiles"], True, ["norm_tiles"] * 4),
    ([], True, ["reference"] * 4),
])
def test_norm_training_takes_the_best_path_that_may_run(enabled, clusters, expected):
    kernels = _backend._kernels
    if kernels.norm_block_max_count() != 2048 or kernels.norm_cluster_max_count() != 32768:
        pytest.skip("GENIMG_FAST_NORM_BLOCK_MAX or GENIMG_FAST_NORM_CLUSTER_MAX caps the block or cluster kernels")
    with paths_enabled(enabled):
        taken = [kernels.norm_train_path_for(n, c, hw, False, False, False, clusters) for n, c, hw in DCGAN_SHAPES]
        assert taken == expected
        # channels_last and double inputs: the tile kernels or nothing
        fallback = "norm_tiles" if "norm_tiles" in enabled else "reference"
        assert kernels.norm_train_path_for(128, 512, 16, True, False, False, clusters) == fallback
        assert kernels.norm_train_path_for(128, 512, 16, False, False, True, clusters) == fallback


@needs_kernels
def test_by_default_only_the_record_s_paths_run():
    """The choice a user gets: each waiting path off, unless opted in (checked in fresh processes)."""
    def enabled(opt_in: str | None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != _kernel_paths.OPT_IN_ENV}
        if opt_in is not None:
            env[_kernel_paths.OPT_IN_ENV] = opt_in
        code = "import json, genimg_fast; from genimg_fast import _backend; " \
               "print(json.dumps(_backend._kernels.enabled_kernel_paths()))"
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)

    statuses = _kernel_paths.statuses()
    verified = [name for name in ALL if statuses[name].state == "verified"]
    assert set(verified) <= set(_record_verified())
    assert json.loads(enabled(None).stdout) == verified
    assert json.loads(enabled("0").stdout) == verified
    assert json.loads(enabled("1").stdout) == ALL
    some = enabled("norm_cluster")
    assert json.loads(some.stdout) == [n for n in ALL if n in verified or n == "norm_cluster"]
    bad = enabled("norm_clusterz")
    assert bad.returncode != 0 and "GENIMG_FAST_UNVERIFIED_KERNELS names no kernel path norm_clusterz" in bad.stderr


@needs_kernels
def test_backend_info_reports_each_path_of_the_build():
    info = genimg_fast.backend_info()
    paths = info["kernel_paths"]
    assert list(paths) == ALL
    running = set(_backend._kernels.enabled_kernel_paths())
    for name, status in paths.items():
        assert status["state"] in ("verified", "waiting")
        assert status["runs"] == (name in running)
        assert status["why"]
        assert (status["verified_by"] is not None) == (status["state"] == "verified")
        if status["state"] == "verified":
            assert {"commit", "gpu", "results", "fingerprint"} <= set(status["verified_by"])
    assert info["unverified_kernels"] == os.environ.get(_kernel_paths.OPT_IN_ENV)
    json.dumps(info)


@needs_kernels
def test_a_path_passed_over_in_cpp_is_logged_once(caplog):
    """The kernels' notice reaches the genimg_fast logger (through the GIL), once per path."""
    kernels = _backend._kernels
    with paths_enabled(kernels.enabled_kernel_paths()):  # re-enabling resets what was reported
        with caplog.at_level(logging.WARNING, logger="genimg_fast"):
            kernels.note_kernel_path_passed_over("loss_terms", "the PyTorch reference")
            kernels.note_kernel_path_passed_over("loss_terms", "the PyTorch reference")
    messages = [r.getMessage() for r in caplog.records if r.name == "genimg_fast"]
    assert len(messages) == 1 and "loss_terms" in messages[0] and "the PyTorch reference" in messages[0]


# ---- on a GPU: a path that may not run gives way, with the same results ----

@pytest.fixture
def fresh_ran(cuda_kernels):
    _backend._kernels.forget_kernel_paths_ran()
    return _backend._kernels.kernel_paths_ran


@pytest.mark.cuda
def test_a_waiting_cluster_path_gives_way_to_the_tile_kernels(fresh_ran, caplog):
    if torch.cuda.get_device_capability() < (9, 0) or not _backend._kernels.norm_cluster_kernels():
        pytest.skip("this GPU runs no cluster kernels")
    if _backend._kernels.norm_cluster_max_count() < 8192:
        pytest.skip("GENIMG_FAST_NORM_CLUSTER_MAX keeps 8192-value groups off the cluster kernels")
    g = torch.Generator(device="cuda").manual_seed(3)
    x = torch.randn(128, 256, 8, 8, generator=g, device="cuda")
    w, b = torch.randn(256, generator=g, device="cuda"), torch.randn(256, generator=g, device="cuda")
    with paths_enabled(ALL):
        y_cluster, mean_cluster, _ = norm_act_train(x, w, b, False, 1e-5, "relu", 0.0)
    assert "norm_cluster" in fresh_ran()
    _backend._kernels.forget_kernel_paths_ran()
    with paths_enabled([p for p in ALL if p != "norm_cluster"]), caplog.at_level(logging.WARNING, "genimg_fast"):
        y, mean, var = norm_act_train(x, w, b, False, 1e-5, "relu", 0.0)
    assert fresh_ran() == ["norm_tiles"]
    assert any("norm_cluster" in r.getMessage() and "the tile kernels" in r.getMessage() for r in caplog.records)
    torch.testing.assert_close(y, y_cluster, rtol=0, atol=2e-5 * y_cluster.abs().max().item())
    torch.testing.assert_close(mean, mean_cluster, rtol=0, atol=1e-6)


@pytest.mark.cuda
def test_with_no_norm_kernel_the_reference_serves_training_bitwise(fresh_ran, caplog):
    g = torch.Generator(device="cuda").manual_seed(4)
    x = torch.randn(16, 8, 12, 12, generator=g, device="cuda").requires_grad_()
    w = torch.randn(8, generator=g, device="cuda").requires_grad_()
    b = torch.randn(8, generator=g, device="cuda").requires_grad_()
    gy = torch.randn(16, 8, 12, 12, generator=g, device="cuda")
    with paths_enabled([p for p in ALL if not p.startswith("norm_")]), caplog.at_level(logging.WARNING, "genimg_fast"):
        y, mean, var = norm_act_train(x, w, b, False, 1e-5, "leaky_relu", 0.2)
        dx, dw, db = torch.autograd.grad(y, (x, w, b), gy)
    assert not [p for p in fresh_ran() if p.startswith("norm_")]
    assert any("norm_tiles" in r.getMessage() and "the PyTorch reference" in r.getMessage() for r in caplog.records)
    want_mean, want_var = ref.stats(x.detach(), False)
    want_y = ref.apply(x.detach(), want_mean, want_var, w.detach(), b.detach(), 1e-5, "leaky_relu", 0.2)
    assert torch.equal(y, want_y) and torch.equal(mean, want_mean) and torch.equal(var, want_var)
    xd, wd, bd = x.detach().double(), w.detach().double(), b.detach().double()
    xd.requires_grad_(), wd.requires_grad_(), bd.requires_grad_()
    m, v = ref.stats(xd, False)
    want = torch.autograd.grad(ref.apply(xd, m, v, wd, bd, 1e-5, "leaky_relu", 0.2), (xd, wd, bd), gy.double())
    for got, expected in zip((dx, dw, db), want):
        torch.testing.assert_close(got.double(), expected, rtol=0, atol=2e-5 * expected.abs().max().item())


@pytest.mark.cuda
def test_a_batch_norm_layer_trains_on_the_reference_and_torch_s_running_update(fresh_ran):
    """BatchNormAct2d with no norm kernel and no running-statistics kernel: nn.BatchNorm2d + ReLU's
    numbers, its running statistics and batch count included."""
    torch.manual_seed(5)
    fused = BatchNormAct2d(6, activation="relu").cuda()
    plain = torch.nn.BatchNorm2d(6).cuda()
    x = torch.randn(10, 6, 7, 7, device="cuda")
    with paths_enabled([p for p in ALL if not p.startswith("norm_") and p != "running_stats"]):
        for _ in range(2):
            y = fused(x)
            want = torch.relu(plain(x))
    assert not [p for p in fresh_ran() if p.startswith("norm_") or p == "running_stats"]
    torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused.running_mean, plain.running_mean, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(fused.running_var, plain.running_var, rtol=1e-6, atol=1e-7)
    assert fused.num_batches_tracked.item() == plain.num_batches_tracked.item() == 2


@pytest.mark.cuda
def test_a_waiting_loss_kernel_gives_way_to_the_reference(fresh_ran, caplog):
    g = torch.Generator(device="cuda").manual_seed(6)
    a = torch.randn(3, 5, 7, generator=g, device="cuda").requires_grad_()
    t = torch.randn(3, 5, 7, generator=g, device="cuda")
    with paths_enabled([]), caplog.at_level(logging.WARNING, "genimg_fast"):
        loss = l1_loss(a, t, 2.0)
        (grad,) = torch.autograd.grad(loss, a)
    assert fresh_ran() == []
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "l1_loss" in messages and "scale_one_stored_grad" in messages
    want = 2.0 * torch.nn.functional.l1_loss(a.detach().double(), t.double())
    torch.testing.assert_close(loss.double(), want, rtol=1e-6, atol=0)
    torch.testing.assert_close(grad.double(), 2.0 * torch.sign(a.detach() - t).double() / a.numel(), rtol=1e-6, atol=0)
