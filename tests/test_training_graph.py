"""capture_training_step on the CPU: its choice and refusals, and, with a stand-in for the CUDA
capture (which runs the recorded step on every replay), the bookkeeping around the graph: the
first call eager, warm-up steps that leave no trace, static inputs refilled per call, other
shapes eager, a failed capture that goes on eagerly, a replaced learning rate refused. The
capture itself is tested on a GPU (test_train_cuda.py, test_training_graph_cuda.py)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import genimg_fast
from genimg_fast import training_graph
from capture_stand_in import allow_cpu_capture


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))


def _training(net: nn.Module, counter: torch.Tensor):
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.5, 0.999))

    def step(x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(net(x), y)
        loss.backward()
        optimizer.step()
        counter.add_(1)  # state of the step's own, restored after the warm-up through extra_state
        return {"loss": loss.detach(), "pred_sum": net[3].bias.detach().sum()}

    return optimizer, step


def _batches(sizes=(6, 6, 6, 6, 5, 6, 6)):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g)) for n in sizes]


@pytest.fixture
def cpu_capture(monkeypatch):
    return allow_cpu_capture(monkeypatch)


def _run(wrap):
    net, counter = _net(), torch.zeros((), dtype=torch.long)
    optimizer, step = _training(net, counter)
    if wrap:
        step = genimg_fast.capture_training_step(step, modules=[net], optimizers=[optimizer], extra_state=[counter])
    outputs = [step(x, y) for x, y in _batches()]
    return outputs, net, optimizer, counter, step


def test_the_captured_step_trains_exactly_as_the_eager_step(cpu_capture):
    eager_out, eager_net, eager_opt, eager_counter, _ = _run(wrap=False)
    graph_out, graph_net, graph_opt, graph_counter, step = _run(wrap=True)
    assert step.captured and cpu_capture == ["thread_local"] and step.describe() == "on"
    for a, b in zip(eager_out, graph_out):
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
    for a, b in zip(eager_net.state_dict().values(), graph_net.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # running stats and batch counter too
    for p, q in zip(eager_net.parameters(), graph_net.parameters()):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            torch.testing.assert_close(eager_opt.state[p][key], graph_opt.state[q][key], rtol=0, atol=0)
    assert int(graph_counter) == int(eager_counter) == 7  # the warm-up and the recording undone


def test_outputs_are_copies_that_later_replays_do_not_overwrite(cpu_capture):
    outputs, *_ = _run(wrap=True)
    losses = [o["loss"].item() for o in outputs]
    assert len(set(losses)) == len(losses)


def test_a_failed_capture_goes_on_eagerly_with_the_reason(monkeypatch, cpu_capture):
    def failing(step, warmup, *, after_warmup, capture_error_mode):
        for _ in range(warmup):
            step()
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")

    monkeypatch.setattr(training_graph, "captured", failing)
    eager_out, eager_net, _, eager_counter, _ = _run(wrap=False)
    with pytest.warns(RuntimeWarning, match="the capture failed: RuntimeError: operation not permitted"):
        graph_out, graph_net, _, graph_counter, step = _run(wrap=True)
    assert not step.captured and step.describe().startswith("off (the capture failed")
    for a, b in zip(eager_out, graph_out):
        torch.testing.assert_close(a["loss"], b["loss"], rtol=0, atol=0)
    assert int(graph_counter) == int(eager_counter)


def test_mode_on_raises_where_the_capture_fails(monkeypatch, cpu_capture):
    def failing(step, warmup, *, after_warmup, capture_error_mode):
        raise RuntimeError("capture failed")

    monkeypatch.setattr(training_graph, "captured", failing)
    net, counter = _net(), torch.zeros((), dtype=torch.long)
    optimizer, step = _training(net, counter)
    step = genimg_fast.capture_training_step(step, modules=[net], optimizers=[optimizer], mode="on")
    (x, y), *_ = _batches()
    step(x, y)
    with pytest.raises(RuntimeError, match="capture failed"):
        step(x, y)


def test_a_replaced_learning_rate_is_refused(cpu_capture):
    net, counter = _net(), torch.zeros((), dtype=torch.long)
    optimizer, step = _training(net, counter)
    step = genimg_fast.capture_training_step(step, modules=[net], optimizers=[optimizer])
    batches = _batches()
    for x, y in batches[:3]:
        step(x, y)
    optimizer.param_groups[0]["lr"] = 0.5
    with pytest.raises(RuntimeError, match="learning rate of optimizer 0 was replaced"):
        step(*batches[3])


def test_off_the_gpu_the_step_runs_eagerly_and_on_is_refused():
    net, counter = _net(), torch.zeros((), dtype=torch.long)
    optimizer, step = _training(net, counter)
    wrapped = genimg_fast.capture_training_step(step, modules=[net], optimizers=[optimizer])
    assert wrapped.describe() == "off (the modules are on cpu, not a CUDA GPU)"
    for x, y in _batches():
        wrapped(x, y)
    assert not wrapped.captured and wrapped.eager_calls == 7 and int(counter) == 7
    with pytest.raises(ValueError, match="cannot capture this step: the modules are on cpu"):
        genimg_fast.capture_training_step(step, modules=[net], optimizers=[optimizer], mode="on")
    assert "off (mode 'off')" == genimg_fast.capture_training_step(step, modules=[net], optimizers=[optimizer],
                                                                    mode="off").describe()


def test_what_keeps_a_step_from_being_captured_is_named(monkeypatch):
    net = _net()
    adam, sgd = torch.optim.Adam(net.parameters()), torch.optim.SGD(net.parameters(), lr=0.1)
    assert training_graph.step_obstacle([net], [adam]) is None
    assert training_graph.step_obstacle([net], [adam, sgd]) == "optimizer 1 (SGD) has no capturable form"
    assert "torch.compile'd" in training_graph.step_obstacle([torch.compile(net)], [adam])
    monkeypatch.setattr(training_graph, "_processes", lambda: 2)
    assert training_graph.step_obstacle([net], [adam]).startswith("2 processes")
    assert training_graph.obstacle([nn.Linear(2, 2, device="meta")], []) == "the modules are on meta, not a CUDA GPU"
    assert training_graph.obstacle([nn.ReLU()], []) == "the modules have no parameters"


def test_bad_arguments_are_named(cpu_capture):
    net, counter = _net(), torch.zeros((), dtype=torch.long)
    optimizer, step = _training(net, counter)
    with pytest.raises(ValueError, match="mode must be 'auto', 'on' or 'off'"):
        genimg_fast.capture_training_step(step, modules=[net], optimizers=[optimizer], mode="yes")
    wrapped = genimg_fast.capture_training_step(step, modules=[net], optimizers=[optimizer])
    with pytest.raises(TypeError, match="argument 1 must be a tensor"):
        wrapped(torch.randn(6, 4), 3.0)


def test_an_optimizer_made_capturable_keeps_its_rate_on_the_device():
    net = _net()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for p in net.parameters():
        optimizer.state[p]["step"] = torch.tensor(5.0)
    (rate,) = training_graph._make_capturable(optimizer, torch.device("cpu"))
    group = optimizer.param_groups[0]
    assert group["capturable"] is True and group["lr"] is rate and float(rate) == pytest.approx(3e-3)
    assert all(float(optimizer.state[p]["step"]) == 5.0 for p in net.parameters())
