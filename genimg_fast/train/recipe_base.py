"""What every training recipe shares: its resumable state is its networks', optimizers' and
gradient scaler's, under the names networks() and optimizers() give them (the CUDA-graph capture
restores them by those names too), plus what extra_state() adds; and a step is graph_step on
graph_inputs (the inputs drawn outside a captured step)."""
from __future__ import annotations

import torch
from torch import nn

from genimg_fast.train.options import load_optimizer


class RecipeBase:
    # set by each recipe: config (its RunOptions), precision (train/precision.py) and cuda_graphs
    # (train/cuda_graphs_choice.py: whether the loop captures graph_step)

    def networks(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def extra_state(self) -> dict:
        """State of the recipe's own beyond networks, optimizers and scaler (noise, schedulers)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def state_dict(self) -> dict:
        return {**{name: net.state_dict() for name, net in self.networks().items()},
                **{name: opt.state_dict() for name, opt in self.optimizers().items()},
                "scaler": self.precision.state_dict(), **self.extra_state()}

    def load_state_dict(self, state: dict) -> None:
        for name, net in self.networks().items():
            net.load_state_dict(state[name])
        for name, optimizer in self.optimizers().items():
            load_optimizer(optimizer, state[name], self.cuda_graphs.enabled)
        self.precision.load_state_dict(state.get("scaler", {}))
        self.load_extra_state(state)

    def graph_state(self) -> list:
        """What graph_step changes beyond the networks and optimizers (for the capture's
        warm-up to put back): tensors, or objects with state_tensors()."""
        return []

    def step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        return self.graph_step(*self.graph_inputs(batch))

    def graph_inputs(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def graph_step(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError
