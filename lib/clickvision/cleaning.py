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

Three rules (``rule``):

* ``"paper"``: Table II's thresholds as printed. They were set for a fine-tuned VGG's
  softmax over 283 dog breeds; applied unchanged to another scorer they keep whatever share
  that scorer's probabilities happen to clear (on our 40-class scorers, about 10 %).
* ``"calibrated"`` (Table II's structure at a keep rate): every threshold is multiplied by
  one common factor ``scale``, solved so the share of images kept equals ``keep_rate``
  (default the paper's :data:`PAPER_KEEP_RATE`, 32,691 of 95,041). An image with threshold
  ``t > 0`` is kept when ``p / t >= scale``, so the kept count falls monotonically with the
  scale and the solution is a quantile of the ratios ``p / t`` (exact: at least
  ``round(keep_rate * n)`` images are kept, more only on tied ratios). The band and click
  half still decide each image's share of the threshold; images in the "All" band (``t =
  0``) are always kept.
* ``"rank"``: within each class keep the ``max(1, round(keep_rate * n_c))`` images of highest
  own-label probability (ties by row order); no class can be emptied.

The paper could not measure the cleaning; our clicks are SIMULATED with planted noise, so
:func:`cleaning_scores` gives its precision and recall (the removed images are the predicted
noise), and :func:`removal_scores` / :func:`removal_item_values` judge it against random
removal at the same keep rate: precision (random: the noise rate), recall (random: the
removed share) and the scorer's AUROC (random: 0.5), with per-image values whose mean is each
statistic, for the claims engine's bootstrap.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["PAPER_BAND_EDGES", "PAPER_THRESHOLDS", "PAPER_MEAN_CLASS_SIZE", "PAPER_KEEP_RATE", "RULES",
           "CleaningResult", "clean_by_clicks", "cleaning_scores", "removal_scores", "removal_item_values",
           "own_label_probability", "out_of_fold_own_label_probability"]

#: Table II: the upper edges of the first three class-size bands (the last is open).
PAPER_BAND_EDGES: tuple[float, ...] = (8, 100, 300)
#: Table II: (First, Second) thresholds per band; (0, 0) keeps every image ("All").
PAPER_THRESHOLDS: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.2, 0.4), (0.3, 0.5), (0.4, 0.6))
#: Clickture-Dog before cleaning (section IV-A1): 95,041 images in 283 classes.
PAPER_MEAN_CLASS_SIZE = 95041 / 283
#: Section IV-A1: the share of Clickture-Dog the paper kept (32,691 of 95,041 images).
PAPER_KEEP_RATE = 32691 / 95041
#: How thresholds are set: as printed, scaled to a keep rate, or the top share per class.
RULES = ("paper", "calibrated", "rank")


