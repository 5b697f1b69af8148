"""The benchmark's FLOP counts (genimg_fast/bench/flops.py) against counts made by hand from the
DCGAN networks' layer shapes: a convolution does 2*N*Cout*Hout*Wout*Cin*k*k, a transposed one
2*N*Cin*Hin*Win*Cout*k*k; its backward the same again for the weight's gradient and again for
the input's, which the first layer's input (noise, images) does not need."""
from __future__ import annotations

import pytest
import torch

from genimg_fast.bench import training_bench
from genimg_fast.bench.flops import achieved_tflops, count_flops
from genimg_fast.models import DCGANDiscriminator, DCGANGenerator

K = 4  # every DCGAN layer's kernel is 4x4


def _transposed(n: int, layers: list[tuple[int, int, int]]) -> list[int]:
    """(Cin, Cout, Hin) per layer -> FLOPs per layer."""
    return [2 * n * cin * hin * hin * cout * K * K for cin, cout, hin in layers]


def _conv(n: int, layers: list[tuple[int, int, int]]) -> list[int]:
    """(Cin, Cout, Hout) per layer -> FLOPs per layer."""
    return [2 * n * cout * hout * hout * cin * K * K for cin, cout, hout in layers]


def _with_backward(per_layer: list[int]) -> int:
    """Forward, the weights' gradients, and the inputs' gradients of every layer but the first."""
    return 3 * sum(per_layer) - per_layer[0]


# 32x32 images, nz 10, 4 feature maps at the widest-resolution layer, 3 colours, batch 2
N, NZ, WIDTH, NC = 2, 10, 4, 3
GENERATOR = _transposed(N, [(10, 16, 1), (16, 8, 4), (8, 4, 8), (4, 3, 16)])  # 1 -> 4 -> 8 -> 16 -> 32
DISCRIMINATOR = _conv(N, [(3, 4, 16), (4, 8, 8), (8, 16, 4), (16, 1, 1)])     # 32 -> 16 -> 8 -> 4 -> 1


def _networks(fused: bool, device: str = "cpu"):
    torch.manual_seed(0)
    return (DCGANGenerator(NZ, WIDTH, NC, 32, fused=fused, device=device),
            DCGANDiscriminator(NC, WIDTH, 32, fused=fused, device=device))


@pytest.mark.parametrize("fused", [False, True])
def test_dcgan_forward_flops_are_the_hand_count(fused):
    netG, netD = _networks(fused)
    noise, images = torch.randn(N, NZ, 1, 1), torch.randn(N, NC, 32, 32)
    with torch.no_grad():
        assert count_flops(lambda: netG(noise)) == sum(GENERATOR) == 468_992
        assert count_flops(lambda: netD(images)) == sum(DISCRIMINATOR) == 459_776


@pytest.mark.parametrize("fused", [False, True])
def test_dcgan_forward_and_backward_flops_are_the_hand_count(fused):
    netG, netD = _networks(fused)
    noise, images = torch.randn(N, NZ, 1, 1), torch.randn(N, NC, 32, 32)
    assert count_flops(lambda: netG(noise).sum().backward()) == _with_backward(GENERATOR)
    assert count_flops(lambda: netD(images).sum().backward()) == _with_backward(DISCRIMINATOR)


def test_the_count_depends_on_shapes_alone():
    """Counted on the meta device, where nothing is computed, the count is the CPU's."""
    netG, netD = _networks(False, device="meta")
    noise, images = torch.randn(N, NZ, 1, 1, device="meta"), torch.randn(N, NC, 32, 32, device="meta")
    assert count_flops(lambda: netG(noise).sum().backward()) == _with_backward(GENERATOR)
    assert count_flops(lambda: netD(images)) == sum(DISCRIMINATOR)


def test_a_dcgan_training_iteration_is_its_passes_added_up():
    """The bench's small DCGAN case (batch 16, 32x32, width 8, nz 100): D runs forward on the real
    batch, the detached fake and the fake, G once; D's backward thrice (twice without the
    images' gradient), G's once."""
    case = training_bench.cases(torch.device("cpu"), quick=True)[0]
    assert (case.name, case.batch_shape) == ("dcgan", (16, 3, 32, 32))
    g = _transposed(16, [(100, 32, 1), (32, 16, 4), (16, 8, 8), (8, 3, 16)])
    d = _conv(16, [(3, 8, 16), (8, 16, 8), (16, 32, 4), (32, 1, 1)])
    forwards = 3 * sum(d) + sum(g)
    backwards = 2 * (2 * sum(d) - d[0]) + 2 * sum(d) + (2 * sum(g) - g[0])
    recipe = case.build({"device": "cpu", "impl": "reference", "progress": False}, torch.device("cpu"))
    batch = training_bench._batches(case, torch.device("cpu"))[0]
    assert count_flops(lambda: recipe.step(batch)) == forwards + backwards == 135_544_832


def test_achieved_tflops():
    assert achieved_tflops(2 * 10**12, 500.0) == pytest.approx(4.0)  # 2 TFLOP in half a second
    assert achieved_tflops(None, 1.0) is None and achieved_tflops(10, None) is None
