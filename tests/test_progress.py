"""Progress bars: an outer bar over the runs of parallel_map (finished jobs counted), and a
training bar that ends complete, not red at 95 %, when early stopping ends the run."""
from __future__ import annotations

import io

import pytest
import torch
from clickvision import runtime
from clickvision.train import TrainConfig, Trainer
from torch import nn
from tqdm import tqdm


class Recorder:
    """Stands in for runtime.progress: real tqdm bars writing to a buffer, kept for inspection."""

    def __init__(self) -> None:
        self.bars: list[tqdm] = []

    def __call__(self, iterable=None, **kwargs):
        kwargs.pop("disable", None)
        bar = tqdm(iterable, file=io.StringIO(), disable=False, **kwargs)
        self.bars.append(bar)
        return bar


def _square(x: int) -> int:
    return x * x


@pytest.mark.parametrize("n_workers", [1, 2])
def test_parallel_map_counts_finished_runs(monkeypatch, n_workers):
    rec = Recorder()
    monkeypatch.setattr(runtime, "progress", rec)
    out = runtime.parallel_map(_square, [{"x": i} for i in range(5)], n_workers, desc="squares")
    assert out == [0, 1, 4, 9, 16]
    (bar,) = rec.bars
    assert bar.desc == "squares" and bar.n == bar.total == 5


def _pull_to_five(model, batch):
    return ((model(batch) - 5.0) ** 2).mean()


def test_an_early_stopped_training_bar_ends_complete(monkeypatch):
    from clickvision.train import loop

    rec = Recorder()
    monkeypatch.setattr(loop.runtime, "progress", rec)
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    cfg = TrainConfig(max_steps=100, lr=0.05, eval_every=1, monitor="dist", mode="min", patience=2, progress=True)
    h = Trainer(model, _pull_to_five, cfg).fit([torch.ones(1, 1)],
                                                val_fn=lambda m: {"dist": (m.weight.item() - 1.0) ** 2})
    assert h.attrs["stopped_early"]
    (bar,) = rec.bars
    assert bar.n == bar.total == 4 and "stopped at step 4" in bar.desc


def test_a_failed_run_leaves_its_bar_short(monkeypatch):
    from clickvision.train import loop

    rec = Recorder()
    monkeypatch.setattr(loop.runtime, "progress", rec)

    def broken(model, batch):
        if loop_state["steps"] == 2:
            raise RuntimeError("boom")
        loop_state["steps"] += 1
        return _pull_to_five(model, batch)

    loop_state = {"steps": 0}
    with pytest.raises(RuntimeError, match="boom"):
        Trainer(nn.Linear(1, 1), broken, TrainConfig(max_steps=10, lr=0.01, progress=True)).fit([torch.ones(1, 1)])
    (bar,) = rec.bars
    assert bar.n == 2 and bar.total == 10
