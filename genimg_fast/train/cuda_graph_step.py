"""--cuda-graphs: a recipe's whole training iteration (forwards, backwards and the capturable
optimizer steps) captured once into a CUDA graph and replayed every iteration, so the host
launches one graph instead of hundreds of kernels. The iteration's inputs (the batch, the
noise) are drawn outside the graph and copied into static buffers before each replay.

The first iteration runs eagerly (it creates the optimizers' state, which the graph must find
in place). The next full batch captures: warm-up iterations on a side stream (as capture
requires), then every parameter, buffer, optimizer state and the RNG are put back as they were,
so the warm-up leaves no trace in the training, then the capture, then the replay of that
iteration. A batch of another size (an epoch's last) runs eagerly, before the capture too. Not
combinable with fp16's gradient scaler (it reads the gradients on the host) nor with several
processes."""
from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from genimg_fast.graph_capture import captured

WARMUP_ITERATIONS = 3


def _snapshot(recipe) -> dict:
    return {"recipe": copy.deepcopy(recipe.state_dict()), "cuda_rng": torch.cuda.get_rng_state()}


def _restore_in_place(recipe, snapshot: dict) -> None:
    """Values back, addresses kept: the graph will read the very tensors training uses."""
    saved = snapshot["recipe"]
    for name, module in recipe.networks().items():
        for key, tensor in module.state_dict(keep_vars=True).items():
            tensor.data.copy_(saved[name][key])
    for name, optimizer in recipe.optimizers().items():
        for group, saved_group in zip(optimizer.param_groups, saved[name]["param_groups"]):
            for p, index in zip(group["params"], saved_group["params"]):
                for key, value in optimizer.state[p].items():
                    state_value = saved[name]["state"][index][key]
                    if torch.is_tensor(value):
                        value.copy_(state_value)
    torch.cuda.set_rng_state(snapshot["cuda_rng"])


class CUDAGraphStep:
    def __init__(self, recipe, batch_size: int) -> None:
        """batch_size: the full batch this process trains on; only such a batch is captured."""
        self.recipe, self.batch_size = recipe, batch_size
        self.replay: Callable[[int], None] | None = None
        self.static_inputs: list[torch.Tensor] = []
        self.static_outputs: dict[str, torch.Tensor] = {}
        self.eager_steps = 0

    def __call__(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        inputs = self.recipe.graph_inputs(batch)
        full = inputs[0].shape[0] == self.batch_size
        if self.replay is None and (self.eager_steps == 0 or not full):
            self.eager_steps += 1  # the first iteration, and any before a full batch comes
            return self.recipe.graph_step(*inputs)
        if self.replay is None:
            self._capture(inputs)
        elif [t.shape for t in inputs] != [t.shape for t in self.static_inputs]:
            return self.recipe.graph_step(*inputs)
        for static, value in zip(self.static_inputs, inputs):
            static.copy_(value)
        self.replay(0)
        # replays overwrite the static outputs: the caller keeps copies
        return {name: value.clone() for name, value in self.static_outputs.items()}

    def _capture(self, inputs: tuple[torch.Tensor, ...]) -> None:
        self.static_inputs = [t.clone() for t in inputs]
        snapshot = _snapshot(self.recipe)
        # thread_local: a data loader's pin-memory thread may allocate pinned memory meanwhile
        self.replay, self.static_outputs = captured(
            lambda: self.recipe.graph_step(*self.static_inputs), WARMUP_ITERATIONS,
            after_warmup=lambda: _restore_in_place(self.recipe, snapshot), capture_error_mode="thread_local")
