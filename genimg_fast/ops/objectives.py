"""The training objectives of the reference recipes as single fused loss_terms calls (torch's
own loss functions where the kernels do not serve): GAN losses, the CycleGAN / pix2pix generator
and discriminator
objectives, the VAE objective. Each returns (total, terms): terms maps each name to its value as
the recipes log it (a LoggedTerms: built when read, so a step that does not log runs one op).
"""
from __future__ import annotations

import torch

from genimg_fast._implementation import FALLBACK, implementation
from genimg_fast.ops._loss_fallback import gan_value, l1_value, sum_terms, term_value
from genimg_fast.ops.logged_terms import LoggedTerms, terms_named
from genimg_fast.ops.loss_terms import LossTerm, evaluate_terms

Tensor = torch.Tensor
GAN_MODES = ("lsgan", "vanilla", "wgangp", "bce")

# Where the loss kernels do not serve, each objective computes its terms with torch's losses
# directly (_loss_fallback.gan_value / l1_value), not through the generic term list: at the sizes
# of a PatchGAN output that list's host time was a third of the objective's.
_D_TERMS = {"D_real": ((0,), 1.0), "D_fake": ((1,), 1.0)}
_VAE_TERMS = {"recon": ((0,), 1.0), "kld": ((1,), 1.0)}
_WGAN_D_TERMS = {"D_real": ((0,), -1.0), "D_fake": ((1,), 1.0)}  # of the critic's two means
_PIX2PIX_G_TERMS = {"G_GAN": ((0,), 1.0), "G_L1": ((1,), 1.0)}
_CYCLEGAN_G_TERMS = {name: ((i,), 1.0)
                     for i, name in enumerate(["G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B"])}
# without identity terms they are logged as 0, as the recipe does
_CYCLEGAN_G_TERMS_NO_IDENTITY = {**_CYCLEGAN_G_TERMS, "idt_A": ((), 1.0), "idt_B": ((), 1.0)}


def check_gan_mode(mode: str) -> str:
    """Return `mode` if it is one of GAN_MODES ('lsgan', 'vanilla', 'wgangp', 'bce').

    Raises:
        ValueError: any other mode.
    """
    if mode not in GAN_MODES:
        raise ValueError(f"gan_mode must be one of {', '.join(GAN_MODES)} (bce: sigmoid outputs, like the DCGAN "
                         f"example's BCELoss), got {mode!r}")
    return mode


def gan_term(prediction: Tensor, mode: str, target_is_real: bool, weight: float = 1.0, real_label: float = 1.0,
             fake_label: float = 0.0) -> LossTerm:
    """The GAN loss of a discriminator output against a constant label, as a LossTerm.

    As junyanz's GANLoss: lsgan = MSE, vanilla = BCE with logits, bce = BCE on probabilities
    (each a mean over prediction); wgangp = -mean(prediction) for real, +mean for fake. bce
    probabilities outside [0, 1] raise on the CPU and give a non-finite loss on the GPU's kernels
    (see genimg_fast.nn.GANLoss).

    Args:
        prediction (Tensor): the discriminator's output, any shape.
        mode (str): one of GAN_MODES.
        target_is_real (bool): compare with real_label (True) or fake_label; its truth value is used.
        weight (float): the term's weight. Default: 1.0.
        real_label (float): the real samples' label. Default: 1.0.
        fake_label (float): the fake samples' label. Default: 0.0.

    Returns:
        LossTerm: for loss_terms / evaluate_terms (nothing is computed yet).

    Raises:
        ValueError: an unknown mode.
    """
    check_gan_mode(mode)
    target_is_real = bool(target_is_real)  # junyanz tests its truth value (bool, numpy bool, 0/1)
    if mode == "wgangp":
        return LossTerm(prediction, "linear", None, -weight if target_is_real else weight)
    label = real_label if target_is_real else fake_label
    kind = {"lsgan": "mse", "vanilla": "bce_logits", "bce": "bce"}[mode]
    return LossTerm(prediction, kind, label, weight)


def gan_loss(prediction: Tensor, mode: str, target_is_real: bool, real_label: float = 1.0,
             fake_label: float = 0.0) -> Tensor:
    """GANLoss's value: gan_term's loss, through torch's own loss where the kernels do not serve.

    Args:
        prediction (Tensor): the discriminator's output, any shape.
        mode (str): one of GAN_MODES.
        target_is_real (bool): compare with real_label (True) or fake_label.
        real_label (float): the real samples' label. Default: 1.0.
        fake_label (float): the fake samples' label. Default: 0.0.

    Returns:
        Tensor: the 0-d loss.

    Raises:
        ValueError: an unknown mode.
        RuntimeError: 'bce' with CPU predictions outside [0, 1] or NaN.
    """
    if implementation(prediction, "loss_terms") == FALLBACK:
        return gan_value(prediction, check_gan_mode(mode), bool(target_is_real), real_label, fake_label)
    total, _ = evaluate_terms([gan_term(prediction, mode, target_is_real, 1.0, real_label, fake_label)])
    return total