@dataclass
class CleaningResult:
    """What :func:`clean_by_clicks` decided, row-aligned with its inputs, plus counts.

    ``keep``: the kept mask; ``half``: "first" (top click half) or "second"; ``band``: the
    class-size band index; ``threshold``: the probability an image needed; ``edges``: the
    band edges used (after rescaling); ``stages``: one row per band and a ``total`` row with
    classes, images in, first/second halves in and kept, and images kept. ``rule``: how the
    thresholds were set (:data:`RULES`); ``scale``: the factor Table II's thresholds were
    multiplied by (1 for ``"paper"``, solved for ``"calibrated"``, NaN for ``"rank"``, whose
    ``threshold`` is each class's lowest kept probability); ``keep_rate``: the share kept.
    """

    keep: np.ndarray
    half: np.ndarray
    band: np.ndarray
    threshold: np.ndarray
    edges: tuple[float, ...]
    stages: pd.DataFrame
    rule: str = "paper"
    scale: float = 1.0
    keep_rate: float = float("nan")


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
                    edge_scale: float | str = "mean", paper_mean_class_size: float = PAPER_MEAN_CLASS_SIZE,
                    rule: str = "paper", keep_rate: float = PAPER_KEEP_RATE) -> CleaningResult:
    """Table II cleaning: keep an image when its own-label probability reaches its threshold.

    ``own_prob``: each image's probability of its own label; ``clicks``: its click count;
    ``labels``: its class. Per class of size ``n`` the band is found from the edges (scaled
    by ``edge_scale``: ``"mean"`` = our mean class size / ``paper_mean_class_size``, or a
    number); the ``ceil(n / 2)`` images with most clicks form the "first" half (ties by row
    order: a stable sort), the rest the "second", each with its band's threshold.

    ``rule`` (module docstring): ``"paper"`` applies the thresholds as given; ``"calibrated"``
    multiplies them all by the one factor that keeps ``keep_rate`` of the images; ``"rank"``
    keeps the top ``keep_rate`` share of each class by probability (bands and halves are
    still reported). ``keep_rate`` (in (0, 1]) is ignored by ``"paper"``.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if isinstance(keep_rate, bool) or not isinstance(keep_rate, (int, float, np.floating)) \
            or not 0 < keep_rate <= 1:
        raise ValueError(f"keep_rate must be a number in (0, 1], got {keep_rate!r}")
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
    factor = 1.0
    if rule == "paper":
        keep[:] = own_prob >= threshold
    elif rule == "calibrated":
        ratio = np.full(n, np.inf)
        np.divide(own_prob, threshold, out=ratio, where=threshold > 0)
        factor = _calibrated_scale(ratio, keep_rate)
        keep[:] = ratio >= factor  # the same ratios the factor was solved on: no rounding mismatch
        scaled_thr = np.zeros(n)
        scaled_thr[threshold > 0] = factor * threshold[threshold > 0]  # factor may be inf: only "All" kept
        threshold = scaled_thr
    else:  # rank
        factor = float("nan")
        for label in sorted(sizes.index):
            rows = np.flatnonzero(labels == label)
            k = max(1, math.floor(keep_rate * len(rows) + 0.5))
            top = rows[np.argsort(-own_prob[rows], kind="stable")[:k]]
            keep[top] = True
            threshold[rows] = own_prob[top].min()
    stages = _stages(labels, keep, half, band, _band_labels(scaled))
    return CleaningResult(keep, half, band, threshold, scaled, stages, rule, factor, float(keep.mean()))


def _calibrated_scale(ratio: np.ndarray, keep_rate: float) -> float:
    """The factor ``s`` on the thresholds that keeps ``round(keep_rate * n)`` images (at least 1).

    ``ratio`` is ``p / t`` per image (infinite where ``t == 0``: always kept); kept means
    ``ratio >= s``. The kept count falls with ``s``, so ``s`` is the k-th largest ratio.
    Ties at that ratio keep them all (the count can then exceed the target).
    """
    n = len(ratio)
    target = max(1, math.floor(keep_rate * n + 0.5))
    always = int(np.isinf(ratio).sum())
    if always > target:
        raise ValueError(f"keep_rate = {keep_rate:g} cannot be reached: {always} of {n} images are in the "
                         f"'All' band (threshold 0) and are always kept")
    # The factor can exceed 1/t (a threshold above 1): that half keeps nothing, which the stages show.
    return float(np.sort(ratio)[::-1][target - 1])


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
    keep, noisy = _mask_pair(keep, noisy)
    removed = ~keep
    tp = int((removed & noisy).sum())
    rate = lambda a, b: float(a) / b if b else float("nan")  # noqa: E731
    precision, recall = rate(tp, removed.sum()), rate(tp, noisy.sum())
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else float("nan")
    return {"precision": precision, "recall": recall, "f1": f1, "n": int(len(keep)), "removed": int(removed.sum()),
            "noisy": int(noisy.sum()), "noisy_removed": tp, "noise_before": rate(noisy.sum(), len(keep)),
            "noise_after": rate((noisy & ~removed).sum(), (~removed).sum())}


def _mask_pair(keep, noisy) -> tuple[np.ndarray, np.ndarray]:
    """``keep`` and ``noisy`` as boolean vectors of one length; a clear error otherwise."""
    keep, noisy = np.asarray(keep), np.asarray(noisy)
    for name, a in (("keep", keep), ("noisy", noisy)):
        if a.ndim != 1 or not len(a):
            raise ValueError(f"{name} must be a non-empty 1-D mask, got shape {a.shape}")
        if a.dtype != bool and not np.all((a == 0) | (a == 1)):
            raise ValueError(f"{name} must be a boolean (0/1) mask")
    if len(keep) != len(noisy):
        raise ValueError(f"keep has {len(keep)} entries but noisy has {len(noisy)}")
    return keep.astype(bool), noisy.astype(bool)


def _masks(keep, noisy) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_mask_pair`, and both sets non-trivial (precision, recall and AUROC defined)."""
    keep, noisy = _mask_pair(keep, noisy)
    if keep.all() or not keep.any():
        raise ValueError("keep must remove some images and keep some: precision or the kept set is undefined")
    if noisy.all() or not noisy.any():
        raise ValueError("noisy must hold both noisy and clean images: recall and AUROC are undefined")
    return keep, noisy


