"""The losses where no kernel serves: torch's own loss functions, compared with the fused op's
exact reference (float64, fresh random inputs, every value and gradient), for every kind and
reduction, every objective and genimg_fast.ops.l1_loss; and bad input still named clearly."""
from __future__ import annotations

import pytest
import torch

from genimg_fast._implementation import FALLBACK, REFERENCE, forced
from genimg_fast.nn import CycleGANGeneratorLoss, DiscriminatorLoss, GANLoss, Pix2PixGeneratorLoss, VAELoss
from genimg_fast.ops import LossTerm, l1_loss, loss_terms
from genimg_fast.ops._loss_math import KINDS

# fp32 against the float64 reference: torch's losses reduce in a different order than the
# reference's sum, so values agree to a few float32 roundings per term
FP32_TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}


def _input(kind: str, shape, seed: int, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "bce":  # probabilities, away from 0 and 1
        return torch.rand(shape, generator=g, dtype=dtype) * 0.9 + 0.05
    return torch.randn(shape, generator=g, dtype=dtype)


def _both(terms_of, dtype=torch.float64):
    """(total, values, grads) from the fallback and from the reference, same inputs."""
    results = []
    for impl in (FALLBACK, REFERENCE):
        with forced(impl):
            terms = terms_of(dtype)
            inputs = [t.input for t in terms]
            total, values = loss_terms(terms)
            grads = torch.autograd.grad(total, inputs)
        results.append((total, values, grads))
    return results


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("constant_target", [False, True])
def test_each_kind_matches_the_reference(kind, reduction, constant_target, dtype):
    if constant_target and not KINDS[kind]:
        pytest.skip("no target")

    def terms(dtype):
        x = _input(kind, (2, 3, 5, 4), 0, dtype).requires_grad_()
        target = None
        if KINDS[kind]:
            target = 0.75 if constant_target else _input("bce" if kind in ("bce", "bce_logits") else kind,
                                                         (2, 3, 5, 4), 1, dtype)
        return [LossTerm(x, kind, target, 0.7, reduction)]

    (total, values, grads), (ref_total, ref_values, ref_grads) = _both(terms, dtype)
    tolerance = FP32_TOLERANCE if dtype == torch.float32 else {}
    torch.testing.assert_close(total, ref_total, **tolerance)
    torch.testing.assert_close(values, ref_values, **tolerance)
    torch.testing.assert_close(grads[0], ref_grads[0], **tolerance)


def _objective_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    patch = lambda: torch.randn(1, 1, 6, 6, generator=g, dtype=torch.float64).requires_grad_()  # noqa: E731
    image = lambda grad: torch.randn(1, 3, 8, 8, generator=g, dtype=torch.float64).requires_grad_(grad)  # noqa: E731
    return patch, image, g


OBJECTIVES = {
    "gan_lsgan": lambda p, i, g: (GANLoss("lsgan"), (p(), True)),
    "gan_wgangp": lambda p, i, g: (GANLoss("wgangp"), (p(), False)),
    "discriminator_vanilla": lambda p, i, g: (DiscriminatorLoss("vanilla"), (p(), p())),
    "discriminator_wgangp": lambda p, i, g: (DiscriminatorLoss("wgangp"), (p(), p())),
    "discriminator_lsgan": lambda p, i, g: (DiscriminatorLoss("lsgan"), (p(), p())),
    "cyclegan_G_no_identity": lambda p, i, g: (CycleGANGeneratorLoss(lambda_identity=0.0),
                                               (p(), p(), i(True), i(False), i(True), i(False))),
    "discriminator_bce": lambda p, i, g: (DiscriminatorLoss("bce", weight=1.0),
                                          (torch.rand(8, generator=g, dtype=torch.float64).requires_grad_(),
                                           torch.rand(8, generator=g, dtype=torch.float64).requires_grad_())),
    "cyclegan_G": lambda p, i, g: (CycleGANGeneratorLoss(), (p(), p(), i(True), i(False), i(True), i(False),
                                                            i(True), i(True))),
    "pix2pix_G": lambda p, i, g: (Pix2PixGeneratorLoss(), (p(), i(True), i(False))),
    "vae": lambda p, i, g: (VAELoss(), (torch.rand(4, 12, generator=g, dtype=torch.float64).requires_grad_(),
                                        torch.rand(4, 12, generator=g, dtype=torch.float64),
                                        torch.randn(4, 5, generator=g, dtype=torch.float64).requires_grad_(),
                                        torch.randn(4, 5, generator=g, dtype=torch.float64).requires_grad_())),
    "conv_vae": lambda p, i, g: (VAELoss("mse", "mean", 0.00025, "batchmean"),
                                 (i(True), i(False), torch.randn(1, 5, generator=g, dtype=torch.float64).requires_grad_(),
                                  torch.randn(1, 5, generator=g, dtype=torch.float64).requires_grad_())),
}


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_each_objective_matches_the_reference(name):
    results = []
    for impl in (FALLBACK, REFERENCE):
        patch, image, g = _objective_inputs()
        module, args = OBJECTIVES[name](patch, image, g)
        with forced(impl):
            out = module(*args)
            total, terms = out if isinstance(out, tuple) else (out, {})
            differentiable = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
            grads = torch.autograd.grad(total, differentiable)
            results.append((total, {k: v.detach() for k, v in terms.items()}, grads))
    (total, terms, grads), (ref_total, ref_terms, ref_grads) = results
    torch.testing.assert_close(total, ref_total)
    assert terms.keys() == ref_terms.keys()
    for key in terms:
        torch.testing.assert_close(terms[key], ref_terms[key], msg=key)
    for got, expected in zip(grads, ref_grads):
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_l1_loss_matches_the_reference(reduction):
    results = []
    for impl in (FALLBACK, REFERENCE):
        x, t = (_input("l1", (2, 3, 7, 5), s).requires_grad_() for s in (0, 1))
        with forced(impl):
            loss = l1_loss(x, t, 2.5, reduction)
            results.append((loss, *torch.autograd.grad(loss, (x, t))))
    for got, expected in zip(*results):
        torch.testing.assert_close(got, expected)


def test_bad_terms_are_named_on_the_fallback():
    x = torch.randn(2, 3)
    with forced(FALLBACK):
        with pytest.raises(ValueError, match="loss kind must be one of"):
            loss_terms([LossTerm(x, "huber", 0.0)])
        with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum'"):
            loss_terms([LossTerm(x, "mse", 0.0, 1.0, "none")])
        with pytest.raises(ValueError, match=r"targets\[0\] must match inputs\[0\] in shape"):
            loss_terms([LossTerm(x, "mse", torch.randn(3))])
        with pytest.raises(TypeError, match="weight must be a real number"):
            loss_terms([LossTerm(x, "mse", 0.0, "1")])
        with pytest.raises(TypeError, match="input must be a torch.Tensor"):
            loss_terms([LossTerm([1.0], "mse", 0.0)])
        with pytest.raises(ValueError, match="takes no target"):
            loss_terms([LossTerm(x, "linear", 1.0)])
        with pytest.raises(ValueError, match="must have the same shape|same shape"):
            l1_loss(x, torch.randn(3))


def test_the_fallback_objectives_compile_without_graph_breaks():
    d_loss, g_loss = DiscriminatorLoss("lsgan"), CycleGANGeneratorLoss()

    def step(p_real, p_fake, images):
        d_total, _ = d_loss(p_real, p_fake)
        g_total, _ = g_loss(p_real, p_fake, *images)
        return d_total + g_total + l1_loss(images[0], images[1])

    g = torch.Generator().manual_seed(0)
    patches = [torch.randn(1, 1, 6, 6, generator=g) for _ in range(2)]
    images = [torch.randn(1, 3, 8, 8, generator=g) for _ in range(6)]
    with forced(FALLBACK):
        compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
        torch.testing.assert_close(compiled(*patches, images), step(*patches, images))
