"""Noisy-source cleaning of paper A (section IV-A1, Table II), and how good it is.

A classifier trained on the noisy source gives each image the probability of its own label
(:func:`own_label_probability`; :func:`out_of_fold_own_label_probability` does it with
out-of-fold logistic regression so an image is never scored by a model that saw it). Within
each class, images are ranked by click count: the top half ("First", highest clicks) and
the bottom half ("Second") get their own probability threshold, chosen by the class size
``n``. Table II (an image is dropped when its probability is below the threshold):

    class size n       n < 8   8 <= n < 100   100 <= n < 300   n >= 300
    First / Second     keep    0.2 / 0.4      0.3 / 0.5        0.4 / 0.6

:func:`clean_by_clicks` applies it, with the band edges and thresholds as parameters and
the edges *rescaled to our class sizes*: by default multiplied by our mean class size over
the paper's (Clickture-Dog before cleaning: 95,041 images in 283 classes, mean 335.8), so
a class as large, relative to its data set, as a paper class of 100 images falls in the
same band. ``edge_scale=1`` applies the printed edges as they are.

The paper could not measure the cleaning; our clicks are SIMULATED with planted label noise,
so :func:`cleaning_scores` gives its precision and recall (the removed images are the
predicted noise).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["PAPER_BAND_EDGES", "PAPER_THRESHOLDS", "PAPER_MEAN_CLASS_SIZE", "CleaningResult", "clean_by_clicks",
           "cleaning_scores", "own_label_probability", "out_of_fold_own_label_probability"]

#: Table II: the upper edges of the first three class-size bands (the last is open).
PAPER_BAND_EDGES: tuple[float, ...] = (8, 100, 300)
#: Table II: (First, Second) thresholds per band; (0, 0) keeps every image ("All").
PAPER_THRESHOLDS: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.2, 0.4), (0.3, 0.5), (0.4, 0.6))
#: Clickture-Dog before cleaning (section IV-A1): 95,041 images in 283 classes.
PAPER_MEAN_CLASS_SIZE = 95041 / 283


@dataclass
class CleaningResult:
    """What :func:`clean_by_clicks` decided, row-aligned with its inputs, plus counts.

    ``keep``: the kept mask; ``half``: "first" (top click half) or "second"; ``band``: the
    class-size band index; ``threshold``: the probability an image needed; ``edges``: the
    band edges used (after rescaling); ``stages``: one row per band and a ``total`` row with
    classes, images in, first/second halves in and kept, and images kept.
    """

    keep: np.ndarray
    half: np.ndarray
    band: np.ndarray
    threshold: np.ndarray
    edges: tuple[float, ...]
    stages: pd.DataFrame


def _vector(x, name: str, n: int | None = None, dtype=float) -> np.ndarray:
    arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} entries, expected {n} (one per image)")
    if dtype is float:
        arr = arr.astype(float)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _band_labels(edges: Sequence[float]) -> list[str]:
    fmt = lambda e: f"{e:g}"  # noqa: E731
    out = [f"n < {fmt(edges[0])}"]
    out += [f"{fmt(a)} <= n < {fmt(b)}" for a, b in zip(edges[:-1], edges[1:])]
    return out + [f"n >= {fmt(edges[-1])}"]


def clean_by_clicks(own_prob, clicks, labels, band_edges: Sequence[float] = PAPER_BAND_EDGES,
                    thresholds: Sequence[tuple[float, float]] = PAPER_THRESHOLDS,
                    edge_scale: float | str = "mean", paper_mean_class_size: float = PAPER_MEAN_CLASS_SIZE
                    ) -> CleaningResult:
    """Table II cleaning: keep an image when its own-label probability reaches its threshold.

    ``own_prob``: each image's probability of its own label; ``clicks``: its click count;
    ``labels``: its class. Per class of size ``n`` the band is found from the edges (scaled
    by ``edge_scale``: ``"mean"`` = our mean class size / ``paper_mean_class_size``, or a
    number); the ``ceil(n / 2)`` images with most clicks form the "first" half (ties by row
    order: a stable sort), the rest the "second", each with its band's threshold.
    """
    labels = _vector(labels, "labels", dtype=object)
    if len(labels) and pd.isna(pd.Series(labels)).any():
        raise ValueError("labels has missing values")
    labels = np.asarray([str(x) for x in labels], dtype=object)
    n = len(labels)
    if n == 0:
        raise ValueError("clean_by_clicks: no images given")
    own_prob = _vector(own_prob, "own_prob", n)
    clicks = _vector(clicks, "clicks", n)
    if own_prob.min() < 0 or own_prob.max() > 1:
        raise ValueError("own_prob must be probabilities in [0, 1]")
    if clicks.min() < 0:
        raise ValueError("clicks must be non-negative click counts")
    edges = [float(e) for e in band_edges]
    if not edges or any(b <= a for a, b in zip(edges[:-1], edges[1:])) or edges[0] <= 0:
        raise ValueError(f"band_edges must be positive and strictly increasing, got {list(band_edges)}")
    if len(thresholds) != len(edges) + 1:
        raise ValueError(f"thresholds needs one (first, second) pair per band: {len(edges) + 1} bands for "
                         f"{len(edges)} edges, got {len(thresholds)} pairs")
    thr = np.asarray(thresholds, dtype=float)
    if thr.shape != (len(edges) + 1, 2) or not np.all((thr >= 0) & (thr <= 1)):
        raise ValueError(f"thresholds must be (first, second) pairs of numbers in [0, 1], got {thresholds!r}")
    sizes = pd.Series(labels).value_counts()
    if edge_scale == "mean":
        if not paper_mean_class_size > 0:
            raise ValueError(f"paper_mean_class_size must be > 0, got {paper_mean_class_size!r}")
        scale = float(sizes.mean()) / float(paper_mean_class_size)
    elif isinstance(edge_scale, (int, float)) and not isinstance(edge_scale, bool) and edge_scale > 0 \
            and math.isfinite(edge_scale):
        scale = float(edge_scale)
    else:
        raise ValueError(f"edge_scale must be 'mean' or a positive number, got {edge_scale!r}")
    scaled = tuple(e * scale for e in edges)

    keep = np.zeros(n, dtype=bool)
    half = np.empty(n, dtype=object)
    band = np.zeros(n, dtype=np.int64)
    threshold = np.zeros(n)
    for label in sorted(sizes.index):
        rows = np.flatnonzero(labels == label)
        b = int(np.searchsorted(scaled, len(rows), side="right"))  # n < edge[0] -> band 0, ...
        order = rows[np.argsort(-clicks[rows], kind="stable")]
        n_first = math.ceil(len(rows) / 2)
        half[order[:n_first]] = "first"
        half[order[n_first:]] = "second"
        band[rows] = b
        threshold[order[:n_first]] = thr[b, 0]
        threshold[order[n_first:]] = thr[b, 1]
    keep[:] = own_prob >= threshold
    return CleaningResult(keep, half, band, threshold, scaled, _stages(labels, keep, half, band, _band_labels(scaled)))


def _stages(labels, keep, half, band, names) -> pd.DataFrame:
    rows = []
    for b, name in enumerate(names):
        m = band == b
        first, second = m & (half == "first"), m & (half == "second")
        rows.append({"band": name, "classes": int(len(set(labels[m]))), "images": int(m.sum()),
                     "first": int(first.sum()), "first_kept": int((first & keep).sum()),
                     "second": int(second.sum()), "second_kept": int((second & keep).sum()),
                     "kept": int((m & keep).sum())})
    df = pd.DataFrame(rows)
    total = df.drop(columns="band").sum().to_dict()
    return pd.concat([df, pd.DataFrame([{"band": "total", **total}])], ignore_index=True)


def cleaning_scores(keep, noisy) -> dict[str, float]:
    """Precision and recall of a cleaning against the planted noise (removed = predicted noise).

    ``precision`` = share of removed images that are noisy; ``recall`` = share of noisy
    images removed; ``f1``; ``noise_before`` / ``noise_after`` = noise rate of the input and of
    the kept images; counts. A rate over an empty set is NaN.
    """
    keep = np.asarray(keep)
    noisy = np.asarray(noisy)
    for name, a in (("keep", keep), ("noisy", noisy)):
        if a.ndim != 1 or not len(a):
            raise ValueError(f"{name} must be a non-empty 1-D mask, got shape {a.shape}")
        if a.dtype != bool and not np.all((a == 0) | (a == 1)):
            raise ValueError(f"{name} must be a boolean (0/1) mask")
    if len(keep) != len(noisy):
        raise ValueError(f"keep has {len(keep)} entries but noisy has {len(noisy)}")
    removed, noisy = ~keep.astype(bool), noisy.astype(bool)
    tp = int((removed & noisy).sum())
    rate = lambda a, b: float(a) / b if b else float("nan")  # noqa: E731
    precision, recall = rate(tp, removed.sum()), rate(tp, noisy.sum())
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else float("nan")
    return {"precision": precision, "recall": recall, "f1": f1, "n": int(len(keep)), "removed": int(removed.sum()),
            "noisy": int(noisy.sum()), "noisy_removed": tp, "noise_before": rate(noisy.sum(), len(keep)),
            "noise_after": rate((noisy & ~removed).sum(), (~removed).sum())}


def own_label_probability(probs, y) -> np.ndarray:
    """``probs[i, y[i]]``: each image's predicted probability of its own label."""
    probs = np.asarray(probs.detach().cpu().numpy() if hasattr(probs, "detach") else probs, dtype=float)
    y = np.asarray(y)
    if probs.ndim != 2 or y.ndim != 1 or len(y) != len(probs):
        raise ValueError(f"probs must be (n, C) and y (n,), got {probs.shape} and {y.shape}")
    if not np.all(np.isfinite(probs)):
        raise ValueError("probs contains NaN or infinite values")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= probs.shape[1]:
        raise ValueError(f"y must be integer class indices in [0, {probs.shape[1]})")
    return probs[np.arange(len(y)), y]


def out_of_fold_own_label_probability(x, y, n_splits: int = 5, c: float = 1.0, seed: int = 0,
                                      max_iter: int = 1000) -> np.ndarray:
    """Own-label probability from ``n_splits``-fold out-of-fold logistic regression.

    Each image is scored by a model trained on the other folds (stratified). A class with
    fewer images than ``n_splits`` is an error naming it.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    y = np.asarray(y)
    counts = pd.Series(y).value_counts()
    small = counts[counts < n_splits]
    if len(small):
        raise ValueError(f"out_of_fold_own_label_probability: classes {sorted(small.index.tolist())[:5]} have fewer "
                         f"than n_splits = {n_splits} images")
    classes, y_idx = np.unique(y, return_inverse=True)
    model = LogisticRegression(C=c, max_iter=max_iter)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    probs = cross_val_predict(model, np.asarray(x, dtype=float), y_idx, cv=folds, method="predict_proba")
    return own_label_probability(probs, y_idx)
