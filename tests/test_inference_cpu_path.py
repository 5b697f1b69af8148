"""`genimg-fast sample` and `translate` on a CPU run optimize_for_inference's copy: the same
pictures as the network run as loaded (--no-fold / --no-optimize), up to 8-bit rounding, and
--compile goes through torch.compile."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("torchvision")

from genimg_fast.cli import main  # noqa: E402
from genimg_fast.inference import sample as sample_module  # noqa: E402
from genimg_fast.inference.sample import sample  # noqa: E402
from genimg_fast.inference.translate import translate  # noqa: E402
from genimg_fast.inference.norm_swaps import BatchStatisticsNorm2d  # noqa: E402
from genimg_fast.models import ConvVAE, DCGANGenerator, define_G  # noqa: E402
from genimg_fast.nn import BatchNormAct2d  # noqa: E402


def _read(path: Path) -> torch.Tensor:
    import numpy as np
    from PIL import Image
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1).float()


def _trained(net: torch.nn.Module, inputs: torch.Tensor, path: Path) -> None:
    """Saved with running statistics far from the defaults, so eval mode differs from train mode."""
    with torch.no_grad():
        for _ in range(3):
            net(inputs * 2 + 0.5)
    torch.save(net.state_dict(), path)


def _images(folder: Path, count: int) -> None:
    from torchvision.utils import save_image
    folder.mkdir(parents=True)
    for i in range(count):
        save_image(torch.rand(3, 40, 40), folder / f"img{i}.png")


@pytest.fixture
def recorded_compiles(monkeypatch):
    """torch.compile replaced by the identity, recording what it was given (compiling for real
    takes minutes on a small CPU)."""
    seen = []
    monkeypatch.setattr(torch, "compile", lambda fn: seen.append(fn) or fn)
    return seen


def test_optimized_dcgan_samples_equal_the_unoptimized_ones(tmp_path, recorded_compiles):
    torch.manual_seed(0)
    _trained(DCGANGenerator(nz=16, ngf=8, image_size=32, fused=False), torch.randn(8, 16, 1, 1), tmp_path / "G.pth")
    plain = sample("dcgan", tmp_path / "G.pth", tmp_path / "plain.png", n=16, fold=False)
    assert recorded_compiles == []
    assert main(["sample", "dcgan", "--checkpoint", str(tmp_path / "G.pth"), "--out", str(tmp_path / "fast.png"),
                 "--n", "16", "--device", "cpu", "--compile"]) == 0
    [compiled] = recorded_compiles  # the optimized copy: batch norms folded away
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, BatchNormAct2d)) for m in compiled.modules())
    assert (_read(tmp_path / "fast.png") - _read(plain)).abs().max() <= 2  # 8-bit pixels, rounding apart


def test_optimized_conv_vae_samples_equal_the_unoptimized_ones(tmp_path):
    torch.manual_seed(0)
    _trained(ConvVAE(3, 16, [8, 16], 16, fused=False), torch.randn(8, 3, 16, 16), tmp_path / "vae.pth")
    fast = sample("vae", tmp_path / "vae.pth", tmp_path / "fast.png", n=8)
    plain = sample("vae", tmp_path / "vae.pth", tmp_path / "plain.png", n=8, fold=False)
    assert (_read(fast) - _read(plain)).abs().max() <= 2


def test_compile_and_cuda_graph_together_are_refused(tmp_path):
    with pytest.raises(ValueError, match="cuda_graph and compile: choose one"):
        sample_module.sample("dcgan", tmp_path / "G.pth", tmp_path / "s.png", device="cuda", cuda_graph=True,
                             compile=True)


@pytest.mark.parametrize("netG,norm,eval_mode", [("resnet_6blocks", "instance", False), ("unet_128", "batch", False),
                                                 ("unet_128", "batch", True)])
def test_optimized_translation_equals_the_unoptimized_one(tmp_path, netG, norm, eval_mode):
    torch.manual_seed(0)
    # no dropout: its masks are random, and drawn in another order in channels_last
    _trained(define_G(3, 3, 8, netG, norm, use_dropout=False, fused=False), torch.randn(2, 3, 128, 128),
             tmp_path / "G.pth")
    _images(tmp_path / "in", 2)
    options = {"size": 128, "eval_mode": eval_mode, "dropout": False}
    translate(tmp_path / "G.pth", tmp_path / "in", tmp_path / "fast", **options)
    translate(tmp_path / "G.pth", tmp_path / "in", tmp_path / "plain", optimize=False, **options)
    for i in range(2):
        fast, plain = (_read(tmp_path / run / "images" / f"img{i}_fake.png") for run in ("fast", "plain"))
        assert (fast - plain).abs().max() <= 2


def test_translate_cli_options(tmp_path, recorded_compiles):
    torch.manual_seed(0)
    torch.save(define_G(3, 3, 4, "unet_128", "batch", use_dropout=True, fused=False).state_dict(), tmp_path / "G.pth")
    _images(tmp_path / "in", 1)
    common = ["translate", "--checkpoint", str(tmp_path / "G.pth"), "--input", str(tmp_path / "in"), "--size", "128",
              "--device", "cpu"]
    assert main(common + ["--out", str(tmp_path / "a"), "--compile"]) == 0
    [compiled] = recorded_compiles  # the optimized copy, in train mode: batch statistics, dropout on
    assert compiled.training and any(isinstance(m, BatchStatisticsNorm2d) for m in compiled.modules())
    assert main(common + ["--out", str(tmp_path / "b"), "--no-optimize"]) == 0
    assert len(recorded_compiles) == 1
    assert (tmp_path / "b" / "images" / "img0_fake.png").is_file()
