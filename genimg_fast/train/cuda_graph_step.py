"""--cuda-graphs: a recipe's whole training iteration (forwards, backwards and the capturable
optimizer steps) captured once into a CUDA graph and replayed every iteration, so the host
launches one graph instead of hundreds of kernels. The iteration's inputs (the batch, the
noise) are drawn outside the graph and copied into static buffers before each replay.

Built on genimg_fast.training_graph (the same capture for users' own loops): the first
iteration runs eagerly, the next full batch captures after warm-up iterations that leave no
trace (networks, optimizers, the image pools and the CUDA generator put back), and a batch of
another size (an epoch's last) runs eagerly, before the capture too."""
from __future__ import annotations

import torch

from genimg_fast.training_graph import CapturedTrainingStep


class CUDAGraphStep:
    def __init__(self, recipe, batch_size: int, mode: str = "on") -> None:
        """batch_size: the full batch this process trains on; only such a batch is captured.
        mode: 'on' raises where the capture fails, 'auto' warns and goes on eagerly."""
        self.recipe, self.batch_size = recipe, batch_size
        self.captured_step = CapturedTrainingStep(
            recipe.graph_step, modules=list(recipe.networks().values()),
            optimizers=list(recipe.optimizers().values()), extra_state=recipe.graph_state(), mode=mode)

    def __call__(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        inputs = self.recipe.graph_inputs(batch)
        if inputs[0].shape[0] != self.batch_size:
            return self.recipe.graph_step(*inputs)
        return self.captured_step(*inputs)
