"""The benchmarks' GPU-only machinery: CUDA-graph variants checked against their own eager step
(dropout included), and the networks' full set of variants on small models."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genimg_fast.bench import models_bench
from genimg_fast.bench.graphs import add_graph_variants
from genimg_fast.models import ConvVAE, DCGANGenerator, define_G

pytestmark = pytest.mark.cuda


def test_graph_replays_draw_the_eager_steps_dropout_masks(cuda_kernels):
    x = torch.randn(64, 256, device="cuda", requires_grad=True)
    w = torch.randn(256, 256, device="cuda", requires_grad=True)

    def step(_i):
        y = F.dropout(x @ w, 0.5, training=True)
        return torch.autograd.grad(y.square().mean(), [x, w])
    steps = {"torch": step, "genimg_fast": step}
    failed = add_graph_variants(steps, torch.device("cuda"), rtol=1e-5, atol=1e-6)
    assert failed == {} and set(steps) == {"torch", "genimg_fast", "torch (cuda graph)", "genimg_fast (cuda graph)"}


def test_a_replay_that_differs_from_its_eager_step_is_not_kept(cuda_kernels):
    counter = torch.zeros(4, device="cuda")

    def drifting(_i):  # every call, eager or replayed, moves the state: a replay cannot match
        counter.add_(1)
        return (counter * 1,)

    def steady(_i):
        return (torch.ones(4, device="cuda") * 2,)
    steps = {"torch": steady, "genimg_fast": drifting}
    failed = add_graph_variants(steps, torch.device("cuda"), rtol=0, atol=0)
    assert set(steps) == {"torch", "genimg_fast", "torch (cuda graph)"}
    assert "genimg_fast (cuda graph) disagrees with genimg_fast" in failed["genimg_fast (cuda graph)"]


NETWORKS = [
    models_bench.ModelCase("dcgan_G", lambda f: DCGANGenerator(ngf=16, fused=f), (16, 100, 1, 1), "dcgan G small"),
    # reflection padding (its backward adds atomically) and biases before instance norm (gradients
    # that are zero in exact arithmetic); batch 2: torch's own channels_last InstanceNorm backward
    # is wrong at batch 1, on the CPU at least
    models_bench.ModelCase("resnet_G", lambda f: define_G(3, 3, 8, "resnet_6blocks", "instance", fused=f),
                           (2, 3, 64, 64), "cyclegan G small"),
    models_bench.ModelCase("conv_vae", lambda f: ConvVAE(fused=f), (4, 3, 64, 64), "conv vae small"),  # noise
]


@pytest.mark.parametrize("case", NETWORKS, ids=[case.name for case in NETWORKS])
def test_network_variants_all_pass_their_checks(cuda_kernels, case):
    rows = models_bench.run_case(case, torch.device("cuda"), compile_too=False, warmup=2, repeats=20)
    variants = {row["variant"] for row in rows}
    assert variants == {"torch", "genimg_fast", "torch bf16", "genimg_fast bf16", "torch channels_last",
                        "genimg_fast channels_last", "torch (cuda graph)", "genimg_fast (cuda graph)"}
    assert all(row["peak_mb"] is not None for row in rows if "cuda graph" not in row["variant"])
