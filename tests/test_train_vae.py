"""`genimg-fast train vae` on the CPU: pytorch/examples' files (reconstruction_N.png,
sample_N.png) plus checkpoints that load into the model, the fused and reference losses
agreeing, exact resume, and the convolutional VAE's recipe."""
from __future__ import annotations


import pytest
import torch

pytest.importorskip("torchvision")
pytest.importorskip("matplotlib")

from genimg_fast.cli import main  # noqa: E402
from genimg_fast.models import VAE  # noqa: E402
from genimg_fast.train.vae import VAEConfig, train_vae  # noqa: E402
from train_logs import assert_close_runs, read_losses  # noqa: E402

TINY = dict(dataset_size=48, batch_size=16, progress=False, log_every=2)


def test_mlp_vae_writes_the_example_s_files(tmp_path):
    summary = train_vae(VAEConfig(out=str(tmp_path), epochs=2, **TINY))
    assert summary["steps"] == 6 and summary["epochs_done"] == 2
    for name in ["sample_1.png", "sample_2.png", "reconstruction_2.png", "vae_epoch_1.pth", "loss_curve.png"]:
        assert (tmp_path / name).is_file(), name
    VAE().load_state_dict(torch.load(tmp_path / "vae_epoch_1.pth", weights_only=True), strict=True)
    losses = [e["loss"] for e in read_losses(tmp_path)]
    assert len(losses) == 6 and losses[-1] < losses[0]  # per-image BCE + KL falls from ~550 at the start


def test_fused_and_reference_losses_agree_and_resume_is_exact(tmp_path):
    fused = tmp_path / "fused"
    train_vae(VAEConfig(out=str(fused), epochs=2, **TINY))
    train_vae(VAEConfig(out=str(tmp_path / "reference"), epochs=2, impl="reference", **TINY))
    assert_close_runs(fused, tmp_path / "reference", rel=1e-5, keys=("loss",))
    parts = tmp_path / "parts"
    train_vae(VAEConfig(out=str(parts), epochs=2, max_steps=4, **TINY))
    train_vae(VAEConfig(out=str(parts), epochs=2, resume=True, **TINY))
    assert read_losses(parts) == read_losses(fused)  # the reparameterization noise included


def test_conv_vae_recipe_runs_and_decays_its_learning_rate(tmp_path):
    summary = train_vae(VAEConfig(model="conv", out=str(tmp_path), epochs=2, dataset_size=8, batch_size=4,
                                  progress=False))
    assert summary["steps"] == 4
    state = torch.load(tmp_path / "training_state.pt", weights_only=False)
    assert state["recipe"]["optimizer"]["param_groups"][0]["lr"] == pytest.approx(5e-3 * 0.95 ** 2)
    assert (tmp_path / "reconstruction_2.png").is_file()


def test_cli_and_bad_model(tmp_path, capsys):
    assert main(["train", "vae", "--out", str(tmp_path), "--dataset-size", "32", "--batch-size", "16", "--epochs", "1",
                 "--no-progress"]) == 0
    assert "vae done: 2 iterations, 1 epochs" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "vae", "--model", "transformer"])
