"""`genimg-fast sample`: images from a trained DCGAN generator or VAE decoder, as one grid.
The generator runs in eval mode (running statistics) with its batch norms folded into the
preceding transposed convolutions (genimg_fast.fold_batchnorm): fewer layers per image, the
same numbers to rounding. The noise comes from the seed."""
from __future__ import annotations

from pathlib import Path

import torch

from genimg_fast.convert import fold_batchnorm
from genimg_fast.inference import checkpoints
from genimg_fast.train.samples import save_grid


def sample(model: str, checkpoint: str | Path, out: str | Path, n: int = 64, seed: int = 0, device: str | torch.device = "cpu",
           fold: bool = True, batch_size: int = 256) -> Path:
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    device = torch.device(device)
    g = torch.Generator().manual_seed(seed)
    if model == "dcgan":
        net = checkpoints.dcgan_generator(checkpoint).eval()
        net = fold_batchnorm(net) if fold else net
        net = net.to(device)
        draw = lambda k: net(torch.randn(k, net.nz, 1, 1, generator=g).to(device))  # noqa: E731
    elif model == "vae":
        net = checkpoints.vae(checkpoint).eval().to(device)
        shape = ((1, 28, 28) if isinstance(net, checkpoints.VAE) else (net.in_channels, net.image_size, net.image_size))
        draw = lambda k: net.decode(torch.randn(k, net.latent_dim, generator=g).to(device)).view(k, *shape)  # noqa: E731
    else:
        raise ValueError(f"model must be 'dcgan' or 'vae', got {model!r}")
    with torch.no_grad():
        images = torch.cat([draw(min(batch_size, n - i)).float().cpu() for i in range(0, n, batch_size)])
    out = Path(out)
    save_grid(images, out)
    return out
