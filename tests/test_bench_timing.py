"""The benchmark's profiler hygiene: a torch.profiler session slows every eager step after it
(genimg_fast/bench/launch_counts.py), so launches are counted once every case has been timed."""
from __future__ import annotations

import types

import pytest
import torch

from genimg_fast.bench import suite
from genimg_fast.bench.launch_counts import DeferredLaunchCounts
from genimg_fast.bench.rows import timing_rows
from genimg_fast.bench.timing import Timing, count_launches

CPU = torch.device("cpu")


def _rows(*variants: str) -> list[dict]:
    timings = {name: Timing(1.0, 0.9, 1.1, 3) for name in ("torch", *variants)}
    return timing_rows(timings, op="op", case="case", shape=(1,), dtype=torch.float32, modeled_bytes=None)


def test_no_launch_count_off_the_gpu():
    calls = []
    assert count_launches(lambda: calls.append(1), CPU) is None
    assert not calls  # not even run: nothing to count


def test_deferred_counts_fill_each_rows_variant_only_when_asked():
    counted = []

    def count(fn, device):
        counted.append(fn())
        return 10 * len(counted)
    counts = DeferredLaunchCounts(count)
    rows = _rows("genimg_fast", "torch (cuda graph)")
    steps = {"torch": lambda i: ("torch", i), "genimg_fast": lambda i: ("genimg_fast", i)}  # no graph step
    counts.add(rows, steps, CPU)
    assert not counted and all(row["launches"] is None for row in rows)
    counts.count_all()
    assert counted == [("torch", 0), ("genimg_fast", 0)]  # one step each, of the first input set
    assert [row["launches"] for row in rows] == [10, 20, None]
    counts.count_all()  # the steps are let go once counted
    assert len(counted) == 2


def test_the_suite_counts_launches_after_its_last_case_is_timed(monkeypatch):
    events = []

    def run_case(case, device, *, compile_too, warmup, repeats, launch_counts):
        events.append(f"timed {case.label}")
        rows = _rows("genimg_fast")
        launch_counts.add(rows, {"genimg_fast": lambda i: events.append(f"counted {case.label}")}, device)
        return rows
    family = types.SimpleNamespace(__name__="fake_bench", run_case=run_case,
                                   cases=lambda device, quick: [types.SimpleNamespace(label=label)
                                                                for label in ("first", "second")])
    monkeypatch.setattr(suite, "KINDS", {"ops": (family,)})
    monkeypatch.setattr(suite, "COUNTING_LAUNCHES", (family,))
    monkeypatch.setattr(suite, "copy_bandwidth_gbs", lambda device: None)
    monkeypatch.setattr(suite, "DeferredLaunchCounts", lambda: DeferredLaunchCounts(lambda fn, device: fn() or 3))
    record = suite.run_suite(CPU, quick=True, compile_too=False, kinds="ops")
    assert events == ["timed first", "timed second", "counted first", "counted second"]
    assert [row["launches"] for row in record["results"]] == [None, 3, None, 3]


def test_a_count_that_fails_leaves_its_row_unknown_and_the_others_counted():
    def count(fn, device):
        if fn() == "torch":
            raise RuntimeError("CUPTI_ERROR_NOT_INITIALIZED")
        return 4
    counts = DeferredLaunchCounts(count)
    rows = _rows("genimg_fast")
    counts.add(rows, {"torch": lambda i: "torch", "genimg_fast": lambda i: "genimg_fast"}, CPU)
    with pytest.warns(UserWarning, match="could not count the launches of op, case, torch: RuntimeError: CUPTI"):
        counts.count_all()
    assert [row["launches"] for row in rows] == [None, 4]


def test_objective_rows_get_their_own_steps_counts_and_forward_rows_none():
    from genimg_fast.bench import objectives_bench
    case = next(c for c in objectives_bench.cases(CPU, quick=False) if c.name == "cyclegan_D")
    assert case.forward_too  # the full suite also times the value alone, under the same variant names
    counts = DeferredLaunchCounts(lambda fn, device: 7)
    rows = objectives_bench.run_case(case, CPU, compile_too=False, warmup=1, repeats=2, launch_counts=counts)
    counts.count_all()
    launches = {(row["op"], row["variant"]): row["launches"] for row in rows}
    both, value_only = "cyclegan_D objective fwd+bwd", "cyclegan_D objective fwd"
    assert launches == {(both, "torch"): 7, (both, "genimg_fast"): 7,
                        (value_only, "torch"): None, (value_only, "genimg_fast"): None}
