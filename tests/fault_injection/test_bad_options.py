"""Options and paths the user got wrong, and a machine that refuses a file: exit status 2 and one
line naming the option or path, never a traceback; a genuine bug keeps its traceback."""
from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest
import torch

from genimg_fast import cli
from genimg_fast.train import checkpoint

TINY = ["--image-size", "32", "--ngf", "8", "--ndf", "8", "--nz", "16", "--batch-size", "8", "--dataset-size", "8",
        "--device", "cpu", "--no-progress"]


def _one_error_line(capsys, command: str = "train dcgan") -> str:
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before the run's header
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"genimg-fast {command}: error: "), captured.err
    return lines[0]


@pytest.mark.parametrize(("family", "option", "value", "message"), [
    ("dcgan", "--nz", "0", "nz must be at least 1, got 0"),
    ("dcgan", "--ngf", "0", "ngf must be at least 1, got 0"),
    ("dcgan", "--ndf", "-1", "ndf must be at least 1, got -1"),
    ("dcgan", "--lr", "-0.1", "lr must not be negative, got -0.1"),
    ("dcgan", "--beta1", "1", "beta1 must be at least 0 and below 1, got 1.0"),
    ("dcgan", "--dataset-size", "0", "dataset_size must be at least 1"),
    ("vae", "--latent-dim", "0", "latent_dim must be at least 1, got 0"),
    ("cyclegan", "--crop-size", "0", "crop_size must be at least 1, got 0"),
    ("cyclegan", "--load-size", "-3", "load_size must be at least 1, got -3"),
    ("cyclegan", "--lambda-identity", "-0.5", "lambda_identity must not be negative, got -0.5"),
    ("pix2pix", "--lambda-L1", "-1", "lambda_L1 must not be negative, got -1.0"),
])
def test_a_size_or_weight_out_of_range_is_one_line_naming_it(tmp_path, capsys, family, option, value, message):
    assert cli.main(["train", family, "--out", str(tmp_path / "run"), "--no-progress", option, value]) == 2
    assert message in _one_error_line(capsys, f"train {family}")
    assert not (tmp_path / "run").exists()  # refused before anything was made


