"""The data-loading worker count a run uses: --workers N as given, else one that follows the
machine (none on a CPU device; on CUDA the process's share of the CPUs less one, at most 8)."""
from __future__ import annotations

import os

import pytest

from genimg_fast.train.workers import (MAX_AUTO_WORKERS, cpus_per_process, describe_workers, resolve_workers,
                                       usable_cpus)


@pytest.mark.parametrize("cpus,local,expected", [
    (1, 1, 0),     # no core to spare: the loop loads its own batches
    (2, 1, 1),
    (4, 1, 3),
    (9, 1, 8),
    (64, 1, MAX_AUTO_WORKERS),
    (64, 8, 7),    # torchrun, 8 processes on the node: 8 CPUs each
    (16, 4, 3),
    (4, 8, 0),     # fewer CPUs than processes: each still has one, none to spare
])
def test_auto_on_cuda_leaves_a_core_to_the_trainer_and_shares_the_node(cpus, local, expected):
    assert resolve_workers(None, "cuda", cpus=cpus, local_processes=local) == expected


@pytest.mark.parametrize("cpus", [1, 2, 64])
def test_auto_on_a_cpu_device_is_no_workers(cpus):
    assert resolve_workers(None, "cpu", cpus=cpus, local_processes=1) == 0


def test_an_explicit_count_wins_up_to_the_process_s_cpus():
    assert resolve_workers(0, "cuda", cpus=64, local_processes=1) == 0
    assert resolve_workers(12, "cuda", cpus=16, local_processes=1) == 12
    assert resolve_workers(3, "cpu", cpus=64, local_processes=1) == 3
    assert resolve_workers(1000, "cuda", cpus=16, local_processes=1) == 16  # more would only take turns
    assert resolve_workers(12, "cpu", cpus=4, local_processes=1) == 4
    assert resolve_workers(12, "cuda", cpus=32, local_processes=4) == 8  # torchrun: this process's share


def test_the_node_s_processes_come_from_torchrun_s_environment(monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert cpus_per_process(cpus=32) == 8
    assert resolve_workers(None, "cuda", cpus=32) == 7
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert cpus_per_process(cpus=32) == 32


def test_usable_cpus_follow_the_affinity_mask():
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert usable_cpus() == expected >= 1


def test_the_header_says_whether_the_count_was_chosen():
    assert describe_workers(None, 7) == "data workers: 7 (auto)"
    assert describe_workers(2, 2) == "data workers: 2"
    assert describe_workers(1000, 16) == "data workers: 16 (--workers 1000 capped to the CPUs this process may use)"
