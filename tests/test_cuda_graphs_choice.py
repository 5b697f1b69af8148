"""--cuda-graphs auto|on|off: auto captures every run that can be captured and names, for each
other run, why not; on refuses such a run with the same reason; off never captures."""
from __future__ import annotations

import pytest
import torch

from genimg_fast.train.cuda_graphs_choice import CUDAGraphsChoice, choose_cuda_graphs
from genimg_fast.train.options import RunOptions

GPU, CPU = torch.device("cuda"), torch.device("cpu")


@pytest.mark.parametrize("options, device, processes, reason", [
    (RunOptions(), CPU, 1, "the run is on cpu, not a CUDA GPU"),
    (RunOptions(), GPU, 2, "2 processes: the data-parallel gradient exchange is not captured"),
    (RunOptions(amp="fp16"), GPU, 1, "--amp fp16: its gradient scaler decides on the host whether to skip a step"),
    (RunOptions(compile=True), GPU, 1, "--compile: torch.compile's code is not captured"),
])
def test_auto_runs_eagerly_where_a_run_cannot_be_captured_and_says_why(options, device, processes, reason):
    choice = choose_cuda_graphs(options, device, processes)
    assert not choice.enabled and choice.reason.startswith(reason)
    assert choice.describe() == f"off ({choice.reason})"
    with pytest.raises(ValueError, match="--cuda-graphs on cannot capture this run: " + reason.replace("-", r"\-")):
        choose_cuda_graphs(RunOptions(**{**vars(options), "cuda_graphs": "on"}), device, processes)


@pytest.mark.parametrize("options", [RunOptions(), RunOptions(amp="bf16"), RunOptions(channels_last=True),
                                     RunOptions(impl="reference"), RunOptions(cuda_graphs="on")])
def test_a_single_gpu_run_is_captured(options):
    assert choose_cuda_graphs(options, GPU, 1) == CUDAGraphsChoice(True)
    assert choose_cuda_graphs(options, GPU, 1).describe() == "on"


def test_off_never_captures_and_other_values_are_refused():
    assert choose_cuda_graphs(RunOptions(cuda_graphs="off"), GPU, 1) == CUDAGraphsChoice(False, "--cuda-graphs off")
    for bad in (True, "yes", None):
        with pytest.raises(ValueError, match="cuda_graphs must be 'auto', 'on' or 'off'"):
            choose_cuda_graphs(RunOptions(cuda_graphs=bad), GPU, 1)
