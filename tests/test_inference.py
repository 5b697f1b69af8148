"""`genimg-fast sample` and `translate` from plain state_dict checkpoints (the architecture read
off the checkpoint): folded batch norms give the eval-mode pictures, the results page links
every image, and checkpoints that fit no network are errors naming the file."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("torchvision")

from genimg_fast.cli import main  # noqa: E402
from genimg_fast.inference import checkpoints  # noqa: E402
from genimg_fast.inference.sample import sample  # noqa: E402
from genimg_fast.inference.translate import translate  # noqa: E402
from genimg_fast.models import VAE, ConvVAE, DCGANGenerator, define_G  # noqa: E402


def _read(path: Path) -> torch.Tensor:
    """(channels, H, W) 8-bit values as floats."""
    import numpy as np
    from PIL import Image
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1).float()


def _trained_dcgan(path: Path) -> None:
    """A generator whose batch norms have non-trivial running statistics, saved plain."""
    torch.manual_seed(0)
    net = DCGANGenerator(nz=16, ngf=8, image_size=32, fused=False)
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(8, 16, 1, 1) * 2)
    torch.save(net.state_dict(), path)


def test_dcgan_samples_with_folded_norms_match_eval_mode(tmp_path):
    _trained_dcgan(tmp_path / "netG.pth")
    net = checkpoints.dcgan_generator(tmp_path / "netG.pth")
    assert (net.nz, net.image_size) == (16, 32)
    folded = sample("dcgan", tmp_path / "netG.pth", tmp_path / "folded.png", n=16)
    plain = sample("dcgan", tmp_path / "netG.pth", tmp_path / "plain.png", n=16, fold=False)
    a, b = _read(folded), _read(plain)
    assert a.shape == b.shape and (a - b).abs().max() <= 2  # 8-bit pixels, rounding apart


def test_cuda_graph_sampling_needs_a_gpu(tmp_path):
    _trained_dcgan(tmp_path / "netG.pth")
    with pytest.raises(ValueError, match="cuda_graph needs a CUDA device"):
        sample("dcgan", tmp_path / "netG.pth", tmp_path / "s.png", device="cpu", cuda_graph=True)


@pytest.mark.cuda
def test_cuda_graph_samples_equal_eager_ones(cuda_kernels, tmp_path):
    _trained_dcgan(tmp_path / "netG.pth")
    eager = sample("dcgan", tmp_path / "netG.pth", tmp_path / "eager.png", n=40, device="cuda", batch_size=16)
    graph = sample("dcgan", tmp_path / "netG.pth", tmp_path / "graph.png", n=40, device="cuda", batch_size=16,
                   cuda_graph=True)
    assert (_read(eager) - _read(graph)).abs().max() <= 1


def test_vae_samples_from_both_vaes(tmp_path):
    torch.save(VAE().state_dict(), tmp_path / "mlp.pth")
    torch.save(ConvVAE(3, 16, [8, 16], 16, fused=False).state_dict(), tmp_path / "conv.pth")
    for name, side in (("mlp", 28), ("conv", 16)):  # MNIST digits; the conv VAE's 16x16 images
        out = sample("vae", tmp_path / f"{name}.pth", tmp_path / f"{name}.png", n=8)
        # one grid row of 8 images, torchvision's 2-pixel padding around each
        assert _read(out).shape == (3, side + 4, 8 * (side + 2) + 2)
    assert isinstance(checkpoints.vae(tmp_path / "conv.pth"), ConvVAE)


def _images(folder: Path, count: int, width: int = 24) -> None:
    from torchvision.utils import save_image
    folder.mkdir(parents=True)
    for i in range(count):
        save_image(torch.rand(3, 20, width), folder / f"img{i}.png")


@pytest.mark.parametrize("netG,norm", [("resnet_6blocks", "instance"), ("unet_128", "batch")])
def test_translate_writes_images_and_a_results_page(tmp_path, netG, norm):
    torch.save(define_G(3, 3, 4, netG, norm, netG.startswith("unet"), fused=False).state_dict(), tmp_path / "G.pth")
    _images(tmp_path / "in", 3, width=48)
    page = translate(tmp_path / "G.pth", tmp_path / "in", tmp_path / "out", size=128, aligned=True)
    text = page.read_text()
    for i in range(3):
        for kind in ("real", "fake", "target"):
            assert f"images/img{i}_{kind}.png" in text
            assert _read(tmp_path / "out" / "images" / f"img{i}_{kind}.png").shape == (3, 128, 128)
    assert netG in text


def test_checkpoints_that_fit_nothing_name_the_file(tmp_path):
    _trained_dcgan(tmp_path / "netG.pth")
    with pytest.raises(ValueError, match="netG.pth: not a junyanz generator"):
        checkpoints.image_generator(tmp_path / "netG.pth")
    with pytest.raises(ValueError, match="netG.pth: not a VAE checkpoint"):
        checkpoints.vae(tmp_path / "netG.pth")
    with pytest.raises(FileNotFoundError, match="missing.pth: no such checkpoint"):
        checkpoints.dcgan_generator(tmp_path / "missing.pth")
    torch.save({"optimizer": 1}, tmp_path / "state.pth")
    with pytest.raises(ValueError, match="state.pth: not a plain state_dict"):
        checkpoints.dcgan_generator(tmp_path / "state.pth")


def test_cli(tmp_path, capsys):
    _trained_dcgan(tmp_path / "netG.pth")
    assert main(["sample", "dcgan", "--checkpoint", str(tmp_path / "netG.pth"), "--out", str(tmp_path / "s.png"),
                 "--n", "4", "--device", "cpu"]) == 0
    assert (tmp_path / "s.png").is_file()
    torch.save(define_G(3, 3, 4, "resnet_6blocks", "instance", fused=False).state_dict(), tmp_path / "G.pth")
    _images(tmp_path / "in", 2)
    assert main(["translate", "--checkpoint", str(tmp_path / "G.pth"), "--input", str(tmp_path / "in"), "--out",
                 str(tmp_path / "res"), "--size", "32", "--device", "cpu"]) == 0
    assert "index.html" in capsys.readouterr().out
