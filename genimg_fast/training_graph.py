"""A whole training step (forwards, backwards, optimizer steps) captured once into a CUDA graph
and replayed: the trainers' --cuda-graphs, for a user's own training loop.

At these models' sizes most of an eager step is the host launching hundreds of small kernels;
a replay is one launch. The replayed step computes exactly what the eager step computes.

    step = genimg_fast.capture_training_step(train_step, modules=[netG, netD], optimizers=[optD, optG])
    for real, _ in loader:
        losses = step(real.to(device), torch.randn(len(real), nz, 1, 1, device=device))

How it runs: the first call runs eagerly (it creates the optimizers' state, which the graph must
find in place). The next call captures: a few warm-up steps on a side stream (as capture
requires), then the modules' parameters and buffers, the optimizers' state, the tensors of
`extra_state` and the CUDA random generator are put back as they were, so the warm-up leaves no
trace; then the capture, and a replay for this call. Each later call copies its tensor arguments
into the captured step's static inputs, replays, and returns copies of the step's outputs. A
call whose inputs have other shapes (an epoch's last, smaller batch) runs eagerly.

What the step may do: compute on the modules' CUDA device from its tensor arguments, keep its
state in the listed modules, optimizers and extra_state, draw random numbers from torch's CUDA
generator, and not read values back to the host (no .item(), no GradScaler: its skipped-step
check reads the host). The optimizers are switched to their capturable form and their
learning rates become device tensors, which torch's schedulers fill in place; assigning a new
number to a group's "lr" instead is refused (the graph would keep the old rate).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map

from genimg_fast.graph_capture import captured

MODES = ("auto", "on", "off")
WARMUP_STEPS = 3


def _compiled(module: nn.Module) -> bool:
    return isinstance(module, torch._dynamo.eval_frame.OptimizedModule) or any(
        getattr(m, "_compiled_call_impl", None) is not None for m in module.modules())


def _processes() -> int:
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def obstacle(modules: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer]) -> str | None:
    """Why a step over these modules and optimizers cannot be captured, or None."""
    devices = {p.device for m in modules for p in m.parameters()}
    if not devices:
        return "the modules have no parameters"
    if len(devices) > 1:
        return f"the modules' parameters are on several devices ({', '.join(sorted(map(str, devices)))})"
    (device,) = devices
    if device.type != "cuda":
        return f"the modules are on {device.type}, not a CUDA GPU"
    return step_obstacle(modules, optimizers)


def step_obstacle(modules: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer]) -> str | None:
    """What keeps a step on one CUDA device from being captured, or None."""
    processes = _processes()
    if processes > 1:
        return f"{processes} processes: the data-parallel gradient exchange is not captured"
    if any(_compiled(m) for m in modules):
        return "a module is torch.compile'd: its code is not captured into the step's graph"
    for i, optimizer in enumerate(optimizers):
        if "capturable" not in optimizer.defaults:
            return f"optimizer {i} ({type(optimizer).__name__}) has no capturable form"
    return None


def _make_capturable(optimizer: torch.optim.Optimizer, device: torch.device) -> list[torch.Tensor]:
    """Capturable flag, device step counters and device learning rates; returns the rates."""
    rates = []
    for group in optimizer.param_groups:
        group["capturable"] = True
        if not torch.is_tensor(group["lr"]) or group["lr"].device != device:
            group["lr"] = torch.tensor(float(group["lr"]), dtype=torch.float32, device=device)
        rates.append(group["lr"])
        for p in group["params"]:
            step = optimizer.state.get(p, {}).get("step")
            if torch.is_tensor(step) and step.device != device:
                optimizer.state[p]["step"] = step.to(device)
    return rates


def _state_tensors(extra_state: Iterable) -> list[torch.Tensor]:
    """extra_state's tensors: tensors as they are, objects through their state_tensors()."""
    found = []
    for item in extra_state:
        found += [item] if torch.is_tensor(item) else list(item.state_tensors())
    return found


class _Snapshot:
    """Copies of everything a training step changes, put back in place (the graph keeps reading
    the very tensors training uses), and the random generator of the step's device."""

    def __init__(self, tensors: list[torch.Tensor], device: torch.device) -> None:
        self.tensors, self.device = tensors, device
        self.values = [t.detach().clone() for t in tensors]
        self.rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()

    def restore(self) -> None:
        with torch.no_grad():
            for tensor, value in zip(self.tensors, self.values):
                tensor.copy_(value)
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(self.rng, self.device)
        else:
            torch.set_rng_state(self.rng)


def _mutable_tensors(modules, optimizers, extra_state) -> list[torch.Tensor]:
    tensors = [t for m in modules for t in m.state_dict(keep_vars=True).values() if torch.is_tensor(t)]
    for optimizer in optimizers:
        for state in optimizer.state.values():
            tensors += [v for v in state.values() if torch.is_tensor(v)]
    return tensors + _state_tensors(extra_state)


