"""`genimg-fast train cyclegan` and `train pix2pix` on the CPU with tiny networks: junyanz's
checkpoint names and keys, the learning-rate policy, exact resume (image pools, dropout and
Python's random state included), the fused and reference paths agreeing, the built-in sets
and junyanz's folder layouts, and layout errors that name the path."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

pytest.importorskip("torchvision")
pytest.importorskip("matplotlib")

from genimg_fast.cli import main  # noqa: E402
from genimg_fast.data import AlignedFolder, UnalignedFolder, UnpairedShapeStyles  # noqa: E402
from genimg_fast.models import define_G  # noqa: E402
from genimg_fast.train.cyclegan import CycleGANConfig, train_cyclegan  # noqa: E402
from genimg_fast.train.pix2pix import Pix2PixConfig, train_pix2pix  # noqa: E402
from train_logs import assert_close_runs, read_losses  # noqa: E402

CYCLE = dict(crop_size=32, ngf=4, ndf=4, netG="resnet_6blocks", dataset_size=6, batch_size=2, epochs=1,
             epochs_decay=1, pool_size=3, save_epoch_freq=2, progress=False, log_every=2)
PIX = dict(crop_size=128, ngf=4, ndf=4, netG="unet_128", dataset_size=6, batch_size=2, epochs=1, epochs_decay=1,
           save_epoch_freq=2, progress=False, log_every=2)


def test_cyclegan_writes_junyanz_checkpoints_and_decays_its_rate(tmp_path):
    summary = train_cyclegan(CycleGANConfig(out=str(tmp_path), **CYCLE))
    assert summary["steps"] == 6 and summary["epochs_done"] == 2
    for name in ["latest_net_G_A.pth", "latest_net_D_B.pth", "2_net_G_B.pth", "visuals_epoch_002.png"]:
        assert (tmp_path / name).is_file(), name
    reference = define_G(3, 3, 4, "resnet_6blocks", "instance", fused=False)
    reference.load_state_dict(torch.load(tmp_path / "latest_net_G_A.pth", weights_only=True), strict=True)
    entries = read_losses(tmp_path)
    assert set(entries[0]) >= {"loss_G", "G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B"}
    assert entries[0]["loss_G"] == pytest.approx(sum(entries[0][k] for k in
                                                     ("G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B")), rel=1e-5)
    state = torch.load(tmp_path / "training_state.pt", weights_only=False)
    # one epoch at 2e-4, then one decaying epoch (factor 1 - 1/2), then the scheduler's next value
    assert state["recipe"]["optG"]["param_groups"][0]["lr"] == pytest.approx(2e-4 * (1 - 2 / 2))
    assert len(state["processes"][0]["recipe"]["pool_A"]["images"]) == 3


@pytest.mark.parametrize("train,config_cls,tiny", [(train_cyclegan, CycleGANConfig, CYCLE),
                                                   (train_pix2pix, Pix2PixConfig, PIX)])
def test_a_stopped_run_resumes_exactly(tmp_path, train, config_cls, tiny):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    train(config_cls(out=str(whole), **tiny))
    train(config_cls(out=str(parts), max_steps=4, **tiny))
    train(config_cls(out=str(parts), resume=True, **tiny))
    assert read_losses(parts) == read_losses(whole)


@pytest.mark.parametrize("train,config_cls,tiny", [(train_cyclegan, CycleGANConfig, CYCLE),
                                                   (train_pix2pix, Pix2PixConfig, PIX)])
def test_fused_and_reference_paths_train_alike(tmp_path, train, config_cls, tiny):
    tiny = {**tiny, "epochs_decay": 0, "dataset_size": 4}
    train(config_cls(out=str(tmp_path / "f"), impl="fused", **tiny))
    train(config_cls(out=str(tmp_path / "r"), impl="reference", **tiny))
    assert_close_runs(tmp_path / "f", tmp_path / "r", rel=1e-3, abs=1e-5)


def test_pix2pix_writes_junyanz_checkpoints(tmp_path):
    summary = train_pix2pix(Pix2PixConfig(out=str(tmp_path), **PIX))
    assert summary["steps"] == 6
    for name in ["latest_net_G.pth", "latest_net_D.pth", "2_net_G.pth", "visuals_epoch_001.png"]:
        assert (tmp_path / name).is_file(), name
    reference = define_G(3, 3, 4, "unet_128", "batch", True, fused=False)
    reference.load_state_dict(torch.load(tmp_path / "latest_net_G.pth", weights_only=True), strict=True)


def _save(tensor: torch.Tensor, path: Path) -> None:
    from torchvision.utils import save_image
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(tensor, path)


def test_junyanz_folder_layouts(tmp_path):
    for i in range(3):
        _save(torch.rand(3, 40, 80), tmp_path / "aligned" / "train" / f"{i}.png")  # A | B side by side
        _save(torch.rand(3, 40, 40), tmp_path / "unaligned" / "trainA" / f"{i}.png")
        _save(torch.rand(3, 50, 30), tmp_path / "unaligned" / "trainB" / f"{i}.png")
    aligned = AlignedFolder(tmp_path / "aligned", load_size=36, crop_size=32)
    a, b = aligned[0]
    assert a.shape == b.shape == (3, 32, 32) and a.min() >= -1 and a.max() <= 1
    unaligned = UnalignedFolder(tmp_path / "unaligned", load_size=36, crop_size=32)
    first = unaligned[1]
    assert all(torch.equal(x, y) for x, y in zip(first, unaligned[1]))  # the same draws for the same epoch
    summary = train_pix2pix(Pix2PixConfig(data=str(tmp_path / "aligned"), out=str(tmp_path / "o"),
                                          **{**PIX, "load_size": 130, "dataset_size": 0, "epochs_decay": 0}))
    assert summary["steps"] == 1  # 3 pairs in batches of 2: the trailing single pair is left out
    summary = train_cyclegan(CycleGANConfig(data=str(tmp_path / "unaligned"), out=str(tmp_path / "o2"),
                                            **{**CYCLE, "load_size": 36, "epochs_decay": 0}))
    assert summary["steps"] == 1


def test_unpaired_shapes_draw_new_partners_each_epoch():
    data = UnpairedShapeStyles(size=32, image_size=16)
    b_first = [data[i][1] for i in range(8)]
    data.set_epoch(1)
    b_second = [data[i][1] for i in range(8)]
    assert any(not torch.equal(x, y) for x, y in zip(b_first, b_second))
    data.set_epoch(0)  # an epoch's draws repeat (a resumed run sees what the first one saw)
    assert all(torch.equal(x, y) for x, y in zip(b_first, (data[i][1] for i in range(8))))


def test_layout_errors_name_the_path(tmp_path):
    (tmp_path / "trainA").mkdir()
    _save(torch.rand(3, 8, 8), tmp_path / "trainA" / "a.png")
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'trainB'}: no such folder"):
        UnalignedFolder(tmp_path)
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'train'}: no such folder"):
        AlignedFolder(tmp_path)
    with pytest.raises(ValueError, match="crop_size"):
        UnalignedFolder(tmp_path, phase="train", load_size=16, crop_size=32)


def test_cli(tmp_path, capsys):
    assert main(["train", "pix2pix", "--out", str(tmp_path), "--crop-size", "128", "--netG", "unet_128", "--ngf", "4",
                 "--ndf", "4", "--dataset-size", "4", "--batch-size", "2", "--epochs", "1", "--epochs-decay", "0",
                 "--no-dropout", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "pix2pix done: 2 iterations, 1 epochs" in out
    assert re.search(r"last G_GAN [0-9.]+, G_L1 [0-9.]+, D [0-9.]+;", out)  # the recipe's loss_keys, in order


def test_a_large_seed_trains(tmp_path):
    """The per-item seeds derived from it stay in torch's range (2e9 made them pass 2**63)."""
    summary = train_cyclegan(CycleGANConfig(out=str(tmp_path), seed=2_000_000_000,
                                            **{**CYCLE, "epochs_decay": 0, "dataset_size": 2}))
    assert summary["steps"] == 1
