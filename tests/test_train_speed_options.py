"""The trainers' speed options on the CPU: --amp bf16 / fp16 (with its gradient scaler, resumed
with the run), --channels-last (the same numbers as the default layout) and --compile (the
checkpoints keep the reference's keys)."""
from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("torchvision")
pytest.importorskip("matplotlib")

from genimg_fast.models import DCGANGenerator  # noqa: E402
from genimg_fast.train.cyclegan import CycleGANConfig, train_cyclegan  # noqa: E402
from genimg_fast.train.dcgan import DCGANConfig, train_dcgan  # noqa: E402
from train_logs import assert_close_runs, read_losses  # noqa: E402

DCGAN = dict(image_size=32, ngf=8, ndf=8, nz=16, batch_size=8, dataset_size=32, epochs=2, progress=False, log_every=2)
CYCLE = dict(crop_size=32, ngf=4, ndf=4, netG="resnet_6blocks", dataset_size=4, batch_size=2, epochs=1,
             epochs_decay=0, pool_size=2, progress=False)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_trains_and_resumes(tmp_path, amp):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    train_dcgan(DCGANConfig(out=str(whole), amp=amp, **DCGAN))
    fp32 = tmp_path / "fp32"
    train_dcgan(DCGANConfig(out=str(fp32), **DCGAN))
    for low, full in zip(read_losses(whole)[:2], read_losses(fp32)[:2]):  # before the runs drift apart
        assert math.isfinite(low["loss_D"]) and low["loss_D"] == pytest.approx(full["loss_D"], rel=0.1)
    train_dcgan(DCGANConfig(out=str(parts), amp=amp, max_steps=3, **DCGAN))
    state = torch.load(parts / "training_state.pt", weights_only=False)
    assert bool(state["recipe"]["scaler"]) == (amp == "fp16")
    train_dcgan(DCGANConfig(out=str(parts), amp=amp, resume=True, **DCGAN))
    assert read_losses(parts) == read_losses(whole)


def test_channels_last_gives_the_default_layout_s_numbers(tmp_path):
    train_cyclegan(CycleGANConfig(out=str(tmp_path / "nchw"), **CYCLE))
    train_cyclegan(CycleGANConfig(out=str(tmp_path / "nhwc"), channels_last=True, **CYCLE))
    assert_close_runs(tmp_path / "nchw", tmp_path / "nhwc", rel=1e-4, abs=1e-6)


def test_compiled_networks_keep_the_reference_checkpoint_keys(tmp_path, monkeypatch):
    compile_module = torch.nn.Module.compile
    # aot_eager: the same tracing as the default backend, without building C++ kernels in a test
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: compile_module(self, backend="aot_eager"))
    summary = train_dcgan(DCGANConfig(out=str(tmp_path), compile=True, **{**DCGAN, "epochs": 1}))
    assert summary["steps"] == 4
    state = torch.load(tmp_path / "netG_epoch_0.pth", weights_only=True)
    assert not any("_orig_mod" in k for k in state)
    DCGANGenerator(nz=16, ngf=8, image_size=32, fused=False).load_state_dict(state, strict=True)


def test_unknown_precision_is_refused(tmp_path):
    with pytest.raises(ValueError, match="amp must be 'none', 'bf16' or 'fp16'"):
        train_dcgan(DCGANConfig(out=str(tmp_path), amp="fp8", **DCGAN))


def test_cuda_graphs_on_is_refused_where_the_run_cannot_be_captured(tmp_path):
    with pytest.raises(ValueError, match="--cuda-graphs on cannot capture this run: the run is on cpu"):
        train_dcgan(DCGANConfig(out=str(tmp_path), cuda_graphs="on", **{**DCGAN, "device": "cpu"}))
    with pytest.raises(ValueError, match="cuda_graphs must be 'auto', 'on' or 'off', got True"):
        train_dcgan(DCGANConfig(out=str(tmp_path), cuda_graphs=True, **DCGAN))


def test_the_run_header_says_whether_and_why_not_the_iterations_are_captured(tmp_path, capsys):
    train_cyclegan(CycleGANConfig(out=str(tmp_path), max_steps=1, **{**CYCLE, "progress": True}))
    assert "cuda graphs: off (the run is on cpu, not a CUDA GPU)" in capsys.readouterr().out


def test_a_state_saved_with_cuda_graphs_resumes_without_them():
    """Optimizer.load_state_dict takes the saved groups' flags: a capturable group with a tensor
    learning rate (what --cuda-graphs saves) must become a plain Adam's again."""
    from genimg_fast.train.options import load_optimizer

    weight = torch.nn.Parameter(torch.ones(3))
    saved_by_graphs = torch.optim.Adam([weight], lr=1e-3)
    weight.grad = torch.ones(3)
    saved_by_graphs.step()
    state = saved_by_graphs.state_dict()
    state["param_groups"][0].update(capturable=True, lr=torch.tensor(2e-3))
    resumed = torch.optim.Adam([weight], lr=1e-3)
    load_optimizer(resumed, state, capturable=False)
    group = resumed.param_groups[0]
    assert group["capturable"] is False and group["lr"] == pytest.approx(2e-3) and not torch.is_tensor(group["lr"])
    resumed.step()  # a capturable group would refuse CPU parameters here
