"""A stand-in for the CUDA capture, so that capture_training_step's bookkeeping runs on the CPU:
the 'capture' runs the warm-up, puts the state back, records the step's outputs and undoes the
recording (a real capture executes nothing); each replay runs the step again into those outputs."""
from __future__ import annotations

from torch.utils._pytree import tree_flatten

from genimg_fast import training_graph


def _stand_in_capture(calls: list):
    def fake(step, warmup, *, after_warmup, capture_error_mode):
        calls.append(capture_error_mode)
        for _ in range(warmup):
            step()
        after_warmup()
        outputs = step()
        after_warmup()

        def replay(_i):
            for static, fresh in zip(tree_flatten(outputs)[0], tree_flatten(step())[0]):
                static.copy_(fresh)
        return replay, outputs
    return fake


def allow_cpu_capture(monkeypatch) -> list:
    """Lets CPU modules be 'captured': no obstacle, optimizers left as they are (a capturable
    torch optimizer refuses CPU parameters). Returns the list of captures made."""
    calls: list = []
    monkeypatch.setattr(training_graph, "obstacle", lambda modules, optimizers: None)
    monkeypatch.setattr(training_graph, "_make_capturable",
                        lambda optimizer, device: [g["lr"] for g in optimizer.param_groups])
    monkeypatch.setattr(training_graph, "captured", _stand_in_capture(calls))
    return calls
