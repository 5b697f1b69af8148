"""'bce' terms take probabilities: on the CPU an input outside [0, 1], NaN or Inf raises as torch's
BCELoss does, on the fallback (torch's own op) and on the fused op's path (its reference) alike,
instead of a silent NaN loss. (On a GPU no check runs: docs/implementations.md.)"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genimg_fast._implementation import FALLBACK, KERNELS, REFERENCE, forced
from genimg_fast.nn import DiscriminatorLoss, GANLoss, Pix2PixGeneratorLoss, VAELoss
from genimg_fast.ops import LossTerm, loss_terms

BAD = [1.5, -0.1, float("nan"), float("inf"), float("-inf")]
IMPLS = [FALLBACK, REFERENCE, KERNELS]  # KERNELS on CPU tensors: the op's CPU slot, its reference
MESSAGE = "should be between 0 and 1"


def _prediction(bad: float) -> torch.Tensor:
    p = torch.full((2, 1, 4, 4), 0.5)
    p[1, 0, 2, 3] = bad  # one bad element among good ones
    return p


def test_torch_itself_raises_so_the_message_is_its():
    with pytest.raises(RuntimeError, match=MESSAGE):
        F.binary_cross_entropy(_prediction(1.5), torch.ones(2, 1, 4, 4))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bad", BAD)
def test_gan_loss_bce_raises_on_bad_probabilities(impl, bad):
    with forced(impl), pytest.raises(RuntimeError, match=MESSAGE):
        GANLoss("bce")(_prediction(bad), True)


@pytest.mark.parametrize("impl", IMPLS)
def test_objectives_with_mode_bce_raise(impl):
    good, bad = _prediction(0.5), _prediction(float("nan"))
    image = torch.zeros(2, 3, 4, 4)
    with forced(impl):
        for call in (lambda: DiscriminatorLoss("bce", weight=1.0)(good, bad),
                     lambda: DiscriminatorLoss("bce")(bad, good),
                     lambda: Pix2PixGeneratorLoss("bce")(bad, image, image),
                     lambda: VAELoss()(bad, torch.rand(2, 1, 4, 4), torch.zeros(2, 3), torch.zeros(2, 3))):
            with pytest.raises(RuntimeError, match=MESSAGE):
                call()


@pytest.mark.parametrize("impl", [REFERENCE, KERNELS])
def test_fused_op_path_names_the_term(impl):
    ok = torch.rand(3, 3)
    with forced(impl), pytest.raises(RuntimeError, match=r"inputs\[1\] " + MESSAGE):
        loss_terms([LossTerm(ok, "mse", 0.0), LossTerm(_prediction(2.0), "bce", 1.0)])


@pytest.mark.parametrize("impl", IMPLS)
def test_edges_and_other_kinds_are_not_refused(impl):
    edges = torch.tensor([0.0, 1.0, 0.25])
    logits = torch.tensor([-3.0, 7.0, float("nan")])  # bce_logits takes any value, NaN included
    with forced(impl):
        assert torch.isfinite(GANLoss("bce")(edges, True))
        loss_terms([LossTerm(logits, "bce_logits", 1.0), LossTerm(logits, "mse", 0.0)])
