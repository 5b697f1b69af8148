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
    """The GAN loss of a discriminator's output against a constant real or fake label.

    Called like junyanz's networks.GANLoss, ``GANLoss(gan_mode)(prediction, target_is_real)``,
    and computing the same value and gradient for its three modes, plus 'bce' for the DCGAN
    example's nn.BCELoss. Unlike junyanz's, the labels are plain floats, not buffers: the module
    has no state_dict entries. One fused op where genimg_fast's kernels serve, torch's own loss
    functions elsewhere.

    Args:
        gan_mode (str): 'lsgan' (mean squared error), 'vanilla' (BCE with logits), 'wgangp'
            (-mean(prediction) for real, +mean(prediction) for fake; the labels are unused) or
            'bce' (BCE on probabilities).
        target_real_label (float): the label real samples are compared with. Default: 1.0.
        target_fake_label (float): the label fake samples are compared with. Default: 0.0.

    Inputs:
        prediction (Tensor): the discriminator's output, any shape, floating point.
        target_is_real (bool): compare with the real label (True) or the fake one (its truth
            value is used, as junyanz's does).

    Returns:
        Tensor: the loss, 0-d; a mean over prediction's elements, in prediction's dtype outside
        autocast.

    Raises:
        ValueError: an unknown `gan_mode` (construction).
        RuntimeError: with 'bce', a CPU prediction outside [0, 1] or NaN, as nn.BCELoss raises.
            On a GPU nothing is checked (it would cost a host sync per step): the fused kernels
            give a non-finite loss, and torch's BCE, where they do not serve, fails its
            device-side assertion.
    """

    def __init__(self, gan_mode: str, target_real_label: float = 1.0, target_fake_label: float = 0.0) -> None:
        super().__init__()
        self.gan_mode = objectives.check_gan_mode(gan_mode)
        self.real_label, self.fake_label = float(target_real_label), float(target_fake_label)

    def forward(self, prediction: Tensor, target_is_real: bool) -> Tensor:
        return objectives.gan_loss(prediction, self.gan_mode, target_is_real, self.real_label, self.fake_label)

    def extra_repr(self) -> str:
        return f"gan_mode={self.gan_mode!r}"


class DiscriminatorLoss(nn.Module):
    """A discriminator's objective: weight * (GAN(pred_real, real) + GAN(pred_fake, fake)).

    With weight 0.5 junyanz's backward_D (each of CycleGAN's D_A / D_B, pix2pix's D); with
    weight 1.0 and gan_mode 'bce' the DCGAN example's errD = errD_real + errD_fake. GAN is
    GANLoss's loss with the default labels 1 and 0. One fused op where genimg_fast's kernels
    serve, torch's own loss functions elsewhere.

    Args:
        gan_mode (str): 'lsgan', 'vanilla', 'wgangp' or 'bce', as for GANLoss.
        weight (float): the factor on the sum, which must be positive (checked when called).
            Default: 0.5.

    Inputs:
        pred_real (Tensor): D's output on real samples, any shape, floating point.
        pred_fake (Tensor): D's output on fake samples, any shape.

    Returns:
        (Tensor, Mapping[str, Tensor]): the 0-d total, and the logged terms 'D_real' and 'D_fake'
        (0-d, without the weight, as pix2pix and the DCGAN example log them), built when read.

    Raises:
        ValueError: an unknown `gan_mode` (construction); a weight that is not positive (call).
        RuntimeError: with 'bce', CPU predictions outside [0, 1] or NaN (see GANLoss).
    """

    def __init__(self, gan_mode: str, weight: float = 0.5) -> None:
        super().__init__()
        self.gan_mode = objectives.check_gan_mode(gan_mode)
        self.weight = float(weight)

    def forward(self, pred_real: Tensor, pred_fake: Tensor) -> tuple[Tensor, LoggedTerms]:
        return objectives.discriminator_loss(pred_real, pred_fake, self.gan_mode, self.weight)


