"""Data-parallel training with torchrun on the CPU (gloo): two processes, each on half of every
batch, with synchronized batch norm and averaged gradients, train what one process trains on
the whole batch; only rank 0 writes files."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_logs import assert_close_runs, read_losses  # noqa: E402

pytest.importorskip("torchvision")
pytest.importorskip("matplotlib")

ARGS = ["--image-size", "32", "--ngf", "8", "--ndf", "8", "--nz", "16", "--batch-size", "8", "--dataset-size", "32",
        "--epochs", "1", "--log-every", "2", "--device", "cpu", "--no-progress"]


def _run_trainer(model: str, out: Path, args: list[str], processes: int) -> subprocess.CompletedProcess:
    """`genimg-fast train <model>` in a child process, under torchrun with several processes."""
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
                if processes > 1 else [sys.executable])
    return subprocess.run(launcher + ["-m", "genimg_fast.cli", "train", model, "--out", str(out)] + args,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _failure(run: subprocess.CompletedProcess) -> str:
    """What a failed run printed last: torchrun's report is ~2500 characters, so keep enough to
    show the processes' own last lines before it (a rank that aborted once in CI left only
    "terminate called without an active exception" within a 3000-character tail)."""
    return run.stderr[-10000:]


def _train(out: Path, processes: int) -> subprocess.CompletedProcess:
    return _run_trainer("dcgan", out, ARGS, processes)


@pytest.mark.slow
def test_two_processes_train_what_one_trains_on_the_whole_batch(tmp_path):
    one, two = _train(tmp_path / "one", 1), _train(tmp_path / "two", 2)
    assert one.returncode == 0, _failure(one)
    assert two.returncode == 0, _failure(two)
    assert two.stdout.count("dcgan done") == 1  # rank 0 alone reports and writes
    assert len(read_losses(tmp_path / "one")) == 4
    assert_close_runs(tmp_path / "one", tmp_path / "two", rel=1e-4, abs=1e-6,
                      keys=("loss_D", "loss_G", "D_x", "D_G_z1", "D_G_z2"))
    for name in ("netG_epoch_0.pth", "netD_epoch_0.pth"):
        a = torch.load(tmp_path / "one" / name, weights_only=True)
        b = torch.load(tmp_path / "two" / name, weights_only=True)
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=lambda m, key=key: f"{key}: {m}")


def _cyclegan(out: Path, extra: list[str]) -> subprocess.CompletedProcess:
    args = ["--crop-size", "32", "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--dataset-size", "12",
            "--batch-size", "4", "--epochs", "1", "--epochs-decay", "0", "--pool-size", "3", "--log-every", "1",
            "--device", "cpu", "--no-progress"]
    return _run_trainer("cyclegan", out, args + extra, processes=2)


@pytest.mark.slow
def test_a_data_parallel_run_resumes_exactly(tmp_path):
    """Each process's random state and image pools come back to that process."""
    runs = [_cyclegan(tmp_path / "whole", []), _cyclegan(tmp_path / "parts", ["--max-steps", "2"]),
            _cyclegan(tmp_path / "parts", ["--resume"])]
    for name, run in zip(("whole", "first 2 steps", "resumed"), runs):
        assert run.returncode == 0, f"{name} run failed:\n{_failure(run)}"
    whole, parts = read_losses(tmp_path / "whole"), read_losses(tmp_path / "parts")
    assert len(whole) == 3 and parts == whole


def test_each_process_draws_from_its_own_stream():
    """Dropout masks, the VAE's noise and image-pool choices must differ between the slices of one
    batch; rank 0 keeps a single process's stream."""
    import random

    from genimg_fast.train.distributed import Distributed, seed_process_draws

    def draws(rank: int) -> tuple[torch.Tensor, float]:
        torch.manual_seed(5)
        random.seed(5)
        seed_process_draws(5, Distributed(rank, 3))
        return torch.randn(4), random.random()

    single = (torch.manual_seed(5) and torch.randn(4), random.seed(5) or random.random())
    ranks = [draws(r) for r in range(3)]
    assert torch.equal(ranks[0][0], single[0]) and ranks[0][1] == single[1]
    for a in range(3):
        for b in range(a + 1, 3):
            assert not torch.equal(ranks[a][0], ranks[b][0]) and ranks[a][1] != ranks[b][1]
    assert torch.equal(draws(2)[0], ranks[2][0])  # and repeats from the seed


def test_an_explicit_gpu_under_torchrun_is_refused(monkeypatch):
    """Every process would take that one GPU and NCCL would fail obscurely."""
    from genimg_fast.train.distributed import from_environment

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="each process takes its LOCAL_RANK's GPU: give --device cuda"):
        from_environment("cuda:1")