@pytest.mark.parametrize(("device", "message"), [
    ("meta", "--device 'meta': train runs on auto, cpu, cuda or cuda:N, not on meta"),
    ("cdua", "--device 'cdua' is not a device"),
])
def test_a_device_genimg_fast_does_not_run_on_is_one_line(tmp_path, capsys, device, message):
    assert cli.main(["train", "dcgan", "--out", str(tmp_path), "--no-progress", "--device", device]) == 2
    assert message in _one_error_line(capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is there")
def test_cuda_without_a_gpu_is_one_line_with_status_2(tmp_path, capsys):
    assert cli.main(["train", "dcgan", "--out", str(tmp_path), "--device", "cuda"]) == 2
    assert "--device cuda requested but torch sees no CUDA GPU" in _one_error_line(capsys)
    assert cli.main(["sample", "dcgan", "--checkpoint", "x.pth", "--device", "cuda:1"]) == 2
    assert "--device cuda:1 requested" in _one_error_line(capsys, "sample")


def test_an_out_that_is_a_file_is_named(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    assert cli.main(["train", "dcgan", "--out", str(taken), *TINY]) == 2
    assert _one_error_line(capsys).endswith(f"--out {taken}: is a file, not a folder")
    assert cli.main(["train", "dcgan", "--out", str(taken / "run"), *TINY]) == 2
    assert f"--out {taken / 'run'}: cannot make the folder" in _one_error_line(capsys)
    assert taken.read_text() == "mine"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes in any folder")
def test_an_out_without_permission_is_named(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        assert cli.main(["train", "dcgan", "--out", str(locked), *TINY]) == 2
        assert _one_error_line(capsys).endswith(f"--out {locked}: cannot write in the folder: permission denied")
        assert cli.main(["train", "dcgan", "--out", str(locked / "run"), *TINY]) == 2
        assert "permission denied" in _one_error_line(capsys)
    finally:
        locked.chmod(0o700)


def _refusing_writer(monkeypatch, code: int, refused=lambda path: True):
    """checkpoint.atomic_write, but for the paths `refused` picks the system refuses partway
    through the write (as a full disk does: the bytes so far went to the temporary file)."""
    real = checkpoint.atomic_write

    def refuse(f):
        f.write(b"part of a checkpoint" if "b" in f.mode else "part of a line")
        raise OSError(code, os.strerror(code))  # f.write's error names no path

    monkeypatch.setattr(checkpoint, "atomic_write",
                        lambda path, write, mode: real(path, refuse if refused(path) else write, mode))


def test_a_full_disk_is_one_line_and_keeps_the_earlier_files(tmp_path, capsys, monkeypatch):
    run = ["train", "dcgan", "--out", str(tmp_path), *TINY, "--epochs", "1"]
    assert cli.main(run) == 0
    capsys.readouterr()
    kept = {path: path.read_bytes() for path in tmp_path.glob("*.pt*")}
    assert {path.name for path in kept} >= {"netG_epoch_0.pth", "netD_epoch_0.pth", "training_state.pt"}
    _refusing_writer(monkeypatch, errno.ENOSPC, lambda path: str(path).endswith((".pth", ".pt")))
    assert cli.main([*run[:-1], "2", "--resume"]) == 2  # the second epoch's files find the disk full
    err = capsys.readouterr().err
    assert err == f"genimg-fast train dcgan: error: writing in {tmp_path}: no space left on device\n"
    for path, data in kept.items():  # every earlier file whole, and still loads
        assert path.read_bytes() == data
        torch.load(path, weights_only=False)
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file went too


@pytest.mark.parametrize(("code", "reason"), [(errno.EROFS, "read-only file system"),
                                              (errno.EACCES, "permission denied")])
def test_a_refused_write_with_a_path_names_the_path(tmp_path, capsys, monkeypatch, code, reason):
    def refuse(path, write, mode):
        raise OSError(code, os.strerror(code), str(path))
    monkeypatch.setattr(checkpoint, "atomic_write", refuse)
    assert cli.main(["train", "dcgan", "--out", str(tmp_path), *TINY, "--max-steps", "1"]) == 2
    err = capsys.readouterr().err
    # the first file the run writes, named by its path
    assert err.count("\n") == 1 and err.startswith(f"genimg-fast train dcgan: error: {tmp_path}{os.sep}"), err
    assert err.endswith(f": {reason}\n"), err


def test_a_genuine_bug_keeps_its_traceback(tmp_path, monkeypatch):
    def bug(path, write, mode):
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))  # not the user's: a file the code mishandled
    monkeypatch.setattr(checkpoint, "atomic_write", bug)
    with pytest.raises(OSError, match="Bad file descriptor"):
        cli.main(["train", "dcgan", "--out", str(tmp_path), *TINY, "--max-steps", "1"])


def test_the_installed_command_exits_2_with_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "genimg_fast.cli", "train", "dcgan", "--out", str(tmp_path), "--nz",
                          "0"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == "genimg-fast train dcgan: error: nz must be at least 1, got 0\n"


def test_an_out_on_a_read_only_file_system_is_named(tmp_path, monkeypatch):
    from genimg_fast.train import output_folder

    class ReadOnly:
        f_flag = os.ST_RDONLY
    monkeypatch.setattr(output_folder.os, "access", lambda path, mode: False)  # as the system answers there
    monkeypatch.setattr(output_folder.os, "statvfs", lambda path: ReadOnly())
    with pytest.raises(ValueError, match=f"--out {tmp_path}: cannot write in the folder: read-only file system$"):
        output_folder.check_output_folder(tmp_path)


def test_a_sample_out_that_cannot_be_the_image_is_named(tmp_path, capsys):
    from genimg_fast.models import DCGANGenerator

    torch.save(DCGANGenerator(nz=16, ngf=8, image_size=32, fused=False).state_dict(), tmp_path / "netG.pth")
    sample = ["sample", "dcgan", "--checkpoint", str(tmp_path / "netG.pth"), "--n", "2", "--device", "cpu"]
    assert cli.main([*sample, "--out", str(tmp_path)]) == 2
    assert _one_error_line(capsys, "sample").endswith(f"{tmp_path}: a folder; name the image file to write (e.g. "
                                                      f"{tmp_path / 'samples.png'})")
    assert cli.main([*sample, "--out", str(tmp_path / "grid.txt")]) == 2
    assert "grid.txt: unknown image file extension '.txt'" in _one_error_line(capsys, "sample")
    assert cli.main([*sample, "--out", str(tmp_path / "netG.pth" / "grid.png")]) == 2  # under a file
    assert _one_error_line(capsys, "sample").endswith(f"{tmp_path / 'netG.pth'}: file exists")
