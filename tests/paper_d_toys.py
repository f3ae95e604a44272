"""Tiny synthetic paper D items shared by the paper D tests (labels decided by the first features)."""
from __future__ import annotations

import numpy as np

from clickvision.experiments.paper_d import core as D


def toy_items(n: int = 200, n_extra: int = 40, seed: int = 0, dim: int = 10, key_prefix: str = "i"):
    """``(items, rng)``: ``n`` labelled items (splits train/train/train/val/test in turn) whose first
    four features decide their four labels, plus ``n_extra`` unlabelled rows (train/test in turn);
    ``rng`` is the generator after drawing them, for a test's further draws."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n + n_extra, dim)).astype(np.float32)
    y = x[:n, :4] + 0.3 * rng.standard_normal((n, 4)) > 0.8
    y[~y.any(1), 0] = True
    split = np.array(["train", "train", "train", "val", "test"])[np.arange(n) % 5]
    extra_split = np.array(["train", "test"])[np.arange(n_extra) % 2]
    items = D.LabelledItems(np.array([f"{key_prefix}{k}" for k in range(n)], dtype=object), split, y, list("abcd"),
                            x[:n], "", np.array([f"u{k}" for k in range(n_extra)]), extra_split, x[n:])
    return items, rng