def discriminator_loss(pred_real: Tensor, pred_fake: Tensor, mode: str,
                       weight: float = 0.5) -> tuple[Tensor, LoggedTerms]:
    """weight * (GAN(D(real), real) + GAN(D(fake), fake)). weight=0.5: the CycleGAN (per D) and
    pix2pix D step; weight=1.0: the DCGAN example's errD = errD_real + errD_fake. D_real and
    D_fake are logged without the weight, as pix2pix and the DCGAN example log them.

    Args:
        pred_real (Tensor): D's output on real samples.
        pred_fake (Tensor): D's output on fake samples.
        mode (str): one of GAN_MODES.
        weight (float): the factor on the sum; must be positive. Default: 0.5.

    Returns:
        (Tensor, LoggedTerms): the 0-d total and {'D_real', 'D_fake'} (0-d each).

    Raises:
        ValueError: an unknown mode, or a weight that is not positive.
        RuntimeError: 'bce' with CPU predictions outside [0, 1] or NaN.
    """
    if not weight > 0:
        raise ValueError(f"discriminator_loss: weight must be positive, got {weight!r}")
    if implementation(pred_real, "loss_terms") == FALLBACK:
        if check_gan_mode(mode) == "wgangp":  # -mean(real) + mean(fake) as one subtraction
            real, fake = pred_real.mean(), pred_fake.mean()
            return (fake - real) * weight, LoggedTerms([real, fake], _WGAN_D_TERMS)
        real, fake = gan_value(pred_real, mode, True), gan_value(pred_fake, mode, False)
        total = real + fake
        return (total if weight == 1.0 else total * weight), LoggedTerms([real, fake], _D_TERMS)
    total, values = evaluate_terms([gan_term(pred_real, mode, True, weight), gan_term(pred_fake, mode, False, weight)])
    return total, terms_named(values, ["D_real", "D_fake"], 1.0 / weight)


def cyclegan_generator_loss(pred_fake_B: Tensor, pred_fake_A: Tensor, rec_A: Tensor, real_A: Tensor, rec_B: Tensor,
                            real_B: Tensor, idt_A: Tensor | None = None, idt_B: Tensor | None = None, *,
                            mode: str = "lsgan", lambda_A: float = 10.0, lambda_B: float = 10.0,
                            lambda_identity: float = 0.5) -> tuple[Tensor, LoggedTerms]:
    """The six-term CycleGAN generator objective: GAN(D_A(G_A(A)), real) + GAN(D_B(G_B(B)), real)
    + lambda_A * L1(G_B(G_A(A)), A) + lambda_B * L1(G_A(G_B(B)), B)
    + lambda_B * lambda_identity * L1(G_A(B), B) + lambda_A * lambda_identity * L1(G_B(A), A).
    pred_fake_B = D_A(G_A(A)), pred_fake_A = D_B(G_B(B)), idt_A = G_A(B), idt_B = G_B(A); the
    identity terms are left out (logged as 0) when lambda_identity is 0.

    Args:
        pred_fake_B, pred_fake_A (Tensor): the discriminators' outputs on the fakes, as above.
        rec_A, real_A, rec_B, real_B (Tensor): the reconstructions and the images they must
            equal (same shapes).
        idt_A, idt_B (Tensor, optional): the identity mappings, as above; needed when
            lambda_identity > 0.
        mode (str, keyword-only): one of GAN_MODES. Default: 'lsgan'.
        lambda_A, lambda_B (float, keyword-only): the cycle weights. Default: 10.0 each.
        lambda_identity (float, keyword-only): the identity weight relative to them. Default: 0.5.

    Returns:
        (Tensor, LoggedTerms): the 0-d total and {'G_A', 'G_B', 'cycle_A', 'cycle_B', 'idt_A',
        'idt_B'}, each 0-d and weighted.

    Raises:
        ValueError: an unknown mode, lambda_identity > 0 without idt_A and idt_B, or a
            reconstruction whose shape differs from its image's.
    """
    identity = lambda_identity > 0
    if identity and (idt_A is None or idt_B is None):
        raise ValueError("lambda_identity > 0 needs idt_A = G_A(real_B) and idt_B = G_B(real_A)")
    if implementation(pred_fake_B, "loss_terms") == FALLBACK:
        check_gan_mode(mode)
        values = [gan_value(pred_fake_B, mode, True), gan_value(pred_fake_A, mode, True),
                  l1_value(rec_A, real_A, 2) * lambda_A, l1_value(rec_B, real_B, 4) * lambda_B]
        if identity:
            values += [l1_value(idt_A, real_B, 6) * (lambda_B * lambda_identity),
                       l1_value(idt_B, real_A, 7) * (lambda_A * lambda_identity)]
        return sum_terms(values), LoggedTerms(values, _CYCLEGAN_G_TERMS if identity else _CYCLEGAN_G_TERMS_NO_IDENTITY)
    terms = [gan_term(pred_fake_B, mode, True), gan_term(pred_fake_A, mode, True),
             LossTerm(rec_A, "l1", real_A, lambda_A), LossTerm(rec_B, "l1", real_B, lambda_B)]
    if identity:
        terms += [LossTerm(idt_A, "l1", real_B, lambda_B * lambda_identity),
                  LossTerm(idt_B, "l1", real_A, lambda_A * lambda_identity)]
    total, values = evaluate_terms(terms)
    return total, LoggedTerms(values, _CYCLEGAN_G_TERMS if identity else _CYCLEGAN_G_TERMS_NO_IDENTITY)


