"""`genimg-fast train dcgan` on the CPU with tiny networks: the reference's files (plain
state_dicts that load into the reference layers), samples, the loss log and curve, exact
resume after a stop anywhere, the fused and reference paths agreeing, and data errors that name
the path."""
from __future__ import annotations

import json
import os
import pickle
import signal
from pathlib import Path

import pytest
import torch

pytest.importorskip("torchvision")
pytest.importorskip("matplotlib")

from genimg_fast.cli import main  # noqa: E402
from genimg_fast.data import image_folder  # noqa: E402
from genimg_fast.models import DCGANGenerator  # noqa: E402
from genimg_fast.train import DCGANConfig, train_dcgan  # noqa: E402
from genimg_fast.train.interrupt import StopRequest  # noqa: E402
from train_logs import assert_close_runs, read_log, read_losses  # noqa: E402

TINY = dict(image_size=32, ngf=8, ndf=8, nz=16, batch_size=8, dataset_size=32, progress=False, log_every=3)


def test_a_run_writes_reference_checkpoints_samples_and_its_losses(tmp_path):
    summary = train_dcgan(DCGANConfig(out=str(tmp_path), epochs=2, **TINY))
    assert summary["steps"] == 8 and summary["epochs_done"] == 2 and not summary["stopped_early"]
    for name in ["netG_epoch_0.pth", "netG_epoch_1.pth", "netD_epoch_1.pth", "real_samples.png",
                 "fake_samples_epoch_001.png", "loss_curve.png", "training_state.pt"]:
        assert (tmp_path / name).is_file(), name
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]  # every write finished by a rename
    reference = DCGANGenerator(nz=16, ngf=8, image_size=32, fused=False)
    reference.load_state_dict(torch.load(tmp_path / "netG_epoch_1.pth", weights_only=True), strict=True)
    losses = read_losses(tmp_path)
    assert [e["step"] for e in losses] == list(range(8))
    assert all(0 < e["D_x"] < 1 and e["loss_D"] > 0 and e["loss_G"] > 0 for e in losses)


@pytest.mark.parametrize("stop_after", [3, 4])  # inside the first epoch, and at its end
def test_a_stopped_run_resumes_exactly(tmp_path, stop_after):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    train_dcgan(DCGANConfig(out=str(whole), epochs=2, **TINY))
    first = train_dcgan(DCGANConfig(out=str(parts), epochs=2, max_steps=stop_after, **TINY))
    assert first["stopped_early"] and first["steps"] == stop_after
    # a stale line past the checkpoint (as a crash between log and checkpoint would leave) is dropped
    with open(parts / "losses.jsonl", "a") as f:
        f.write(json.dumps({"step": stop_after, "epoch": 0, "loss_D": -1.0, "loss_G": -1.0}) + "\n")
    rest = train_dcgan(DCGANConfig(out=str(parts), epochs=2, resume=True, **TINY))
    assert rest["steps"] == 8 and not rest["stopped_early"]
    assert read_losses(parts) == read_losses(whole)
    for name in ["netG_epoch_1.pth", "netD_epoch_1.pth"]:
        a, b = torch.load(whole / name, weights_only=True), torch.load(parts / name, weights_only=True)
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_the_log_carries_each_window_s_data_wait_share_and_old_logs_still_resume(tmp_path):
    first = train_dcgan(DCGANConfig(out=str(tmp_path), epochs=2, max_steps=5, **TINY))  # windows 0-2, 3, 4
    assert "data_wait_share" not in first["losses"]  # a measurement, not a loss
    shares = [e["data_wait_share"] for e in read_log(tmp_path)]
    assert len(shares) == 5 and all(0 <= s <= 1 for s in shares)
    assert shares[0] == shares[1] == shares[2]  # one value per logged window
    # a log written before the field existed: resume reads and truncates it as before
    old = [{k: v for k, v in e.items() if k != "data_wait_share"} for e in read_log(tmp_path)]
    (tmp_path / "losses.jsonl").write_text("".join(json.dumps(e) + "\n" for e in old))
    (tmp_path / "loss_curve.png").unlink()
    assert train_dcgan(DCGANConfig(out=str(tmp_path), epochs=2, resume=True, **TINY))["steps"] == 8
    log = read_log(tmp_path)
    assert [e["step"] for e in log] == list(range(8))
    assert ["data_wait_share" in e for e in log] == [False] * 5 + [True] * 3
    assert (tmp_path / "loss_curve.png").is_file()


