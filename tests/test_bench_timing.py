"""The benchmark's profiler hygiene: launch counts must not leave CUPTI attached to slow the cases
timed after them (benchmarks/profiler_residue.py measured it), except where teardown is unsafe."""
from __future__ import annotations

import os

import pytest
import torch

from genimg_fast.bench.timing import count_launches, release_cupti_after_profiling


@pytest.mark.parametrize("cuda,expected", [("13.0", "1"), ("12.6", "1"), ("12.4", None), ("11.8", None), (None, None)])
def test_cupti_teardown_is_asked_for_from_cuda_12_6(monkeypatch, cuda, expected):
    monkeypatch.setenv("TEARDOWN_CUPTI", "unset below")  # so that the test's own setting is undone after it
    monkeypatch.delenv("TEARDOWN_CUPTI")
    monkeypatch.setattr(torch.version, "cuda", cuda)
    release_cupti_after_profiling()
    assert os.environ.get("TEARDOWN_CUPTI") == expected


def test_a_teardown_setting_of_the_user_is_kept(monkeypatch):
    monkeypatch.setenv("TEARDOWN_CUPTI", "0")
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    release_cupti_after_profiling()
    assert os.environ["TEARDOWN_CUPTI"] == "0"


def test_no_launch_count_off_the_gpu():
    calls = []
    assert count_launches(lambda: calls.append(1), torch.device("cpu")) is None
    assert not calls  # not even run: nothing to count
