"""The dense peaks the benchmark knows (genimg_fast/bench/peaks.py) and a row's share of them:
known GPU names give their datasheet's dense TF32 and BF16 figures, anything else no peak at all;
fp32 rows are held against TF32 only while cuDNN may use it, bf16 rows against BF16."""
from __future__ import annotations

import pytest
import torch

from genimg_fast.bench.peaks import DensePeak, applicable_peak, dense_peak, device_peak, share_of_peak
from genimg_fast.bench.report import format_table
from genimg_fast.bench.rows import add_flop_rates, not_run_row, timing_rows
from genimg_fast.bench.timing import Timing


@pytest.mark.parametrize("name,card,tf32,bf16", [
    ("NVIDIA H100 80GB HBM3", "H100 SXM", 494.7, 989.4),
    ("NVIDIA H100 PCIe", "H100 PCIe", 378.0, 756.0),
    ("NVIDIA H100 NVL", "H100 NVL", 417.5, 835.5),
    ("NVIDIA H200", "H200 SXM", 494.7, 989.4),
    ("NVIDIA H200 NVL", "H200 NVL", 417.5, 835.5),
])
def test_known_gpus_give_their_dense_peaks(name, card, tf32, bf16):
    assert dense_peak(name) == DensePeak(card, tf32=tf32, bf16=bf16)


@pytest.mark.parametrize("name", [None, "", "cpu (x86_64, 2 threads)", "NVIDIA A100-SXM4-80GB", "NVIDIA H800",
                                  "NVIDIA GH200 480GB", "NVIDIA H100", "NVIDIA H100 80GB HBM3 MIG 1g.10gb"])
def test_other_names_have_no_peak(name):
    """Not a guess: an unknown card, a bare "H100" that names no board, a MIG slice, the CPU."""
    assert dense_peak(name) is None


def test_a_cpu_has_no_peak():
    assert device_peak(torch.device("cpu")) is None


def test_which_peak_a_row_is_measured_against():
    h100 = dense_peak("NVIDIA H100 80GB HBM3")
    assert applicable_peak(h100, "bf16", tf32_allowed=True) == ("BF16", 989.4)
    assert applicable_peak(h100, "bf16", tf32_allowed=False) == ("BF16", 989.4)
    assert applicable_peak(h100, "fp32", tf32_allowed=True) == ("TF32", 494.7)
    assert applicable_peak(h100, "fp32", tf32_allowed=False) is None  # full fp32: no tensor-core peak known
    assert applicable_peak(None, "bf16", tf32_allowed=True) is None


def test_share_of_peak_arithmetic():
    assert share_of_peak(247.35, 494.7) == pytest.approx(0.5)
    assert share_of_peak(None, 494.7) is None and share_of_peak(1.0, None) is None


def _rows():
    # 2 ms for the fp32 baseline, 1 ms in bf16; one variant did not run
    timings = {"torch": Timing(2.0, 1.9, 2.1, 10), "fast bf16": Timing(1.0, 0.9, 1.1, 10)}
    fields = {"op": "x training iteration", "case": "x b1", "shape": (1, 3, 8, 8), "dtype": torch.float32}
    return timing_rows(timings, modeled_bytes=None, **fields) + [not_run_row(variant="slow", why="no", **fields)]


def test_rows_get_flops_tflops_and_their_share_of_the_peak():
    rows = _rows()
    flops = 989_400_000_000  # 989.4 GFLOP a step
    add_flop_rates(rows, flops, {"torch": "fp32", "fast bf16": "bf16", "slow": "fp32"},
                   dense_peak("NVIDIA H200"), tf32_allowed=True)
    torch_row, bf16_row, not_run = rows
    assert torch_row["flops"] == bf16_row["flops"] == flops
    assert torch_row["tflops"] == pytest.approx(494.7) and torch_row["peak"] == "TF32"  # 989.4 GFLOP in 2 ms
    assert torch_row["peak_share"] == pytest.approx(1.0)
    assert bf16_row["tflops"] == pytest.approx(989.4) and bf16_row["peak"] == "BF16"
    assert bf16_row["peak_share"] == pytest.approx(1.0)
    assert not_run["tflops"] is None and not_run["peak_share"] is None
    table = format_table(rows, None)
    assert "% of peak" in table and "100.0% TF32" in table and "100.0% BF16" in table and "not run: no" in table


def test_without_tf32_or_a_known_gpu_there_is_no_share():
    rows = _rows()
    add_flop_rates(rows, 10**12, {"fast bf16": "bf16"}, dense_peak("NVIDIA H100 80GB HBM3"), tf32_allowed=False)
    assert rows[0]["tflops"] == pytest.approx(500.0) and rows[0]["peak_share"] is None and rows[0]["peak"] is None
    assert rows[1]["peak"] == "BF16"
    rows = _rows()
    add_flop_rates(rows, 10**12, {"fast bf16": "bf16"}, None, tf32_allowed=True)  # a CPU, an unknown GPU
    assert [r["peak_share"] for r in rows] == [None, None, None] and rows[1]["tflops"] == pytest.approx(1000.0)