def test_resume_refuses_another_recipe_and_a_missing_state(tmp_path):
    train_dcgan(DCGANConfig(out=str(tmp_path), epochs=1, max_steps=2, **TINY))
    with pytest.raises(ValueError, match="--resume: --lr was 0.0002 in the run being resumed, now 0.001"):
        train_dcgan(DCGANConfig(out=str(tmp_path), epochs=1, resume=True, **{**TINY, "lr": 1e-3}))
    with pytest.raises(FileNotFoundError, match="no training state to resume from"):
        train_dcgan(DCGANConfig(out=str(tmp_path / "elsewhere"), resume=True, **TINY))


def test_fused_and_reference_paths_train_alike(tmp_path):
    """--impl reference trains the same layers in plain torch.nn with nn.BCELoss: same start, and
    the same losses to rounding over a few Adam steps."""
    fused = train_dcgan(DCGANConfig(out=str(tmp_path / "f"), epochs=1, impl="fused", **TINY))
    reference = train_dcgan(DCGANConfig(out=str(tmp_path / "r"), epochs=1, impl="reference", **TINY))
    assert fused["steps"] == reference["steps"] == 4
    assert_close_runs(tmp_path / "f", tmp_path / "r", rel=1e-3, keys=("loss_D", "loss_G", "D_x"))


def _write_images(folder: Path, count: int) -> None:
    from torchvision.utils import save_image
    folder.mkdir(parents=True)
    for i in range(count):
        save_image(torch.rand(3, 20, 24), folder / f"img_{i}.png")


def test_image_folders_flat_and_with_classes(tmp_path):
    _write_images(tmp_path / "flat", 16)
    _write_images(tmp_path / "classes" / "cats", 8)
    _write_images(tmp_path / "classes" / "dogs", 8)
    (tmp_path / "flat" / ".ipynb_checkpoints").mkdir()  # a hidden or empty subfolder is no class
    (tmp_path / "classes" / "empty").mkdir()
    _write_images(tmp_path / "classes" / "__MACOSX", 2)
    for data in ("flat", "classes"):
        summary = train_dcgan(DCGANConfig(data=str(tmp_path / data), out=str(tmp_path / f"out_{data}"), epochs=1,
                                          **{**TINY, "dataset_size": 0}))
        assert summary["steps"] == 2


def test_a_class_folder_set_pickles_for_spawned_workers(tmp_path):
    """DataLoader workers started by spawn (macOS, Windows) receive the dataset pickled."""
    _write_images(tmp_path / "dogs", 2)
    _write_images(tmp_path / "cats", 3)
    (tmp_path / "empty").mkdir()
    data = pickle.loads(pickle.dumps(image_folder(tmp_path, 16)))
    assert [str(f.relative_to(tmp_path)) for f in data.files] == [
        "cats/img_0.png", "cats/img_1.png", "cats/img_2.png", "dogs/img_0.png", "dogs/img_1.png"]
    assert data[4][0].shape == (3, 16, 16)


def test_bad_data_names_the_path(tmp_path):
    config = dict(TINY, epochs=1)
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nowhere'}: no such folder"):
        train_dcgan(DCGANConfig(data=str(tmp_path / "nowhere"), out=str(tmp_path / "o1"), **config))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=f"{tmp_path / 'empty'}: no image files"):
        train_dcgan(DCGANConfig(data=str(tmp_path / "empty"), out=str(tmp_path / "o2"), **config))
    _write_images(tmp_path / "broken", 7)
    (tmp_path / "broken" / "img_x.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="img_x.png: not a readable image"):
        train_dcgan(DCGANConfig(data=str(tmp_path / "broken"), out=str(tmp_path / "o3"), **config))


def test_first_ctrl_c_asks_for_a_stop_and_the_second_interrupts():
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)


def test_cli_trains_and_resumes(tmp_path, capsys):
    args = ["train", "dcgan", "--out", str(tmp_path), "--image-size", "32", "--ngf", "8", "--ndf", "8", "--nz", "16",
            "--batch-size", "8", "--dataset-size", "16", "--epochs", "2", "--no-progress"]
    assert main(args + ["--max-steps", "3"]) == 0
    assert "stopped early (resume with --resume): 3 iterations" in capsys.readouterr().out
    assert main(args + ["--resume"]) == 0
    assert "dcgan done: 4 iterations, 2 epochs" in capsys.readouterr().out


