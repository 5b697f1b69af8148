"""Which implementation serves a fused module or loss: the kernels, torch's own ops (the
fallback) or the exact references. The choice is host code: tested here without a GPU."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import genimg_fast
from genimg_fast import _backend, _implementation
from genimg_fast._implementation import FALLBACK, KERNELS, REFERENCE, forced, implementation
from genimg_fast.nn import BatchNormAct2d, InstanceNormAct2d


def _grad_fn_names(y: torch.Tensor) -> set[str]:
    """Every autograd node behind y."""
    seen, todo = set(), [y.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node.name() in seen:
            continue
        seen.add(node.name())
        todo += [next_fn for next_fn, _ in node.next_functions]
    return seen


def test_cpu_tensors_take_the_fallback_by_default():
    x = torch.randn(4, 3, 5, 5)
    assert _backend.requested_impl() != "reference"
    for family in _implementation.FAMILY_PATHS:
        assert implementation(x, family) == FALLBACK
    info = genimg_fast.backend_info()["implementation"]
    assert info["cpu"]["impl"] == FALLBACK


@pytest.mark.parametrize("module", [BatchNormAct2d(3), BatchNormAct2d(3).eval(), InstanceNormAct2d(3, affine=True)])
def test_the_fallback_runs_torchs_own_norm_not_the_reference(module):
    """On CPU the modules' graph holds torch's batch norm and activation: no genimg_fast op."""
    x = torch.randn(4, 3, 5, 5, requires_grad=True)
    names = _grad_fn_names(module(x))
    assert any("BatchNorm" in name for name in names), names  # instance norm runs as a batch norm
    assert not any("NormAct" in name or "genimg_fast" in name for name in names), names


def test_forced_reference_runs_the_exact_reference():
    x = torch.randn(4, 3, 5, 5, requires_grad=True)
    with forced(REFERENCE):
        names = _grad_fn_names(BatchNormAct2d(3)(x))
    assert not any("NativeBatchNorm" in name for name in names), names


def _cuda_choice_in_child(env: dict[str, str]) -> dict:
    code = ("import genimg_fast, json; print(json.dumps(genimg_fast.backend_info()['implementation']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(torch.cuda.is_available(), reason="the choice without a GPU")
def test_a_cuda_tensor_without_usable_kernels_would_take_the_fallback():
    for family, choice in genimg_fast.backend_info()["implementation"]["cuda"].items():
        assert choice["impl"] == FALLBACK, (family, choice)
        assert "cannot run" in choice["why"]


def test_a_waiting_kernel_path_sends_its_family_to_the_fallback(monkeypatch):
    """Kernels usable on this GPU but a path the family needs may not run: the fallback serves."""
    monkeypatch.setattr(_backend, "unusable_reason", lambda: None)
    monkeypatch.setattr(_backend, "enabled_kernel_paths",
                        lambda: ["norm_tiles", "loss_terms", "scale_term_stored_grads", "l1_loss"])
    _implementation.forget_choices()
    try:
        assert _implementation.cuda_choice("norm")[0] == KERNELS
        assert _implementation.cuda_choice("loss_terms")[0] == KERNELS
        impl, why = _implementation.cuda_choice("l1_loss")
        assert impl == FALLBACK and "scale_one_stored_grad kernel path may not run" in why
    finally:
        _implementation.forget_choices()


def test_reference_is_only_chosen_when_asked():
    info = _cuda_choice_in_child({"GENIMG_FAST_IMPL": "reference"})
    assert info["cpu"]["impl"] == REFERENCE
    assert all(choice["impl"] == REFERENCE for choice in info["cuda"].values())
    assert _cuda_choice_in_child({"GENIMG_FAST_IMPL": "auto"})["cpu"]["impl"] == FALLBACK


def test_forced_refuses_an_unknown_implementation():
    with pytest.raises(ValueError, match="impl must be"):
        with forced("fastest"):
            pass
