"""The two examples of docs/cuda-graphs.md, run as written: pytorch/examples' DCGAN loop body
and junyanz's CycleGAN optimize_parameters wrapped by capture_training_step. Each is compared
with the same code run eagerly (capture_training_step replaced by the bare step): on the CPU
with the capture's stand-in (the warm-up undone, the inputs reaching every replay), on a GPU
captured for real."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import genimg_fast
from capture_stand_in import allow_cpu_capture
from junyanz_like_cyclegan import create_model_on

DOC = Path(__file__).resolve().parents[1] / "docs" / "cuda-graphs.md"


def _examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def _dcgan_namespace(device: torch.device) -> dict:
    g = torch.Generator().manual_seed(3)
    batches = [(torch.rand(2, 3, 64, 64, generator=g) * 2 - 1, torch.zeros(2)) for _ in range(3)]
    return {"dataloader": batches, "print": lambda *args, **kwargs: None}


def _cyclegan_namespace(device: torch.device) -> dict:
    g = torch.Generator().manual_seed(4)
    dataset = [{"A": torch.rand(1, 3, 32, 32, generator=g) * 2 - 1, "B": torch.rand(1, 3, 32, 32, generator=g) * 2 - 1}
               for _ in range(4)]
    create_model, opt = create_model_on(device)
    return {"dataset": dataset, "create_model": create_model, "opt": opt}


NAMESPACES = {"dcgan": (0, _dcgan_namespace), "cyclegan": (1, _cyclegan_namespace)}


def _run(name: str, device: torch.device) -> dict:
    index, namespace = NAMESPACES[name]
    scope = namespace(device)
    torch.manual_seed(0)
    exec(compile(_examples()[index], f"{DOC.name} example {index + 1}", "exec"), scope)
    return scope


def _modules(scope: dict) -> list[torch.nn.Module]:
    return [scope["netG"], scope["netD"]] if "netG" in scope else scope["model"].networks()


def _assert_same_training(eager: dict, graphed: dict, **tolerance) -> None:
    for a, b in zip(_modules(eager), _modules(graphed)):
        for (key, x), y in zip(a.state_dict().items(), b.state_dict().values()):
            torch.testing.assert_close(x, y, **tolerance, msg=lambda m: f"{key}: {m}")
    for name in eager["losses"]:
        torch.testing.assert_close(eager["losses"][name], graphed["losses"][name], **tolerance)


def test_the_docs_show_both_examples():
    code = _examples()
    assert len(code) == 2 and "optimizerG.step()" in code[0] and "model.optimize_parameters()" in code[1]


@pytest.mark.parametrize("name", ["dcgan", "cyclegan"])
def test_each_example_trains_as_its_eager_loop(monkeypatch, name):
    if torch.cuda.is_available():
        pytest.skip("the stand-in is for machines without a GPU; test_each_example_captured_on_a_gpu runs there")
    with monkeypatch.context() as patch:
        patch.setattr(genimg_fast, "capture_training_step", lambda step, **kwargs: step)
        eager = _run(name, torch.device("cpu"))
    captures = allow_cpu_capture(monkeypatch)
    graphed = _run(name, torch.device("cpu"))
    assert captures == ["thread_local"] and graphed["step"].captured
    _assert_same_training(eager, graphed, rtol=0, atol=0)


@pytest.mark.cuda
@pytest.mark.parametrize("name", ["dcgan", "cyclegan"])
def test_each_example_captured_on_a_gpu(monkeypatch, name):
    with monkeypatch.context() as patch:
        patch.setattr(genimg_fast, "capture_training_step", lambda step, **kwargs: step)
        eager = _run(name, torch.device("cuda"))
    graphed = _run(name, torch.device("cuda"))
    assert graphed["step"].captured, graphed["step"].reason
    _assert_same_training(eager, graphed, rtol=1e-4, atol=1e-5)
