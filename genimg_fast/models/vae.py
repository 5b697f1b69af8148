"""VAEs: the 784-400-20 MLP of pytorch/examples (vae/main.py, same fc1/fc21/fc22/fc3/fc4 keys),
and a convolutional VAE in the style of AntixK/PyTorch-VAE's VanillaVAE (64x64 images,
Conv + BN + LeakyReLU encoder, ConvTranspose + BN + LeakyReLU decoder: where fusion pays).
forward returns (reconstruction, mu, logvar), what VAELoss takes with the input."""
from __future__ import annotations

import torch
from torch import nn

from genimg_fast.models._fusing import check_image, finish


class _Sampling:
    """reparameterize and sample, shared by both VAEs (the examples sample in eval mode too)."""

    latent_dim: int

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + eps * exp(logvar / 2), eps ~ N(0, I) drawn with torch.randn_like, in training
        and eval mode alike (as the examples do).

        Args:
            mu (Tensor): the means, (N, latent_dim).
            logvar (Tensor): the log-variances, mu's shape.

        Returns:
            Tensor: z, mu's shape.
        """
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def sample(self, n: int, device=None) -> torch.Tensor:
        """n images decoded from z ~ N(0, I).

        Runs in the module's current mode, with autograd as the caller has it (wrap it in
        torch.no_grad() for plain sampling).

        Args:
            n (int): how many.
            device (torch.device, optional): where to draw z; None: the parameters' device.

        Returns:
            Tensor: decode(z), in the parameters' dtype: (n, input_dim) for VAE, (n, in_channels,
            image_size, image_size) for ConvVAE.
        """
        parameter = next(self.parameters())
        z = torch.randn(n, self.latent_dim, device=device or parameter.device, dtype=parameter.dtype)
        return self.decode(z)


class VAE(_Sampling, nn.Module):
    """pytorch/examples vae's VAE: the 784-400-20 MLP with the same fc1, fc21, fc22, fc3, fc4
    layers and state_dict keys, and the same forward (no norm layers: nothing to fuse).

    Args:
        input_dim (int): the flattened input's length. Default: 784 (28 x 28 MNIST).
        hidden_dim (int): the hidden layer's width. Default: 400.
        latent_dim (int): the latent space's dimension. Default: 20.

    Shape:
        Input x: any shape whose element count is a multiple of input_dim, read as
        (M, input_dim) rows. Output: (recon, mu, logvar): recon (M, input_dim) in [0, 1]
        (Sigmoid), mu and logvar (M, latent_dim).

    Raises:
        ValueError: an input whose element count is not a multiple of input_dim (forward).
    """

    def __init__(self, input_dim: int = 784, hidden_dim: int = 400, latent_dim: int = 20) -> None:
        super().__init__()
        self.input_dim, self.latent_dim = input_dim, latent_dim
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.fc21 = nn.Linear(hidden_dim, latent_dim)
        self.fc22 = nn.Linear(hidden_dim, latent_dim)
        self.fc3 = nn.Linear(latent_dim, hidden_dim)
        self.fc4 = nn.Linear(hidden_dim, input_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar), each (M, latent_dim), of x of shape (M, input_dim)."""
        h1 = torch.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The reconstruction (M, input_dim), in [0, 1], of latents z of shape (M, latent_dim)."""
        return torch.sigmoid(self.fc4(torch.relu(self.fc3(z))))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if x.numel() % self.input_dim:
            raise ValueError(f"VAE: input of shape {list(x.shape)} does not split into rows of {self.input_dim}")
        mu, logvar = self.encode(x.view(-1, self.input_dim))
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


class ConvVAE(_Sampling, nn.Module):
    """A convolutional VAE with the layers and state_dict keys of AntixK/PyTorch-VAE's VanillaVAE
    (encoder, fc_mu, fc_var, decoder_input, decoder, final_layer) at its defaults (3 channels,
    64 x 64 images).

    Unlike VanillaVAE, forward returns (recon, mu, logvar), not [recon, input, mu, log_var],
    and other image sizes, widths and channel counts build consistently. fused=True swaps each
    BatchNorm2d + LeakyReLU pair for BatchNormAct2d + nn.Identity (same keys and numbers).

    Args:
        in_channels (int): the image's channels (also the output's). Default: 3.
        latent_dim (int): the latent space's dimension. Default: 128.
        hidden_dims (list[int], optional): the encoder's widths, one stride-2 stage each (the
            decoder mirrors them); None: [32, 64, 128, 256, 512].
        image_size (int): the square images' side; a multiple of 2 ** len(hidden_dims).
            Default: 64.
        fused (bool, keyword-only): use the fused norm modules. Default: True.

    Shape:
        Input x: (N, in_channels, image_size, image_size). Output: (recon, mu, logvar): recon
        of x's shape, in [-1, 1] (Tanh), mu and logvar (N, latent_dim).

    Raises:
        ValueError: image_size not a multiple of 2 ** len(hidden_dims) (construction); an input
            that is not 4-D, has not in_channels channels or is not image_size x image_size
            (forward and encode).
    """

    def __init__(self, in_channels: int = 3, latent_dim: int = 128, hidden_dims: list[int] | None = None,
                 image_size: int = 64, *, fused: bool = True) -> None:
        super().__init__()
        hidden = list(hidden_dims or [32, 64, 128, 256, 512])
        self.in_channels, self.latent_dim, self.hidden_dims = in_channels, latent_dim, hidden
        self.divisor = 2 ** len(hidden)
        if image_size % self.divisor:
            raise ValueError(f"ConvVAE: image_size must be divisible by {self.divisor} "
                             f"(2 ** len(hidden_dims)), got {image_size}")
        self.image_size = image_size
        self.bottom = image_size // self.divisor  # spatial size at the bottleneck
        blocks, channels = [], in_channels
        for h in hidden:
            blocks.append(nn.Sequential(nn.Conv2d(channels, h, 3, 2, 1), nn.BatchNorm2d(h), nn.LeakyReLU()))
            channels = h
        self.encoder = nn.Sequential(*blocks)
        flat = hidden[-1] * self.bottom ** 2
        self.fc_mu = nn.Linear(flat, latent_dim)
        self.fc_var = nn.Linear(flat, latent_dim)
        self.decoder_input = nn.Linear(latent_dim, flat)
        up = hidden[::-1]
        self.decoder = nn.Sequential(*[
            nn.Sequential(nn.ConvTranspose2d(up[i], up[i + 1], 3, 2, 1, output_padding=1), nn.BatchNorm2d(up[i + 1]),
                          nn.LeakyReLU())
            for i in range(len(up) - 1)])
        self.final_layer = nn.Sequential(
            nn.ConvTranspose2d(up[-1], up[-1], 3, 2, 1, output_padding=1), nn.BatchNorm2d(up[-1]), nn.LeakyReLU(),
            nn.Conv2d(up[-1], in_channels, 3, padding=1), nn.Tanh())
        finish(self, fused)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar), each (N, latent_dim), of images x (N, in_channels, image_size, image_size)."""
        check_image(x, self.in_channels, 1, "ConvVAE")
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"ConvVAE: built for {self.image_size}x{self.image_size} images, "
                             f"got {x.shape[-2]}x{x.shape[-1]}")
        h = torch.flatten(self.encoder(x), start_dim=1)
        return self.fc_mu(h), self.fc_var(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images (N, in_channels, image_size, image_size), in [-1, 1], of latents z (N, latent_dim)."""
        h = self.decoder_input(z).view(-1, self.hidden_dims[-1], self.bottom, self.bottom)
        return self.final_layer(self.decoder(h))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


class VAEDecoder(nn.Module):
    """A VAE's decoder as a module of its own (forward(z) = vae.decode(z)), sharing the VAE's
    layers: what sampling runs, in a form module-level tools (optimize_for_inference,
    torch.compile) take.

    Args:
        vae (VAE or ConvVAE): the model whose decode this module runs; registered as the
            submodule `vae`, so the state_dict keys are the VAE's prefixed with ``vae.``.

    Shape:
        Input z: (N, latent_dim). Output: vae.decode(z).
    """

    def __init__(self, vae: VAE | ConvVAE) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z)
