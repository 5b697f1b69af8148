"""`genimg-fast sample`: images from a trained DCGAN generator or VAE decoder, as one grid.
The generator runs in eval mode (running statistics) with its batch norms folded into the
preceding transposed convolutions (genimg_fast.fold_batchnorm): fewer layers per image, the
same numbers to rounding. The noise comes from the seed. With cuda_graph, each full batch is one graph replay."""
from __future__ import annotations

from pathlib import Path

import torch

from genimg_fast.convert import fold_batchnorm
from genimg_fast.graph_capture import captured
from genimg_fast.inference import checkpoints
from genimg_fast.train.samples import save_grid


def _graphed(decode, batch_size: int, latent_shape: tuple[int, ...], device: torch.device):
    """decode captured once in a CUDA graph for full batches (one launch per batch of images);
    a smaller last batch runs eagerly."""
    static_z = torch.zeros(batch_size, *latent_shape, device=device)

    def step():
        with torch.no_grad():
            return decode(static_z)
    replay, static_out = captured(step, warmup=2)

    def run(z: torch.Tensor) -> torch.Tensor:
        if z.shape[0] != batch_size:
            return decode(z)
        static_z.copy_(z)
        replay(0)
        return static_out.clone()
    return run


def sample(model: str, checkpoint: str | Path, out: str | Path, n: int = 64, seed: int = 0,
           device: str | torch.device = "cpu", fold: bool = True, batch_size: int = 256,
           cuda_graph: bool = False) -> Path:
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    device = torch.device(device)
    if cuda_graph and device.type != "cuda":
        raise ValueError(f"cuda_graph needs a CUDA device, sampling runs on {device}")
    g = torch.Generator().manual_seed(seed)
    if model == "dcgan":
        net = checkpoints.dcgan_generator(checkpoint).eval()
        net = (fold_batchnorm(net) if fold else net).to(device)
        decode, latent_shape = net, (net.nz, 1, 1)
    elif model == "vae":
        net = checkpoints.vae(checkpoint).eval().to(device)
        shape = ((1, 28, 28) if isinstance(net, checkpoints.VAE) else (net.in_channels, net.image_size, net.image_size))
        decode, latent_shape = (lambda z: net.decode(z).view(z.shape[0], *shape)), (net.latent_dim,)
    else:
        raise ValueError(f"model must be 'dcgan' or 'vae', got {model!r}")
    if cuda_graph:
        decode = _graphed(decode, min(batch_size, n), latent_shape, device)
    with torch.no_grad():
        images = torch.cat([decode(torch.randn(min(batch_size, n - i), *latent_shape, generator=g).to(device))
                            .float().cpu() for i in range(0, n, batch_size)])
    out = Path(out)
    save_grid(images, out)
    return out
