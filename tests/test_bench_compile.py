"""The training bench's torch.compile variants on the CPU, as `genimg-fast bench --compile` runs
them: the reference recipe's networks compiled in each mode, every row with the iteration's FLOPs
and its TFLOP/s, each row's ratio to the best mode, and a mode that cannot run here reported in
its row instead of ending the case."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from genimg_fast import cli
from genimg_fast.bench import training_bench
from genimg_fast.bench.compile_modes import MODES, mode_note, variant_name
from genimg_fast.bench.flops import count_flops
from genimg_fast.bench.versus_compile import summary_lines

CPU = torch.device("cpu")
# the smallest DCGAN the recipe builds: compiling it in three modes takes seconds once inductor's
# cache is warm (about a minute cold)
TINY = training_bench.TrainingCase("dcgan", "dcgan training tiny", (4, 3, 32, 32), training_bench._dcgan(32, 4, 4),
                                   quick=True)


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_compile_modes_run_on_cpu_with_flops_and_tflops():
    rows = training_bench.run_case(TINY, CPU, compile_too=True, warmup=1, repeats=2)
    by_variant = {row["variant"]: row for row in rows}
    assert list(by_variant) == ["torch", *(variant_name(mode) for mode in MODES), "genimg_fast"]
    # D forward thrice and G once, their backwards: counted from the shapes, the same for every variant
    flops = {row["flops"] for row in rows}
    assert flops == {count_flops(lambda: _reference_step(TINY))}
    for row in rows:
        assert row["median_ms"] > 0 and row["flops"] > 0
        assert row["tflops"] == pytest.approx(row["flops"] / (row["median_ms"] * 1e-3) / 1e12)
        assert row["peak_share"] is None and row["peak"] is None  # no peak on a CPU
        assert row["speedup_vs_best_compile"] > 0
    compiled = [by_variant[variant_name(mode)] for mode in MODES]
    assert max(row["speedup_vs_best_compile"] for row in compiled) == pytest.approx(1.0)
    assert "no CUDA graphs on cpu" in by_variant[variant_name("reduce-overhead")]["note"]
    [line] = summary_lines(rows)
    assert line.startswith("dcgan training tiny: genimg_fast ") and "vs best torch.compile (" in line


def _reference_step(case):
    recipe = case.build({"device": "cpu", "impl": "reference", "progress": False}, CPU)
    return recipe.step(training_bench._batches(case, CPU)[0])


def _compile_fails_in(broken_mode: str):
    """compile_networks standing in for torch.compile: nothing compiled (fast), and `broken_mode`
    failing as a mode that cannot run on this device would."""
    def compile_networks(recipe, mode):
        if mode == broken_mode:
            raise RuntimeError(f"{mode} is not supported on this device\n(a compiler's long trace)")
    return compile_networks


def test_a_mode_that_cannot_run_says_so_in_its_row(monkeypatch):
    monkeypatch.setattr(training_bench, "compile_networks", _compile_fails_in("max-autotune-no-cudagraphs"))
    rows = training_bench.run_case(TINY, CPU, compile_too=True, warmup=1, repeats=2)
    broken = next(r for r in rows if r["variant"] == variant_name("max-autotune-no-cudagraphs"))
    assert broken["median_ms"] is None and broken["tflops"] is None and broken["speedup_vs_best_compile"] is None
    assert broken["note"] == ("not run: fails on cpu: RuntimeError: max-autotune-no-cudagraphs is not supported "
                              "on this device")
    timed = [r for r in rows if r is not broken]
    assert len(timed) == 4 and all(r["median_ms"] > 0 and r["speedup_vs_best_compile"] > 0 for r in timed)


def test_a_crash_outside_the_compile_modes_still_fails_the_case(monkeypatch):
    original = TINY.build

    def build(options, device):
        if options["impl"] == "fused":
            raise RuntimeError("the fused recipe broke")
        return original(options, device)
    monkeypatch.setattr(training_bench, "compile_networks", _compile_fails_in(None))
    with pytest.raises(RuntimeError, match="the fused recipe broke"):
        training_bench.run_case(dataclasses.replace(TINY, build=build), CPU, compile_too=True, warmup=1,
                                repeats=2)


def test_bench_compile_prints_and_writes_the_comparison(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(training_bench, "compile_networks", _compile_fails_in("reduce-overhead"))
    md = tmp_path / "bench.md"
    assert cli.main(["bench", "--quick", "--device", "cpu", "--compile", "--models", "--only", "dcgan training",
                     "--repeats", "20", "--markdown", str(md)]) == 0
    out = capsys.readouterr().out
    assert "GFLOP/step" in out and "TFLOP/s" in out and "x vs best compile" in out
    assert "vs best torch.compile: dcgan training small: genimg_fast " in out
    assert "not run: fails on cpu: RuntimeError: reduce-overhead" in out
    summary = md.read_text()
    assert "## genimg_fast vs the best torch.compile mode" in summary
    assert "| dcgan training small | 16x3x32x32 | float32 | torch.compile(torch) reduce-overhead | not run |" in summary


def test_what_a_compile_row_says_about_its_mode():
    cuda = torch.device("cuda")
    assert mode_note("reduce-overhead", CPU) == "no CUDA graphs on cpu: compiles as 'default'"
    assert mode_note("reduce-overhead", cuda) is None
    assert mode_note("reduce-overhead", cuda, skipped=2).startswith("2 compiled graph(s) left out of CUDA graphs")
    assert mode_note("default", CPU) is None and mode_note("max-autotune-no-cudagraphs", cuda, skipped=1) is None