class CycleGANGeneratorLoss(nn.Module):
    """CycleGAN's generator objective (junyanz's CycleGANModel.backward_G), six terms in one.

    total = GAN(pred_fake_B, real) + GAN(pred_fake_A, real) + lambda_A * L1(rec_A, real_A)
    + lambda_B * L1(rec_B, real_B) + lambda_B * lambda_identity * L1(idt_A, real_B)
    + lambda_A * lambda_identity * L1(idt_B, real_A), with GAN as GANLoss's and L1 a mean.
    The defaults are junyanz's CycleGAN options. One fused op where genimg_fast's kernels serve,
    torch's own loss functions elsewhere.

    Args:
        gan_mode (str): 'lsgan', 'vanilla', 'wgangp' or 'bce', as for GANLoss. Default: 'lsgan'.
        lambda_A (float): weight of the A -> B -> A cycle loss. Default: 10.0.
        lambda_B (float): weight of the B -> A -> B cycle loss. Default: 10.0.
        lambda_identity (float): the identity losses' weight relative to lambda_B / lambda_A;
            0 leaves them out. Default: 0.5.

    Inputs:
        pred_fake_B (Tensor): D_A(G_A(real_A)).
        pred_fake_A (Tensor): D_B(G_B(real_B)).
        rec_A (Tensor): G_B(G_A(real_A)), the shape of real_A.
        real_A (Tensor): the domain-A images.
        rec_B (Tensor): G_A(G_B(real_B)), the shape of real_B.
        real_B (Tensor): the domain-B images.
        idt_A (Tensor, optional): G_A(real_B); needed when lambda_identity > 0.
        idt_B (Tensor, optional): G_B(real_A); needed when lambda_identity > 0.

    Returns:
        (Tensor, Mapping[str, Tensor]): the 0-d total, and the logged terms 'G_A', 'G_B',
        'cycle_A', 'cycle_B', 'idt_A', 'idt_B' (each 0-d and weighted, as junyanz logs them;
        the identity terms 0 when lambda_identity is 0), built when read.

    Raises:
        ValueError: an unknown `gan_mode` (construction); when called, lambda_identity > 0
            without idt_A and idt_B, or an image whose shape differs from its target's.
    """

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
    """pix2pix's generator objective (junyanz's Pix2PixModel.backward_G):
    GAN(pred_fake, real) + lambda_L1 * L1(fake_B, real_B), with GAN as GANLoss's and L1 a mean.

    The defaults are junyanz's pix2pix options. One fused op where genimg_fast's kernels serve,
    torch's own loss functions elsewhere.

    Args:
        gan_mode (str): 'lsgan', 'vanilla', 'wgangp' or 'bce', as for GANLoss. Default: 'vanilla'.
        lambda_L1 (float): weight of the L1 term. Default: 100.0.

    Inputs:
        pred_fake (Tensor): D(cat([real_A, fake_B], 1)), the conditional discriminator's output.
        fake_B (Tensor): G(real_A).
        real_B (Tensor): the target images, the shape of fake_B.

    Returns:
        (Tensor, Mapping[str, Tensor]): the 0-d total, and the logged terms 'G_GAN' and 'G_L1'
        (0-d; G_L1 includes lambda_L1, as junyanz logs it), built when read.

    Raises:
        ValueError: an unknown `gan_mode` (construction); real_B's shape differs from fake_B's
            (call).
    """

    def __init__(self, gan_mode: str = "vanilla", lambda_L1: float = 100.0) -> None:
        super().__init__()
        self.gan_mode = objectives.check_gan_mode(gan_mode)
        self.lambda_L1 = float(lambda_L1)

    def forward(self, pred_fake: Tensor, fake_B: Tensor, real_B: Tensor) -> tuple[Tensor, LoggedTerms]:
        return objectives.pix2pix_generator_loss(pred_fake, fake_B, real_B, mode=self.gan_mode,
                                                 lambda_L1=self.lambda_L1)


class VAELoss(nn.Module):
    """A VAE's objective: reconstruction + kld_weight * KL(N(mu, exp(logvar)) || N(0, I)).

    The defaults are pytorch/examples' VAE loss_function (BCE summed + KL summed);
    recon_loss='mse', recon_reduction='mean', kld_reduction='batchmean' is AntixK's VanillaVAE
    loss_function, with kld_weight its M_N. One fused op where genimg_fast's kernels serve,
    torch's own functions elsewhere. The options are checked when the loss is called.

    Args:
        recon_loss (str): 'bce' (recon holds probabilities) or 'mse'. Default: 'bce'.
        recon_reduction (str): 'sum' or 'mean' over the reconstruction's elements. Default: 'sum'.
        kld_weight (float): the KL term's weight. Default: 1.0.
        kld_reduction (str): 'sum' over all elements, or 'batchmean' (that sum divided by the
            batch size, mu.shape[0]). Default: 'sum'.

    Inputs:
        recon (Tensor): the decoder's output.
        x (Tensor): the input, the shape of recon or just as many elements (an (N, 1, 28, 28)
            batch against an (N, 784) reconstruction).
        mu (Tensor): the encoder's means, (N, latent_dim).
        logvar (Tensor): the encoder's log-variances, the shape of mu.

    Returns:
        (Tensor, Mapping[str, Tensor]): the 0-d total, and the logged terms 'recon' and 'kld'
        (0-d, the two parts of the total: 'kld' includes kld_weight), built when read.

    Raises:
        ValueError: when called, an unknown recon_loss, recon_reduction or kld_reduction, mu
            and logvar of different shapes, or x with another number of elements than recon.
        RuntimeError: with 'bce', CPU values of recon outside [0, 1] or NaN (see GANLoss).
    """

    def __init__(self, recon_loss: str = "bce", recon_reduction: str = "sum", kld_weight: float = 1.0,
                 kld_reduction: str = "sum") -> None:
        super().__init__()
        self.recon_loss, self.recon_reduction = recon_loss, recon_reduction
        self.kld_weight, self.kld_reduction = float(kld_weight), kld_reduction

    def forward(self, recon: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> tuple[Tensor, LoggedTerms]:
        return objectives.vae_loss(recon, x, mu, logvar, recon_loss=self.recon_loss,
                                   recon_reduction=self.recon_reduction, kld_weight=self.kld_weight,
                                   kld_reduction=self.kld_reduction)