class CapturedTrainingStep:
    """A training step replayed from a CUDA graph; see the module's docstring and
    capture_training_step. `choice` says whether it captures ('on' or 'off (reason)')."""

    def __init__(self, step: Callable[..., object], *, modules: Sequence[nn.Module],
                 optimizers: Sequence[torch.optim.Optimizer], extra_state: Sequence = (), mode: str = "auto",
                 warmup: int = WARMUP_STEPS) -> None:
        if mode not in MODES:
            raise ValueError(f"capture_training_step: mode must be 'auto', 'on' or 'off', got {mode!r}")
        if warmup < 1:
            raise ValueError(f"capture_training_step: warmup must be at least 1, got {warmup}")
        self.step, self.modules, self.optimizers = step, list(modules), list(optimizers)
        self.extra_state, self.mode, self.warmup = list(extra_state), mode, warmup
        why = "mode 'off'" if mode == "off" else obstacle(self.modules, self.optimizers)
        if why is not None and mode == "on":
            raise ValueError(f"capture_training_step: cannot capture this step: {why}")
        self.reason = why  # None while the step is (to be) captured
        self.device = next((p.device for m in self.modules for p in m.parameters()), torch.device("cpu"))
        self.rates: list[list[torch.Tensor]] = []
        if why is None:
            self.rates = [_make_capturable(opt, self.device) for opt in self.optimizers]
        self.eager_calls = 0
        self._replay: Callable[[int], None] | None = None
        self._static_inputs: list[torch.Tensor] = []
        self._static_outputs: object = None

    @property
    def captured(self) -> bool:
        return self._replay is not None

    def describe(self) -> str:
        return "on" if self.reason is None else f"off ({self.reason})"

    def __call__(self, *inputs: torch.Tensor):
        for i, value in enumerate(inputs):
            if not torch.is_tensor(value):
                raise TypeError(f"capture_training_step: argument {i} must be a tensor (captured steps take "
                                f"tensors only; bind other values in the step), got {type(value).__name__}")
        if self.reason is not None or (self._replay is None and self.eager_calls == 0):
            self.eager_calls += 1  # the first call creates the optimizers' state the graph will use
            return self.step(*inputs)
        if self._replay is None:
            self._capture(inputs)
            if self._replay is None:  # the capture failed: eager from now on
                return self.step(*inputs)
        elif [(t.shape, t.dtype) for t in inputs] != [(t.shape, t.dtype) for t in self._static_inputs]:
            return self.step(*inputs)
        self._check_rates()
        for static, value in zip(self._static_inputs, inputs):
            static.copy_(value)
        self._replay(0)
        # every replay rewrites the static outputs: the caller gets copies
        return tree_map(lambda t: t.clone() if torch.is_tensor(t) else t, self._static_outputs)

    def _check_rates(self) -> None:
        for i, (optimizer, rates) in enumerate(zip(self.optimizers, self.rates)):
            for group, rate in zip(optimizer.param_groups, rates):
                if group["lr"] is not rate:
                    raise RuntimeError(f"capture_training_step: the learning rate of optimizer {i} was replaced by "
                                       f"{group['lr']!r}; the captured step reads the tensor it had: fill it in "
                                       "place (group['lr'].fill_(rate)) or use a torch.optim.lr_scheduler")

    def _capture(self, inputs: Sequence[torch.Tensor]) -> None:
        self._static_inputs = [t.clone() for t in inputs]
        snapshot = _Snapshot(_mutable_tensors(self.modules, self.optimizers, self.extra_state), self.device)
        try:
            # thread_local: a data loader's pin-memory thread may allocate pinned memory meanwhile
            self._replay, self._static_outputs = captured(
                lambda: self.step(*self._static_inputs), self.warmup, after_warmup=snapshot.restore,
                capture_error_mode="thread_local")
        except Exception as error:
            if self.mode == "on":
                raise
            snapshot.restore()  # the warm-up's steps undone: training goes on eagerly from here
            self._replay, self._static_outputs = None, None
            self.reason = f"the capture failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            warnings.warn(f"capture_training_step: {self.reason}; the step runs eagerly", RuntimeWarning,
                          stacklevel=3)
            return
        outputs, _ = tree_flatten(self._static_outputs)
        if not all(torch.is_tensor(t) or t is None for t in outputs):
            raise TypeError("capture_training_step: the step must return tensors (a tensor, or lists, tuples or "
                            "dicts of them): a Python number would be frozen at its captured value")


def capture_training_step(step: Callable[..., object], *, modules: Sequence[nn.Module],
                          optimizers: Sequence[torch.optim.Optimizer], extra_state: Sequence = (),
                          mode: str = "auto", warmup: int = WARMUP_STEPS) -> CapturedTrainingStep:
    """Wrap a whole training step so that it is captured once into a CUDA graph and replayed.

    Args:
        step: the training step, called as step(*tensors); it runs the forwards, backwards and
            optimizer steps and returns tensors (e.g. a dict of detached losses).
        modules: every module whose parameters or buffers the step changes.
        optimizers: every optimizer the step steps (Adam, AdamW and other optimizers with a
            capturable form; made capturable here).
        extra_state: other state the step changes: tensors, or objects with state_tensors()
            (e.g. genimg_fast.train.device_image_pool.DeviceImagePool).
        mode: 'auto' captures where it can and otherwise runs eagerly (the reason in .reason,
            also after a capture that failed, with a warning); 'on' raises instead; 'off' never
            captures.
        warmup: eager steps on a side stream before the capture (undone afterwards).

    Returns:
        A callable with the step's signature, returning copies of the step's outputs.

    Raises:
        ValueError: an unknown mode, warmup < 1, or mode 'on' where the step cannot be captured
            (not on one CUDA device, several processes, a torch.compile'd module, an optimizer
            without a capturable form).

    The returned callable raises TypeError for an argument that is not a tensor or (when it
    captures) a step that returns anything but tensors, and RuntimeError when an optimizer's
    learning rate was replaced by a new value instead of filled in place; with mode 'on' a
    failed capture's error propagates.
    """
    return CapturedTrainingStep(step, modules=modules, optimizers=optimizers, extra_state=extra_state, mode=mode,
                                warmup=warmup)
