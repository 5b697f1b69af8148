"""LoggedTerms: the per-term values an objective reports, computed only when read.

The recipes log their terms every few hundred steps, yet a dict of ready tensors would cost
each step an op per entry (an unbind, a scaling, a sum: on a GPU each is a dispatch, often a
kernel launch, and an autograd node). LoggedTerms keeps the fused op's values tensor and builds
an entry on first access; gradients flow through the entries as through the values.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch

Tensor = torch.Tensor


class LoggedTerms(Mapping[str, Tensor]):
    """A read-only mapping name -> scale * sum(values[i] for i in indices), values a tensor of the
    terms or a sequence of 0-d tensors. An entry without indices is a zero (a term the objective
    left out, still logged, as the recipes do)."""

    __slots__ = ("_values", "_layout", "_cache")

    def __init__(self, values: Tensor | Sequence[Tensor], layout: dict[str, tuple[tuple[int, ...], float]]) -> None:
        self._values = values
        self._layout = layout
        self._cache: dict[str, Tensor] = {}

    def __getitem__(self, name: str) -> Tensor:
        if name not in self._cache:
            indices, scale = self._layout[name]  # KeyError for an unknown name, as a dict
            if not indices:
                value = self._values[0].new_zeros(())
            else:
                value = self._values[indices[0]]
                for i in indices[1:]:
                    value = value + self._values[i]
                if scale != 1.0:
                    value = value * scale
            self._cache[name] = value
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._layout)

    def __len__(self) -> int:
        return len(self._layout)

    def __repr__(self) -> str:
        return f"LoggedTerms({dict(self)!r})"


def terms_named(values: Tensor | Sequence[Tensor], names: list[str], scale: float = 1.0) -> LoggedTerms:
    """One entry per term, in order: names[i] -> scale * values[i]."""
    return LoggedTerms(values, {name: ((i,), scale) for i, name in enumerate(names)})
