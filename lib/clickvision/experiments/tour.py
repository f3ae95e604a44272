"""The workbook tour (notebook 00.01): every layer once, on scikit-learn's bundled digits.

data (a real, small, bundled set) -> split -> model -> :class:`clickvision.train.Trainer`
-> metrics -> tidy DataFrame. The paper notebooks follow the same shape on the embedded data.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, TensorDataset

from .. import metrics, runtime
from ..models.mlp import MLP
from ..train import Trainer, TrainConfig, predict


@dataclass
class DigitsSplit:
    images: dict[str, np.ndarray]  # split -> (n, 8, 8) pixel values 0..16
    labels: dict[str, np.ndarray]


def load_digits_split(seed: int = 0, fractions=(0.6, 0.2, 0.2)) -> DigitsSplit:
    """scikit-learn's digits (1,797 8x8 images, 10 classes), stratified train/val/test."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    idx = np.arange(len(d.target))
    train, rest = train_test_split(idx, train_size=fractions[0], stratify=d.target, random_state=seed)
    val, test = train_test_split(rest, train_size=fractions[1] / (fractions[1] + fractions[2]),
                                 stratify=d.target[rest], random_state=seed)
    parts = {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
    return DigitsSplit({k: d.images[v] for k, v in parts.items()}, {k: d.target[v] for k, v in parts.items()})


@dataclass
class TourRun:
    model: torch.nn.Module
    history: pd.DataFrame
    scores: pd.DataFrame  # split, metric, value
    proba: dict[str, np.ndarray]
    data: DigitsSplit


def train_digits_mlp(hidden: int = 64, lr: float = 0.05, epochs: int = 30, seed: int = 0,
                     batch_size: int = 64, patience: int = 5) -> TourRun:
    """Train an MLP on the digits with SGD, early stopping on validation accuracy."""
    data = load_digits_split(seed)
    runtime.seed_everything(seed)
    tensors = {k: (torch.tensor(data.images[k] / 16.0, dtype=torch.float32),
                   torch.tensor(data.labels[k])) for k in data.images}
    gen = torch.Generator().manual_seed(seed)
    train = DataLoader(TensorDataset(*tensors["train"]), batch_size=batch_size, shuffle=True, generator=gen)
    val = DataLoader(TensorDataset(*tensors["val"]), batch_size=512)
    model = MLP(64, [hidden], 10)

    def loss_fn(m, batch):
        x, y = batch
        return torch.nn.functional.cross_entropy(m(x), y)

    def val_fn(m):
        proba = torch.softmax(predict(m, val), 1).numpy()
        return {"accuracy": metrics.accuracy(data.labels["val"], proba)}

    cfg = TrainConfig(epochs=epochs, optimizer="sgd", lr=lr, momentum=0.9, seed=seed,
                      monitor="accuracy", mode="max", patience=patience, device="cpu")
    history = Trainer(model, loss_fn, cfg).fit(train, val_fn=val_fn)
    rows, proba = [], {}
    for split, (x, y) in tensors.items():
        p = torch.softmax(predict(model, DataLoader(TensorDataset(x), batch_size=512)), 1).numpy()
        proba[split] = p
        onehot = np.eye(10)[y.numpy()]
        rows += [{"split": split, "metric": "accuracy", "value": metrics.accuracy(y.numpy(), p)},
                 {"split": split, "metric": "macro AP", "value": metrics.average_precision_macro(onehot, p)}]
    return TourRun(model, history, pd.DataFrame(rows), proba, data)
