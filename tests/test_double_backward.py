"""Double backward through the fused modules (gradient penalties: WGAN-GP, R1): gradcheck and
gradgradcheck of BatchNormAct2d / InstanceNormAct2d under every implementation, and a WGAN-GP
critic step through a fused PatchGAN discriminator equal to the plain torch.nn one's. The
kernel path's host code runs on CPU tensors here (its autograd asks for the differentiable
backward composite when a backward is recorded); the GPU test runs the kernels themselves."""
from __future__ import annotations

import pytest
import torch

import genimg_fast
from genimg_fast._implementation import FALLBACK, KERNELS, REFERENCE, forced
from genimg_fast.models import define_D
from genimg_fast.nn import BatchNormAct2d, InstanceNormAct2d
from genimg_fast.ops import objectives

IMPLEMENTATIONS = [FALLBACK, REFERENCE, KERNELS]
ACTIVATIONS = [("relu", 0.01), ("leaky_relu", 0.2)]


def _module(cls, activation, slope, training, seed=0):
    torch.manual_seed(seed)
    kwargs = {"affine": True, "track_running_stats": True} if cls is InstanceNormAct2d else {}
    module = cls(3, activation=activation, negative_slope=slope, dtype=torch.float64, **kwargs)
    with torch.no_grad():
        module.weight.uniform_(0.5, 1.5)
        module.bias.uniform_(-0.5, 0.5)
        module.running_mean.uniform_(-0.5, 0.5)
        module.running_var.uniform_(0.5, 1.5)
    return module.train(training)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("activation,slope", ACTIVATIONS)
@pytest.mark.parametrize("cls", [BatchNormAct2d, InstanceNormAct2d])
def test_gradcheck_and_gradgradcheck(cls, activation, slope, training, impl):
    module = _module(cls, activation, slope, training)
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(3, 3, 4, 4, generator=g, dtype=torch.float64) * 2 + 0.3).requires_grad_()
    buffers = dict(module.named_buffers())

    def run(x, weight, bias):  # each evaluation from the same running statistics
        state = {"weight": weight, "bias": bias, **{name: t.clone() for name, t in buffers.items()}}
        return torch.func.functional_call(module, state, (x,))

    params = (module.weight.detach().clone().requires_grad_(), module.bias.detach().clone().requires_grad_())
    with forced(impl):
        assert torch.autograd.gradcheck(run, (x, *params))
        assert torch.autograd.gradgradcheck(run, (x, *params))


def _gradient_penalty(critic, real, fake, alpha):
    """junyanz's cal_gradient_penalty ('mixed', constant 1, lambda 10)."""
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_()
    out = critic(mixed)
    (grads,) = torch.autograd.grad(out, mixed, torch.ones_like(out), create_graph=True)
    return (((grads.flatten(1) + 1e-16).norm(2, dim=1) - 1) ** 2).mean() * 10.0


def _wgangp_step(critic, real, fake, alpha):
    """One critic step of --gan_mode wgangp: -D(real) + D(fake) (means) and the penalty."""
    critic.zero_grad()
    loss = -critic(real).mean() + critic(fake).mean() + _gradient_penalty(critic, real, fake, alpha)
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in critic.named_parameters()}


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_wgangp_step_through_a_fused_patchgan_equals_torchs(norm, impl):
    torch.manual_seed(0)
    plain = define_D(3, 8, "basic", norm=norm, fused=False).double()
    fused = define_D(3, 8, "basic", norm=norm, fused=True).double()
    fused.load_state_dict(plain.state_dict())
    assert any(isinstance(m, (BatchNormAct2d, InstanceNormAct2d)) for m in fused.modules())
    g = torch.Generator().manual_seed(2)
    real, fake = (torch.randn(2, 3, 32, 32, generator=g, dtype=torch.float64) for _ in range(2))
    alpha = torch.rand(2, 1, 1, 1, generator=g, dtype=torch.float64)
    expected_loss, expected = _wgangp_step(plain, real, fake, alpha)
    with forced(impl):
        loss, grads = _wgangp_step(fused, real, fake, alpha)
    torch.testing.assert_close(loss, expected_loss)
    assert grads.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(grads[name], expected[name], msg=name)


def test_r1_penalty_through_a_fused_objective_on_the_fallback():
    """On the fallback the objectives are torch's losses: a penalty on their gradient works."""
    pred = torch.randn(2, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    with forced(FALLBACK):
        total, _ = objectives.discriminator_loss(pred, pred * 0.5, "vanilla")
        (grad,) = torch.autograd.grad(total, pred, create_graph=True)
        grad.square().sum().backward()
    expected_pred = pred.detach().clone().requires_grad_()
    f = torch.nn.functional.binary_cross_entropy_with_logits
    ref = 0.5 * (f(expected_pred, torch.ones_like(expected_pred)) + f(expected_pred * 0.5, torch.zeros_like(expected_pred)))
    (ref_grad,) = torch.autograd.grad(ref, expected_pred, create_graph=True)
    ref_grad.square().sum().backward()
    torch.testing.assert_close(pred.grad, expected_pred.grad)


def test_the_fused_loss_op_still_says_why_it_cannot_differentiate_twice():
    """The fused op keeps only the gradient it computed in the forward, not its inputs: a curved
    term's second derivative is unknown to it, so it refuses instead of returning a wrong one."""
    pred = torch.randn(2, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    with forced(REFERENCE):
        total, _ = objectives.discriminator_loss(pred, pred * 0.5, "lsgan")
        with pytest.raises(RuntimeError, match="double backward.*computes its gradient in the forward"):
            torch.autograd.grad(total, pred, create_graph=True)


@pytest.mark.cuda
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_wgangp_step_on_the_gpu_kernels_equals_torchs(norm, cuda_kernels, no_tf32):
    torch.manual_seed(0)
    plain = define_D(3, 16, "basic", norm=norm, fused=False).to(cuda_kernels)
    fused = genimg_fast.convert(plain)
    g = torch.Generator().manual_seed(2)
    real, fake = (torch.randn(4, 3, 64, 64, generator=g).to(cuda_kernels) for _ in range(2))
    alpha = torch.rand(4, 1, 1, 1, generator=g).to(cuda_kernels)
    expected_loss, expected = _wgangp_step(plain, real, fake, alpha)
    loss, grads = _wgangp_step(fused, real, fake, alpha)
    torch.testing.assert_close(loss, expected_loss, rtol=1e-4, atol=1e-4)
    for name in expected:
        torch.testing.assert_close(grads[name], expected[name], rtol=1e-3, atol=1e-4, msg=name)
