"""The drop-in networks on a GPU (fused kernels) against their plain reference layers on the same
GPU, with a float64 oracle: outputs, gradients and buffers in train and eval mode, channels_last,
bf16 autocast and torch.compile.

A deep fp32 network amplifies last-bit differences (a norm over 8 values, 15 layers deep), so an
fp32-to-fp32 tolerance either hides bugs or fails on noise. Instead: in float64 the fused network
must equal the reference to float64 precision, and in fp32 its error against the float64 reference
may be at most a small multiple of the reference layers' own fp32 error."""
from __future__ import annotations

import copy

import pytest
import torch

from genimg_fast.models import DCGANDiscriminator, DCGANGenerator, define_D, define_G

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("no_tf32")]

NETS = {  # name -> (build(fused), input shape)
    "dcgan_G": (lambda f: DCGANGenerator(ngf=32, fused=f), (16, 100, 1, 1)),
    "dcgan_D": (lambda f: DCGANDiscriminator(ndf=32, fused=f), (16, 3, 64, 64)),
    "resnet_instance": (lambda f: define_G(3, 3, 16, "resnet_6blocks", "instance", fused=f), (1, 3, 64, 64)),
    "unet_batch": (lambda f: define_G(3, 3, 16, "unet_128", "batch", fused=f), (2, 3, 128, 128)),
    "patch_D_instance": (lambda f: define_D(3, 16, "basic", norm="instance", fused=f), (1, 3, 64, 64)),
}
FP32_ERROR_FACTOR = 8  # fused fp32 error may be this many times the reference layers' fp32 error


def _nets(name):
    """Reference and fused network with the same weights, in fp32 and float64."""
    build, shape = NETS[name]
    torch.manual_seed(0)
    ref = build(False).cuda()
    fused = build(True).cuda()
    fused.load_state_dict(ref.state_dict(), strict=True)
    return {"ref": ref, "fused": fused, "ref64": copy.deepcopy(ref).double(),
            "fused64": copy.deepcopy(fused).double()}, shape


def _run(net, x, gy, training):
    """Output, input gradient, parameter gradients and buffers after one step."""
    net.train(training)
    x = x.to(next(net.parameters()).dtype).clone().requires_grad_()
    y = net(x)
    y.backward(gy.to(y.dtype))
    named = [(f"grad {k}", p.grad) for k, p in net.named_parameters()] + list(net.named_buffers())
    return [("output", y.detach()), ("input grad", x.grad)] + named


def _output_gradient(net, x):
    """A random gradient shaped like the output, from a copy (a forward updates running stats)."""
    with torch.no_grad():
        return torch.randn_like(copy.deepcopy(net)(x))


def _nets_and_inputs(name):
    """The networks, a float64 input and a gradient for their output."""
    nets, shape = _nets(name)
    x = torch.randn(shape, device="cuda", dtype=torch.float64)
    return nets, x, _output_gradient(nets["ref64"], x)


def _scale(t):
    return max(t.double().abs().max().item(), 1.0)


def _assert_within_reference_error(fused, ref, exact, what, factor=FP32_ERROR_FACTOR):
    """The fused network's error against the float64 reference is at most `factor` times the
    reference layers' own error at the same precision."""
    err_fused = (fused.double() - exact.double()).abs().max().item()
    err_ref = (ref.double() - exact.double()).abs().max().item()
    assert err_fused <= factor * err_ref + 1e-6 * _scale(exact), (
        f"{what}: fused error {err_fused:.3g}, reference layers' error {err_ref:.3g}")


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("name", list(NETS))
def test_fused_network_in_float64_equals_the_reference(cuda_kernels, name, training):
    nets, x, gy = _nets_and_inputs(name)
    got, want = _run(nets["fused64"], x, gy, training), _run(nets["ref64"], x, gy, training)
    assert [k for k, _ in got] == [k for k, _ in want]
    for (what, g), (_, w) in zip(got, want):
        tol = 1e-9 * _scale(w)
        torch.testing.assert_close(g.double(), w.double(), rtol=1e-9, atol=tol, msg=lambda m: f"{what}: {m}")


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("name", list(NETS))
def test_fused_network_in_fp32_is_as_accurate_as_the_reference(cuda_kernels, name, training):
    nets, x, gy = _nets_and_inputs(name)
    exact = _run(nets["ref64"], x, gy, training)
    fused, ref = _run(nets["fused"], x, gy, training), _run(nets["ref"], x, gy, training)
    for (what, f), (_, r), (_, e) in zip(fused, ref, exact):
        _assert_within_reference_error(f, r, e, f"{name} {what} (fp32)")


@pytest.mark.parametrize("name", ["dcgan_G", "resnet_instance"])
def test_channels_last_bf16_and_compile(cuda_kernels, name):
    nets, shape = _nets(name)
    for net in nets.values():
        net.eval()
    x = torch.randn(shape, device="cuda")
    with torch.no_grad():
        exact = nets["ref64"](x.double())

        def within_reference_error(fused_out, ref_out, what, factor=FP32_ERROR_FACTOR):
            _assert_within_reference_error(fused_out, ref_out, exact, f"{name} {what}", factor)

        x_cl = x.contiguous(memory_format=torch.channels_last)
        ref_cl = copy.deepcopy(nets["ref"]).to(memory_format=torch.channels_last)
        fused_cl = copy.deepcopy(nets["fused"]).to(memory_format=torch.channels_last)
        within_reference_error(fused_cl(x_cl), ref_cl(x_cl), "channels_last")
        with torch.autocast("cuda", dtype=torch.bfloat16):
            within_reference_error(nets["fused"](x), nets["ref"](x), "bf16 autocast", factor=4)
        within_reference_error(torch.compile(nets["fused"])(x), nets["ref"](x), "torch.compile")
