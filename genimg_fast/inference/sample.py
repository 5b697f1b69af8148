"""`genimg-fast sample`: images from a trained DCGAN generator or VAE decoder, as one grid.
The generator runs in eval mode (running statistics) with its batch norms folded into the
preceding transposed convolutions (genimg_fast.fold_batchnorm): fewer layers per image, the
same numbers to rounding. On a CPU the network is genimg_fast.optimize_for_inference's copy
(folded, plain torch layers, the layout measured faster); with fold=False it runs as loaded,
the reference computation. compile=True runs the decoder through torch.compile (any device).
The noise comes from the seed. With cuda_graph, each full batch is one graph replay."""
from __future__ import annotations

from pathlib import Path

import torch

from genimg_fast.convert import fold_batchnorm
from genimg_fast.extras import require
from genimg_fast.graph_capture import captured
from genimg_fast.inference import checkpoints
from genimg_fast.inference.optimize import optimize_for_inference
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
           cuda_graph: bool = False, compile: bool = False) -> Path:
    require("sample")  # before the work: saving the grid needs torchvision
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    device = torch.device(device)
    if cuda_graph and device.type != "cuda":
        raise ValueError(f"cuda_graph needs a CUDA device, sampling runs on {device}")
    if cuda_graph and compile:
        raise ValueError("cuda_graph and compile: choose one (each captures the decoder its own way)")
    g = torch.Generator().manual_seed(seed)
    optimize = device.type == "cpu" and fold  # fold=False: the network as loaded, on any device
    if model == "dcgan":
        net = checkpoints.dcgan_generator(checkpoint).eval()
        if optimize:
            net = optimize_for_inference(net)
        else:
            net = (fold_batchnorm(net) if fold else net).to(device)
        decode, latent_shape = net, (net.nz, 1, 1)
    elif model == "vae":
        net = checkpoints.vae(checkpoint).eval().to(device)
        if optimize:
            net = optimize_for_inference(net)
        shape = ((1, 28, 28) if isinstance(net, checkpoints.VAE) else (net.in_channels, net.image_size, net.image_size))
        # reshape, not view: the optimized decoder may return channels_last images
        decode, latent_shape = (lambda z: net.decode(z).reshape(z.shape[0], *shape)), (net.latent_dim,)
    else:
        raise ValueError(f"model must be 'dcgan' or 'vae', got {model!r}")
    if compile:  # the decoding function, not the module: a VAE samples through decode(), not forward()
        decode = torch.compile(decode)
    if cuda_graph:
        decode = _graphed(decode, min(batch_size, n), latent_shape, device)
    with torch.no_grad():
        images = torch.cat([decode(torch.randn(min(batch_size, n - i), *latent_shape, generator=g).to(device))
                            .float().cpu() for i in range(0, n, batch_size)])
    out = Path(out)
    save_grid(images, out)
    return out