def test_cli_resume_takes_the_run_s_options_unless_given(tmp_path, capsys):
    out = str(tmp_path)
    args = ["train", "dcgan", "--out", out, "--image-size", "32", "--ngf", "8", "--ndf", "8", "--nz", "16",
            "--batch-size", "8", "--dataset-size", "16", "--epochs", "2", "--no-progress"]
    assert main(args + ["--max-steps", "3"]) == 0
    capsys.readouterr()
    assert main(["train", "dcgan", "--out", out, "--resume", "--no-progress"]) == 0  # as the README shows it
    assert "dcgan done: 4 iterations, 2 epochs" in capsys.readouterr().out
    assert main(["train", "dcgan", "--out", out, "--resume", "--epochs", "3", "--no-progress"]) == 0  # given: taken
    assert "dcgan done: 6 iterations, 3 epochs" in capsys.readouterr().out
    assert main(["train", "dcgan", "--out", out, "--resume", "--nz", "32", "--no-progress"]) == 2
    assert "--resume: --nz was 16 in the run being resumed, now 32" in capsys.readouterr().err


def test_logits_discriminator_trains_like_the_sigmoid_one(tmp_path):
    """--logits drops D's Sigmoid for BCE on logits: the same losses to rounding, fused and reference."""
    config = dict(TINY, epochs=1)
    train_dcgan(DCGANConfig(out=str(tmp_path / "sigmoid"), **config))
    for impl in ("fused", "reference"):
        train_dcgan(DCGANConfig(out=str(tmp_path / impl), logits=True, impl=impl, **config))
        assert_close_runs(tmp_path / "sigmoid", tmp_path / impl, rel=1e-3, keys=("loss_D", "loss_G", "D_x", "D_G_z2"))
    state = torch.load(tmp_path / "fused" / "netD_epoch_0.pth", weights_only=True)
    assert not any(k.startswith("main.12") for k in state)  # Sigmoid has no parameters: the same keys either way


@pytest.mark.parametrize("field,value,message", [
    ("sample_every", -1, "sample_every must not be negative"),
    ("workers", -1, "workers must not be negative"),
    ("batch_size", 0, "batch_size must be at least 1"),
    ("epochs", -1, "epochs must not be negative"),
    ("dataset_size", 0, "dataset_size must be at least 1 for the built-in data"),
    ("nz", 0, "nz must be at least 1, got 0"),
    ("ndf", -1, "ndf must be at least 1, got -1"),
    ("lr", -2e-4, "lr must not be negative"),
    ("beta1", 1.0, "beta1 must be at least 0 and below 1"),
    ("seed", -1, r"seed must be between 0 and 2\*\*63 - 1"),
    ("seed", 2**63, r"seed must be between 0 and 2\*\*63 - 1"),
])
def test_bad_options_are_refused_before_training(tmp_path, field, value, message):
    with pytest.raises(ValueError, match=message):
        train_dcgan(DCGANConfig(out=str(tmp_path), **{**TINY, field: value}))
    assert not (tmp_path / "losses.jsonl").exists()


def test_files_get_the_usual_permissions_and_a_cut_log_line_does_not_stop_resume(tmp_path):
    old = os.umask(0o022)
    try:
        train_dcgan(DCGANConfig(out=str(tmp_path), epochs=2, max_steps=5, **TINY))
    finally:
        os.umask(old)
    for name in ("netG_epoch_0.pth", "training_state.pt", "losses.jsonl"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
    with open(tmp_path / "losses.jsonl", "a") as f:
        f.write('{"step": 5, "epoch": 1, "loss_')  # a hard kill mid-line
    (tmp_path / ".training_state.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")  # and mid-save
    assert train_dcgan(DCGANConfig(out=str(tmp_path), epochs=2, resume=True, **TINY))["steps"] == 8
    assert not list(tmp_path.glob(".*.tmp"))  # the killed run's temporary file is gone
    assert [e["step"] for e in read_losses(tmp_path)] == list(range(8))


def test_resume_on_another_device_type_is_refused_naming_it(tmp_path):
    """The noise generator's state belongs to its device type (CPU and CUDA states differ)."""
    train_dcgan(DCGANConfig(out=str(tmp_path), epochs=1, max_steps=2, **TINY))
    state = torch.load(tmp_path / "training_state.pt", weights_only=False)
    assert state["recipe"]["noise_device"] == "cpu"
    state["recipe"]["noise_device"] = "cuda"  # as a GPU run would have saved it
    torch.save(state, tmp_path / "training_state.pt")
    with pytest.raises(ValueError, match=r"drew its noise on the cuda device; resume it there \(--device cuda\)"):
        train_dcgan(DCGANConfig(out=str(tmp_path), epochs=1, resume=True, **TINY))