def removal_scores(keep, noisy, noise_score) -> dict[str, float]:
    """A cleaning judged against the planted noise, and random removal at the same keep rate.

    ``keep``: the kept mask; ``noisy``: the planted noise; ``noise_score``: the scorer's
    noise score per image (higher = more likely noise, e.g. ``1 - own_prob``). Returns
    ``precision`` / ``recall`` of the removed set (scikit-learn's ``precision_score`` /
    ``recall_score`` with removed = predicted noise), ``auroc`` of the score
    (``roc_auc_score``), and what removing as many images at random gives in expectation:
    ``random_precision`` = the noise rate, ``random_recall`` = the removed share,
    ``random_auroc`` = 0.5; plus ``keep_rate``, ``n``, ``removed``, ``noisy``.
    """
    from sklearn.metrics import precision_score, recall_score, roc_auc_score

    keep, noisy = _masks(keep, noisy)
    score = _vector(noise_score, "noise_score", len(keep))
    removed = ~keep
    return {"precision": float(precision_score(noisy, removed)), "recall": float(recall_score(noisy, removed)),
            "auroc": float(roc_auc_score(noisy, score)), "random_precision": float(noisy.mean()),
            "random_recall": float(removed.mean()), "random_auroc": 0.5, "keep_rate": float(keep.mean()),
            "n": int(len(keep)), "removed": int(removed.sum()), "noisy": int(noisy.sum())}


def removal_item_values(keep, noisy, noise_score) -> pd.DataFrame:
    """Per image, values whose mean is each statistic of :func:`removal_scores` (for the claims engine).

    The engine bootstraps means over items; precision, recall and AUROC are ratios and a
    U-statistic, so each image gets its linearised contribution (influence value):

    * ``precision``: ``P + (n / k) * removed_i * (noisy_i - P)``, k removed, P the precision;
    * ``recall``: ``R + (n / m) * noisy_i * (removed_i - R)``, m noisy, R the recall;
    * ``auroc``: ``A + (n / m) (V10_i - A)`` on a noisy image, ``A + (n / (n - m)) (V01_i - A)``
      on a clean one, with the placement values V10_i (share of clean images scored below
      noisy image i, ties half) and V01_i (share of noisy images scored above clean image i)
      of DeLong et al. (1988);

    each mean is exactly the statistic, and the bootstrap variance of the mean is the
    delta-method (for AUROC, DeLong's) variance. The random-removal arms at the same keep rate:
    ``random_precision`` = ``noisy_i`` (mean: the noise rate), ``random_recall`` =
    ``removed_i`` (mean: the removed share), ``random_auroc`` = 0.5.
    """
    from scipy.stats import rankdata

    keep, noisy = _masks(keep, noisy)
    score = _vector(noise_score, "noise_score", len(keep))
    st = removal_scores(keep, noisy, score)
    removed, n, k, m = ~keep, len(keep), int((~keep).sum()), int(noisy.sum())
    p, r, a = st["precision"], st["recall"], st["auroc"]
    rank_all = rankdata(score)  # mid-ranks: a tie counts one half
    v10 = (rank_all[noisy] - rankdata(score[noisy])) / (n - m)  # clean images below each noisy one
    v01 = 1.0 - (rank_all[~noisy] - rankdata(score[~noisy])) / m  # noisy images above each clean one
    auroc = np.full(n, a)
    auroc[noisy] += n / m * (v10 - a)
    auroc[~noisy] += n / (n - m) * (v01 - a)
    return pd.DataFrame({"precision": p + n / k * removed * (noisy - p), "recall": r + n / m * noisy * (removed - r),
                         "auroc": auroc, "random_precision": noisy.astype(float),
                         "random_recall": removed.astype(float), "random_auroc": 0.5})


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
