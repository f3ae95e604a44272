"""multi_tensor_steps: torch's foreach optimizer path gives, on the CPU, the very numbers of its
default for-loop path (so paper A, C and D train through it without changing a result)."""
from __future__ import annotations

import pytest
import torch
from clickvision.train import TrainConfig, Trainer, multi_tensor_steps
from torch import nn


def _fit(optimizer: str, foreach: bool) -> list[torch.Tensor]:
    torch.manual_seed(0)
    x, y = torch.randn(96, 7), torch.randint(0, 3, (96,))
    net = nn.Sequential(nn.Linear(7, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    cfg = TrainConfig(epochs=4, optimizer=optimizer, lr=0.01, weight_decay=1e-3, seed=0, progress=False)
    trainer = Trainer(net, lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1]), cfg)
    if foreach:
        assert multi_tensor_steps(trainer) is trainer
        assert all(g["foreach"] for g in trainer.optimizer.param_groups)
    batches = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 96, 32)]
    trainer.fit(batches)
    return [p.detach().clone() for p in net.parameters()]


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_multi_tensor_steps_give_the_default_numbers(optimizer):
    a, b = _fit(optimizer, True), _fit(optimizer, False)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not torch.equal(a[0], _fit_untrained()[0])  # it did train


def _fit_untrained() -> list[torch.Tensor]:
    torch.manual_seed(0)
    return [p.detach().clone() for p in nn.Linear(7, 16).parameters()]
