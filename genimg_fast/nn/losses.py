"""Loss modules of the reference recipes, each one fused loss_terms call (one kernel launch
forward, one backward, on a GPU).

GANLoss is call-compatible with junyanz's `GANLoss(gan_mode)(prediction, target_is_real)`; the
objective modules return (total, terms), terms mapping each name the recipes log to its value
(built when read: a step that does not log runs the one fused op).
"""
from __future__ import annotations

import torch
from torch import nn

from genimg_fast.ops import objectives
from genimg_fast.ops.logged_terms import LoggedTerms

Tensor = torch.Tensor


class GANLoss(nn.Module):
    """junyanz's GANLoss: lsgan, vanilla (BCE with logits), wgangp, or bce (BCE on probabilities,
    the DCGAN example's BCELoss).

    With 'bce', a prediction outside [0, 1] (or NaN) raises on the CPU, as torch's BCELoss does.
    On a GPU no check runs (it would cost a host sync per step): the fused kernels give a
    non-finite loss, which the trainer's non-finite stop reports; torch's own BCE (the fallback
    on a GPU without the kernels) stops with its device-side assertion (docs/implementations.md)."""

    def __init__(self, gan_mode: str, target_real_label: float = 1.0, target_fake_label: float = 0.0) -> None:
        super().__init__()
        self.gan_mode = objectives.check_gan_mode(gan_mode)
        self.real_label, self.fake_label = float(target_real_label), float(target_fake_label)

    def forward(self, prediction: Tensor, target_is_real: bool) -> Tensor:
        return objectives.gan_loss(prediction, self.gan_mode, target_is_real, self.real_label, self.fake_label)

    def extra_repr(self) -> str:
        return f"gan_mode={self.gan_mode!r}"


class DiscriminatorLoss(nn.Module):
    """weight * (GAN(D(real), real) + GAN(D(fake), fake)): CycleGAN's D_A / D_B step and pix2pix's
    D step with weight 0.5, the DCGAN example's errD with weight 1.0 and gan_mode 'bce'."""

    def __init__(self, gan_mode: str, weight: float = 0.5) -> None:
        super().__init__()
        self.gan_mode = objectives.check_gan_mode(gan_mode)
        self.weight = float(weight)

    def forward(self, pred_real: Tensor, pred_fake: Tensor) -> tuple[Tensor, LoggedTerms]:
        return objectives.discriminator_loss(pred_real, pred_fake, self.gan_mode, self.weight)


class CycleGANGeneratorLoss(nn.Module):
    """forward(D_A(fake_B), D_B(fake_A), rec_A, real_A, rec_B, real_B, idt_A, idt_B) -> (total, terms);
    see objectives.cyclegan_generator_loss."""

    def __init__(self, gan_mode: str = "lsgan", lambda_A: float = 10.0, lambda_B: float = 10.0,
                 lambda_identity: float = 0.5) -> None:
        super().__init__()
        self.gan_mode = objectives.check_gan_mode(gan_mode)
        self.lambda_A, self.lambda_B, self.lambda_identity = float(lambda_A), float(lambda_B), float(lambda_identity)

    def forward(self, pred_fake_B: Tensor, pred_fake_A: Tensor, rec_A: Tensor, real_A: Tensor, rec_B: Tensor,
                real_B: Tensor, idt_A: Tensor | None = None,
                idt_B: Tensor | None = None) -> tuple[Tensor, LoggedTerms]:
        return objectives.cyclegan_generator_loss(pred_fake_B, pred_fake_A, rec_A, real_A, rec_B, real_B, idt_A, idt_B,
                                                  mode=self.gan_mode, lambda_A=self.lambda_A, lambda_B=self.lambda_B,
                                                  lambda_identity=self.lambda_identity)


class Pix2PixGeneratorLoss(nn.Module):
    """forward(D(cat(A, fake_B)), fake_B, real_B) -> (total, {G_GAN, G_L1})."""

    def __init__(self, gan_mode: str = "vanilla", lambda_L1: float = 100.0) -> None:
        super().__init__()
        self.gan_mode = objectives.check_gan_mode(gan_mode)
        self.lambda_L1 = float(lambda_L1)

    def forward(self, pred_fake: Tensor, fake_B: Tensor, real_B: Tensor) -> tuple[Tensor, LoggedTerms]:
        return objectives.pix2pix_generator_loss(pred_fake, fake_B, real_B, mode=self.gan_mode,
                                                 lambda_L1=self.lambda_L1)


class VAELoss(nn.Module):
    """forward(recon, x, mu, logvar) -> (total, {recon, kld}); see objectives.vae_loss. The
    defaults are pytorch/examples' VAE (BCE sum + KL sum)."""

    def __init__(self, recon_loss: str = "bce", recon_reduction: str = "sum", kld_weight: float = 1.0,
                 kld_reduction: str = "sum") -> None:
        super().__init__()
        self.recon_loss, self.recon_reduction = recon_loss, recon_reduction
        self.kld_weight, self.kld_reduction = float(kld_weight), kld_reduction

    def forward(self, recon: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> tuple[Tensor, LoggedTerms]:
        return objectives.vae_loss(recon, x, mu, logvar, recon_loss=self.recon_loss,
                                   recon_reduction=self.recon_reduction, kld_weight=self.kld_weight,
                                   kld_reduction=self.kld_reduction)