def pix2pix_generator_loss(pred_fake: Tensor, fake_B: Tensor, real_B: Tensor, *, mode: str = "vanilla",
                           lambda_L1: float = 100.0) -> tuple[Tensor, LoggedTerms]:
    """GAN(D(cat(A, G(A))), real) + lambda_L1 * L1(G(A), B): pix2pix's generator objective.

    Args:
        pred_fake (Tensor): D(cat([A, G(A)], 1)).
        fake_B (Tensor): G(A).
        real_B (Tensor): B, the shape of fake_B.
        mode (str, keyword-only): one of GAN_MODES. Default: 'vanilla'.
        lambda_L1 (float, keyword-only): the L1 term's weight. Default: 100.0.

    Returns:
        (Tensor, LoggedTerms): the 0-d total and {'G_GAN', 'G_L1'} (0-d; G_L1 weighted).

    Raises:
        ValueError: an unknown mode, or real_B's shape differs from fake_B's.
    """
    if implementation(pred_fake, "loss_terms") == FALLBACK:
        gan, l1 = gan_value(pred_fake, check_gan_mode(mode), True), l1_value(fake_B, real_B, 1) * lambda_L1
        return gan + l1, LoggedTerms([gan, l1], _PIX2PIX_G_TERMS)
    total, values = evaluate_terms([gan_term(pred_fake, mode, True), LossTerm(fake_B, "l1", real_B, lambda_L1)])
    return total, terms_named(values, ["G_GAN", "G_L1"])


def vae_loss(recon: Tensor, x: Tensor, mu: Tensor, logvar: Tensor, *, recon_loss: str = "bce",
             recon_reduction: str = "sum", kld_weight: float = 1.0,
             kld_reduction: str = "sum") -> tuple[Tensor, LoggedTerms]:
    """reconstruction + kld_weight * KL(N(mu, exp(logvar)) || N(0, 1)).

    pytorch/examples: recon_loss='bce', recon_reduction='sum', kld_reduction='sum' (x may keep
    its image shape, (N, 1, 28, 28) against (N, 784): it is compared element for element). The
    convolutional (AntixK-style) VAE: recon_loss='mse', recon_reduction='mean',
    kld_reduction='batchmean' (the per-sample sum averaged over the batch). The logged terms are
    the two contributions to the total: 'kld' includes kld_weight.

    Args:
        recon (Tensor): the decoder's output.
        x (Tensor): the input, recon's shape or recon's number of elements.
        mu, logvar (Tensor): the encoder's means and log-variances, one shape.
        recon_loss (str, keyword-only): 'bce' or 'mse'. Default: 'bce'.
        recon_reduction (str, keyword-only): 'sum' or 'mean'. Default: 'sum'.
        kld_weight (float, keyword-only): the KL term's weight. Default: 1.0.
        kld_reduction (str, keyword-only): 'sum' or 'batchmean'. Default: 'sum'.

    Returns:
        (Tensor, LoggedTerms): the 0-d total and {'recon', 'kld'} (0-d each).

    Raises:
        ValueError: an unknown recon_loss, recon_reduction or kld_reduction, mu and logvar of
            different shapes, or x with another number of elements than recon.
        RuntimeError: 'bce' with CPU values of recon outside [0, 1] or NaN.
    """
    if recon_loss not in ("bce", "mse"):
        raise ValueError(f"recon_loss must be 'bce' or 'mse', got {recon_loss!r}")
    if kld_reduction not in ("sum", "batchmean"):
        raise ValueError(f"kld_reduction must be 'sum' or 'batchmean', got {kld_reduction!r}")
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {list(mu.shape)} and {list(logvar.shape)}")
    if x.shape != recon.shape and x.numel() == recon.numel():
        x = x.reshape(recon.shape)  # the examples' x.view(-1, 784)
    kl_weight = kld_weight / (mu.shape[0] if kld_reduction == "batchmean" and mu.dim() > 0 and mu.shape[0] else 1)
    if implementation(recon, "loss_terms") == FALLBACK:
        recon_value = term_value(recon, recon_loss, x, 1.0, recon_reduction)
        kld = (mu.square() + torch.expm1(logvar) - logvar).sum() * (0.5 * kl_weight)
        return recon_value + kld, LoggedTerms([recon_value, kld], _VAE_TERMS)
    # KL = sum(mu^2 / 2) + sum((exp(logvar) - 1 - logvar) / 2): two separable terms
    total, values = evaluate_terms([LossTerm(recon, recon_loss, x, 1.0, recon_reduction),
                                LossTerm(mu, "half_square", None, kl_weight, "sum"),
                                LossTerm(logvar, "kl_logvar", None, kl_weight, "sum")])
    return total, LoggedTerms(values, {"recon": ((0,), 1.0), "kld": ((1, 2), 1.0)})
