"""The recipes' objectives as fused loss modules: each equals the sum of the reference recipe's
terms (written here with torch's own losses, as junyanz's GANLoss and the VAE examples compute
them), with the same gradients (a gradient penalty through fused modules: test_double_backward.py)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from op_counter import OpCounter

from genimg_fast._implementation import REFERENCE, forced
from genimg_fast.nn import CycleGANGeneratorLoss, DiscriminatorLoss, GANLoss, Pix2PixGeneratorLoss, VAELoss


def _rand(*shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=dtype)


def reference_gan_loss(prediction, mode, target_is_real):
    """junyanz's GANLoss: labels 1.0 / 0.0 expanded to the prediction's shape."""
    if mode == "wgangp":
        return -prediction.mean() if target_is_real else prediction.mean()
    target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
    if mode == "lsgan":
        return F.mse_loss(prediction, target)
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(prediction, target)
    return F.binary_cross_entropy(prediction, target)


def _assert_same_gradients(ours, theirs, tensors):
    for a, e in zip(torch.autograd.grad(ours, tensors, retain_graph=True),
                    torch.autograd.grad(theirs, tensors, retain_graph=True)):
        torch.testing.assert_close(a, e)


@pytest.mark.parametrize("mode", ["lsgan", "vanilla", "wgangp", "bce"])
@pytest.mark.parametrize("target_is_real", [True, False])
def test_gan_loss_is_junyanz_s(mode, target_is_real):
    pred = _rand(2, 1, 30, 30)
    if mode == "bce":
        pred = torch.sigmoid(pred)
    pred.requires_grad_()
    ours, theirs = GANLoss(mode)(pred, target_is_real), reference_gan_loss(pred, mode, target_is_real)
    torch.testing.assert_close(ours, theirs)
    _assert_same_gradients(ours, theirs, [pred])


def test_gan_loss_rejects_unknown_modes_and_takes_truthy_targets_like_junyanz():
    with pytest.raises(ValueError, match="gan_mode must be one of"):
        GANLoss("hinge")
    pred = _rand(3)
    import numpy as np
    for truthy, falsy in ((1, 0), (np.bool_(True), np.bool_(False))):
        torch.testing.assert_close(GANLoss("lsgan")(pred, truthy), GANLoss("lsgan")(pred, True))
        torch.testing.assert_close(GANLoss("lsgan")(pred, falsy), GANLoss("lsgan")(pred, False))


@pytest.mark.parametrize("lambda_identity", [0.5, 0.0])
def test_cyclegan_generator_objective_is_the_six_reference_terms(lambda_identity):
    shape, patch = (1, 3, 16, 16), (1, 1, 6, 6)
    names = ["pred_fake_B", "pred_fake_A", "rec_A", "real_A", "rec_B", "real_B", "idt_A", "idt_B"]
    shapes = [patch, patch] + [shape] * 6
    t = {n: _rand(*s, seed=i).requires_grad_(not n.startswith("real")) for i, (n, s) in enumerate(zip(names, shapes))}
    total, terms = CycleGANGeneratorLoss("lsgan", 10.0, 10.0, lambda_identity)(*(t[n] for n in names))
    ref = {"G_A": reference_gan_loss(t["pred_fake_B"], "lsgan", True),
           "G_B": reference_gan_loss(t["pred_fake_A"], "lsgan", True),
           "cycle_A": F.l1_loss(t["rec_A"], t["real_A"]) * 10.0, "cycle_B": F.l1_loss(t["rec_B"], t["real_B"]) * 10.0,
           "idt_A": F.l1_loss(t["idt_A"], t["real_B"]) * 10.0 * lambda_identity,
           "idt_B": F.l1_loss(t["idt_B"], t["real_A"]) * 10.0 * lambda_identity}
    for name, value in ref.items():
        torch.testing.assert_close(terms[name], value.detach() if lambda_identity == 0 and "idt" in name else value,
                                   msg=name)
    expected = sum(ref.values())
    torch.testing.assert_close(total, expected)
    grads_of = [t[n] for n in names if t[n].requires_grad and (lambda_identity > 0 or "idt" not in n)]
    _assert_same_gradients(total, expected, grads_of)


@pytest.mark.parametrize("mode", ["lsgan", "vanilla"])
def test_discriminator_objective_is_half_the_sum(mode):
    real, fake = _rand(1, 1, 30, 30, seed=1).requires_grad_(), _rand(1, 1, 30, 30, seed=2).requires_grad_()
    total, terms = DiscriminatorLoss(mode)(real, fake)
    d_real, d_fake = reference_gan_loss(real, mode, True), reference_gan_loss(fake, mode, False)
    expected = 0.5 * (d_real + d_fake)
    torch.testing.assert_close(total, expected)
    torch.testing.assert_close(terms["D_real"], d_real)  # logged before the 0.5, as pix2pix logs them
    torch.testing.assert_close(terms["D_fake"], d_fake)
    _assert_same_gradients(total, expected, [real, fake])


def test_dcgan_discriminator_objective_is_the_example_s_errD():
    real, fake = torch.sigmoid(_rand(16, seed=1)).requires_grad_(), torch.sigmoid(_rand(16, seed=2)).requires_grad_()
    total, terms = DiscriminatorLoss("bce", weight=1.0)(real, fake)
    err_real, err_fake = reference_gan_loss(real, "bce", True), reference_gan_loss(fake, "bce", False)
    torch.testing.assert_close(total, err_real + err_fake)
    torch.testing.assert_close(terms["D_real"], err_real)
    torch.testing.assert_close(terms["D_fake"], err_fake)
    _assert_same_gradients(total, err_real + err_fake, [real, fake])
    with pytest.raises(ValueError, match="weight must be positive"):
        DiscriminatorLoss("bce", weight=0.0)(real, fake)


@pytest.mark.parametrize("name", ["cyclegan_G", "discriminator", "pix2pix_G", "vae"])
def test_each_objective_is_one_op_until_its_terms_are_read(name):
    """A step that does not log runs the fused op alone; reading the terms builds them then."""
    # rec_A, real_A, rec_B, real_B, idt_A, idt_B: the real images are data, without gradients
    images = [_rand(1, 3, 8, 8, seed=i).requires_grad_(i not in (1, 3)) for i in range(6)]
    patches = [_rand(1, 1, 4, 4, seed=10 + i).requires_grad_() for i in range(2)]
    recon = torch.sigmoid(images[0]).detach().requires_grad_()
    calls = {  # name -> (objective, its arguments), built before counting
        "cyclegan_G": (CycleGANGeneratorLoss(), (*patches, *images)),
        "discriminator": (DiscriminatorLoss("lsgan"), tuple(patches)),
        "pix2pix_G": (Pix2PixGeneratorLoss(), (patches[0], images[0], images[1])),
        "vae": (VAELoss(), (recon, torch.rand(1, 3, 8, 8, dtype=torch.float64), _rand(2, 4, seed=20).requires_grad_(),
                            _rand(2, 4, seed=21).requires_grad_())),
    }
    objective, args = calls[name]
    with forced(REFERENCE), OpCounter() as counter:  # the fused op's path (kernels on a GPU)
        total, terms = objective(*args)
    assert counter.ops == ["genimg_fast.loss_terms.default"]
    with OpCounter() as counter:
        logged = {k: v for k, v in terms.items()}
    assert counter.ops, "reading the terms computes them"
    assert set(logged) == set(terms) and len(terms) == len(logged)
    assert all(v.dim() == 0 for v in logged.values())
    with OpCounter() as counter:
        again = terms[next(iter(terms))]
    assert counter.ops == [] and again is logged[next(iter(terms))]  # built once
    assert "LoggedTerms(" in repr(terms)
    with pytest.raises(KeyError):
        terms["no such term"]


def test_pix2pix_generator_objective():
    pred, fake_B, real_B = _rand(1, 1, 30, 30, seed=1), _rand(1, 3, 16, 16, seed=2), _rand(1, 3, 16, 16, seed=3)
    pred.requires_grad_(), fake_B.requires_grad_()
    total, terms = Pix2PixGeneratorLoss("vanilla", 100.0)(pred, fake_B, real_B)
    expected = reference_gan_loss(pred, "vanilla", True) + 100.0 * F.l1_loss(fake_B, real_B)
    torch.testing.assert_close(total, expected)
    torch.testing.assert_close(terms["G_L1"], 100.0 * F.l1_loss(fake_B, real_B))
    _assert_same_gradients(total, expected, [pred, fake_B])


def test_vae_objective_of_pytorch_examples():
    recon = torch.sigmoid(_rand(8, 784, seed=1)).requires_grad_()
    images = torch.rand(8, 1, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    x = images.view(-1, 784)  # the example flattens; VAELoss also takes the loader's image shape
    mu, logvar = _rand(8, 20, seed=3).requires_grad_(), (0.3 * _rand(8, 20, seed=4)).requires_grad_()
    total, terms = VAELoss()(recon, images, mu, logvar)
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    torch.testing.assert_close(total, bce + kld)
    torch.testing.assert_close(terms["recon"], bce)
    torch.testing.assert_close(terms["kld"], kld)
    _assert_same_gradients(total, bce + kld, [recon, mu, logvar])


def test_vae_objective_of_the_convolutional_vae():
    recon, x = _rand(4, 3, 8, 8, seed=1).requires_grad_(), _rand(4, 3, 8, 8, seed=2)
    mu, logvar = _rand(4, 16, seed=3).requires_grad_(), (0.3 * _rand(4, 16, seed=4)).requires_grad_()
    total, _ = VAELoss("mse", "mean", kld_weight=0.00025, kld_reduction="batchmean")(recon, x, mu, logvar)
    kld = torch.mean(-0.5 * torch.sum(1 + logvar - mu ** 2 - logvar.exp(), dim=1), dim=0)
    expected = F.mse_loss(recon, x) + 0.00025 * kld
    torch.testing.assert_close(total, expected)
    _assert_same_gradients(total, expected, [recon, mu, logvar])
