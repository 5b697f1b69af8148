"""The drop-in networks on a GPU (fused kernels) against their plain reference layers on the same
GPU: outputs and gradients in train and eval mode, channels_last, bf16 autocast, torch.compile."""
from __future__ import annotations

import pytest
import torch

from genimg_fast.models import DCGANDiscriminator, DCGANGenerator, define_D, define_G

pytestmark = pytest.mark.cuda

NETS = {  # name -> (build(fused), input shape)
    "dcgan_G": (lambda f: DCGANGenerator(ngf=32, fused=f), (16, 100, 1, 1)),
    "dcgan_D": (lambda f: DCGANDiscriminator(ndf=32, fused=f), (16, 3, 64, 64)),
    "resnet_instance": (lambda f: define_G(3, 3, 16, "resnet_6blocks", "instance", fused=f), (1, 3, 64, 64)),
    "unet_batch": (lambda f: define_G(3, 3, 16, "unet_128", "batch", fused=f), (2, 3, 128, 128)),
    "patch_D_instance": (lambda f: define_D(3, 16, "basic", norm="instance", fused=f), (1, 3, 64, 64)),
}


def _pair(name):
    build, shape = NETS[name]
    torch.manual_seed(0)
    ref = build(False).cuda()
    fused = build(True).cuda()
    fused.load_state_dict(ref.state_dict(), strict=True)
    return ref, fused, shape


def _close(actual, expected, rel, what):
    scale = max(expected.abs().max().item(), 1.0)
    torch.testing.assert_close(actual, expected, rtol=rel, atol=rel * scale, msg=lambda m: f"{what}: {m}")


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("name", list(NETS))
def test_fused_network_matches_its_reference_layers(cuda_kernels, name, training):
    ref, fused, shape = _pair(name)
    ref.train(training), fused.train(training)
    x = torch.randn(shape, device="cuda")
    xr, xf = x.clone().requires_grad_(), x.clone().requires_grad_()
    yr, yf = ref(xr), fused(xf)
    _close(yf, yr, 1e-4, "output")
    gy = torch.randn_like(yr)
    yr.backward(gy), yf.backward(gy)
    _close(xf.grad, xr.grad, 1e-3, "input grad")
    for (k, p), q in zip(fused.named_parameters(), ref.parameters()):
        _close(p.grad, q.grad, 1e-3, k)
    for (k, b), c in zip(fused.named_buffers(), ref.buffers()):
        _close(b.float(), c.float(), 1e-4, k)


@pytest.mark.parametrize("name", ["dcgan_G", "resnet_instance"])
def test_channels_last_bf16_and_compile(cuda_kernels, name):
    ref, fused, shape = _pair(name)
    ref.eval(), fused.eval()
    x = torch.randn(shape, device="cuda")
    with torch.no_grad():
        expected = ref(x)
        fused_cl = fused.to(memory_format=torch.channels_last)
        _close(fused_cl(x.contiguous(memory_format=torch.channels_last)), expected, 1e-4, "channels_last")
        with torch.autocast("cuda", dtype=torch.bfloat16):
            _close(fused(x).float(), expected, 5e-2, "bf16 autocast")
        _close(torch.compile(fused)(x), expected, 1e-4, "torch.compile")
