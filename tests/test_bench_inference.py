"""The CPU inference benchmark family: its cases (DCGAN sampling alone in --quick, nothing on a
GPU), one row per variant against the plain reference model, and a variant whose output is
wrong reported and not timed."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from genimg_fast.bench import inference_bench
from genimg_fast.bench.checks import UntimedVariants
from genimg_fast.bench.suite import KINDS
from genimg_fast.models import DCGANGenerator, define_G

CPU = torch.device("cpu")


def _small(name: str) -> inference_bench.InferenceCase:
    """The family's case at a size a test runs in a second."""
    case = next(c for c in inference_bench.cases(CPU, quick=False) if c.name == name)
    if name == "dcgan sampling":
        def build():
            net = DCGANGenerator(nz=16, ngf=8, image_size=32, fused=False)
            with torch.no_grad():
                net(torch.randn(8, 16, 1, 1) * 2)
            return net.eval()
        return dataclasses.replace(case, build=build, input_shape=(8, 16, 1, 1))
    return dataclasses.replace(case, build=lambda: define_G(3, 3, 8, "unet_128", "batch", use_dropout=True,
                                                            fused=False), input_shape=(1, 3, 128, 128))


def test_cases_quick_full_and_gpu():
    assert inference_bench in KINDS["models"]
    assert [c.label for c in inference_bench.cases(CPU, quick=True)] == ["dcgan sampling b64 cpu"]
    full = inference_bench.cases(CPU, quick=False)
    assert [(c.input_shape, c.train_mode) for c in full] == [
        ((64, 100, 1, 1), False), ((1, 3, 256, 256), True), ((1, 3, 256, 256), True)]
    assert inference_bench.cases(torch.device("cuda"), quick=False) == []


@pytest.mark.parametrize("name", ["dcgan sampling", "unet_256 translate"])
def test_rows_for_every_variant_against_the_reference(name):
    rows = inference_bench.run_case(_small(name), CPU, compile_too=False, warmup=1, repeats=20)
    assert [r["variant"] for r in rows] == ["torch", "optimize_for_inference", "optimize_for_inference channels_last"]
    assert all(r["op"] == name and r["speedup_vs_torch"] > 0 for r in rows)
    assert rows[0]["speedup_vs_torch"] == 1.0


class _Shifted(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x) * (1 + 1e-3)  # a thousandth off: ten times the documented tolerance


def test_a_variant_with_other_outputs_is_reported_and_not_timed(monkeypatch):
    real = inference_bench.optimize_for_inference
    monkeypatch.setattr(inference_bench, "optimize_for_inference",
                        lambda model, channels_last, **kw: _Shifted(real(model, channels_last=channels_last, **kw))
                        if channels_last else real(model, channels_last=channels_last, **kw))
    with pytest.raises(UntimedVariants) as caught:
        inference_bench.run_case(_small("dcgan sampling"), CPU, compile_too=False, warmup=1, repeats=10)
    assert list(caught.value.failed) == ["optimize_for_inference channels_last"]
    assert "disagrees with torch on dcgan sampling" in caught.value.failed["optimize_for_inference channels_last"]
    assert [r["variant"] for r in caught.value.rows] == ["torch", "optimize_for_inference"]
