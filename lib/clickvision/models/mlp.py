"""A plain multilayer perceptron: the tour's model and a building block for heads."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .dropout import Dropout


class MLP(nn.Sequential):
    """``in_dim -> hidden[0] -> ... -> out_dim`` with ReLU (and optional dropout) between."""

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, dropout: float = 0.0,
                 batch_norm: bool = False) -> None:
        if in_dim <= 0 or out_dim <= 0 or any(h <= 0 for h in hidden):
            raise ValueError(f"MLP sizes must be positive: in={in_dim}, hidden={list(hidden)}, out={out_dim}")
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers.append(nn.Linear(d, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU())
            if dropout:
                layers.append(Dropout(dropout))
            d = h
        layers.append(nn.Linear(d, out_dim))
        super().__init__(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return super().forward(x.flatten(1))
