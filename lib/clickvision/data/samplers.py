"""Seeded samplers on a split frame: class subsets (paper A Fig. 13), fractions and k shots (Fig. 14).

A *split frame* is an ``ImageSet.items``-like DataFrame with a ``label`` and a ``split``
column (and, for the emoji, a ``concept`` column: every drawing of one emoji, whatever the
vendor, shares it and the splits keep it together). Every function returns plain NumPy
(a row-aligned ``bool`` mask, or lists of class names), so it applies to an ``ImageSet``
(``imageset.subset(mask)``) and to paper A's ``DomainData`` (``domain.subset(mask)``) alike.

* :func:`category_subsets` -- nested random class subsets, several independent draws per
  size (within a draw each smaller subset lies inside every larger one), the paper's
  30/60/90/120/129-of-129 grid rescaled to our class count by :func:`scaled_subset_sizes`.
  The draws are :func:`clickvision.data.splits.nested_class_subsets`'s.
* :func:`class_mask` -- the rows of a set of classes (unknown class names are an error).
* :func:`fraction_mask` -- ``ceil(alpha * n_k)`` units of each class k in one split (the
  training split by default), the other splits untouched; nested in alpha (the rows kept at
  0.4 are among those kept at 0.9). The draw is :func:`clickvision.data.splits.sample_fraction`'s.
* :func:`k_shot_mask` -- ``k`` units of each class in one split (k = 1, 2, 5: a true k-shot
  extension; the paper never goes below alpha = 0.4), nested in k and a prefix of the same
  per-class order as :func:`fraction_mask`, so ``k`` shots equal the fraction that keeps
  ``k`` per class. ``allow_fewer=True`` caps a class instead (paper A's "at most 300 images
  per class").

The sampling unit is a *group* (``group_col``; ``"auto"`` = ``concept`` when the frame has
it): a kept group keeps all its rows in that split, so a frame holding several vendors keeps
a concept's drawings together, as the splits do. Sampling only ever removes rows of one
split, so it cannot move a twin across splits.
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd

from .base import SPLITS
from .splits import _class_rng, nested_class_subsets, sample_fraction

__all__ = ["PAPER_FIG13_SIZES", "PAPER_FIG13_TOTAL", "PAPER_FIG14_ALPHAS", "K_SHOTS", "scaled_subset_sizes",
           "category_subsets", "class_mask", "fraction_mask", "k_shot_mask"]

#: Fig. 13: source subsets of 30, 60, 90, 120 and 129 of the 129 target dog classes.
PAPER_FIG13_SIZES: tuple[int, ...] = (30, 60, 90, 120, 129)
PAPER_FIG13_TOTAL = 129
#: Fig. 14 (footnote 18): alpha = 1, 0.9, ..., 0.4.
PAPER_FIG14_ALPHAS: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4)
#: The k-shot extension (not in the paper).
K_SHOTS: tuple[int, ...] = (1, 2, 5)

_SALT = "sample_fraction"  # the per-class order of splits.sample_fraction, shared by k_shot_mask


def scaled_subset_sizes(n_classes: int, paper_sizes: Sequence[int] = PAPER_FIG13_SIZES,
                        paper_total: int = PAPER_FIG13_TOTAL) -> list[int]:
    """The paper's subset sizes as the same fractions of ``n_classes`` (rounded, at least 1).

    ``scaled_subset_sizes(40)`` -> ``[9, 19, 28, 37, 40]`` (30/129 of 40 = 9.3, ...). Sizes
    that collide after rounding are kept once.
    """
    if not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    if not isinstance(paper_total, (int, np.integer)) or paper_total < 1:
        raise ValueError(f"paper_total must be a positive integer, got {paper_total!r}")
    bad = [s for s in paper_sizes if not (isinstance(s, (int, np.integer)) and 1 <= s <= paper_total)]
    if bad or not len(paper_sizes):
        raise ValueError(f"paper_sizes must be integers in [1, {paper_total}], got {list(paper_sizes)}")
    out = [max(1, min(int(n_classes), int(math.floor(s * n_classes / paper_total + 0.5)))) for s in paper_sizes]
    return sorted(set(out))


def category_subsets(classes: Sequence[str], sizes: Sequence[int], n_draws: int = 3,
                     seed: int = 0) -> list[dict[int, list[str]]]:
    """Nested random class subsets, ``n_draws`` independent draws (paper A Fig. 13).

    Returns one ``{size: sorted class names}`` per draw; within a draw every smaller subset
    is inside every larger one. Draw ``i`` does not depend on ``n_draws`` (asking for more
    draws appends new ones), and the same seed gives the same draws on any platform.
    """
    return nested_class_subsets(list(classes), list(sizes), n_draws=n_draws, seed=seed)


def _labels(items: pd.DataFrame, label_col: str) -> np.ndarray:
    if not isinstance(items, pd.DataFrame):
        raise TypeError(f"items must be a pandas DataFrame (a split frame), got {type(items).__name__}")
    if label_col not in items.columns:
        raise ValueError(f"items lack the label column {label_col!r} (columns: {list(items.columns)})")
    labels = items[label_col]
    if labels.isna().any():
        raise ValueError(f"items column {label_col!r} has missing values")
    return labels.astype(str).to_numpy()


def class_mask(items: pd.DataFrame, classes: Sequence[Hashable], label_col: str = "label") -> np.ndarray:
    """Row-aligned mask of the rows whose label is one of ``classes``.

    A class name that no row carries is an error (a typo would silently drop a class).
    """
    labels = _labels(items, label_col)
    wanted = [str(c) for c in classes]
    unknown = sorted(set(wanted) - set(labels.tolist()))
    if unknown:
        raise ValueError(f"class_mask: classes {unknown} do not occur in column {label_col!r}")
    if not wanted:
        raise ValueError("class_mask: classes is empty")
    return np.isin(labels, wanted)


def _resolve_group(items: pd.DataFrame, group_col: str | None) -> str | None:
    if group_col == "auto":
        return "concept" if "concept" in items.columns else None
    if group_col is not None and group_col not in items.columns:
        raise ValueError(f"items lack the group column {group_col!r} (columns: {list(items.columns)})")
    return group_col


def _split_rows(items: pd.DataFrame, split: str | None, labels: np.ndarray,
                classes: Sequence[Hashable] | None, what: str) -> np.ndarray:
    """Positions of the rows ``what`` samples from (one split, or all rows), checked."""
    if split is None:
        rows = np.arange(len(items))
    else:
        if split not in SPLITS:
            raise ValueError(f"{what}: split must be one of {SPLITS} or None, got {split!r}")
        if "split" not in items.columns:
            raise ValueError(f"{what}: items lack the 'split' column (pass split=None to sample all rows)")
        rows = np.flatnonzero(items["split"].astype(str).to_numpy() == split)
    if not len(rows):
        raise ValueError(f"{what}: no rows in split {split!r}")
    if classes is not None:
        missing = sorted(set(str(c) for c in classes) - set(labels[rows].tolist()))
        if missing:
            raise ValueError(f"{what}: classes {missing} have no rows in split {split!r}")
    return rows


def fraction_mask(items: pd.DataFrame, alpha: float, seed: int = 0, split: str | None = "train",
                  label_col: str = "label", group_col: str | None = "auto",
                  classes: Sequence[Hashable] | None = None) -> np.ndarray:
    """Keep ``ceil(alpha * n_k)`` units of each class k of ``split``; other splits untouched.

    Paper A footnote 18 (``alpha`` in (0, 1]). Nested in ``alpha`` for a fixed ``seed``.
    ``split=None`` samples every row. ``classes``: the classes that must be present in the
    split (each then keeps at least one unit); a class missing there is an error naming it.
    Returns a row-aligned ``bool`` mask.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)) \
            or not 0.0 < float(alpha) <= 1.0:
        raise ValueError(f"alpha must be a number in (0, 1], got {alpha!r}")
    labels = _labels(items, label_col)
    group = _resolve_group(items, group_col)
    rows = _split_rows(items, split, labels, classes, "fraction_mask")
    part = items.iloc[rows]
    kept = sample_fraction(part.reset_index(drop=True), float(alpha), seed=seed, label_col=label_col,
                           group_col=group)
    mask = np.ones(len(items), dtype=bool)
    mask[rows] = False
    mask[rows[kept.index.to_numpy()]] = True
    return mask


def k_shot_mask(items: pd.DataFrame, k: int, seed: int = 0, split: str | None = "train",
                label_col: str = "label", group_col: str | None = "auto",
                classes: Sequence[Hashable] | None = None, allow_fewer: bool = False) -> np.ndarray:
    """Keep ``k`` units of each class of ``split`` (k-shot); other splits untouched.

    The units are the first ``k`` of the per-class seeded order :func:`fraction_mask` uses,
    so the draw is nested in ``k`` and in agreement with the fractions. A class with fewer
    than ``k`` units in the split is an error naming it, unless ``allow_fewer`` (then it
    keeps all it has: a per-class cap). Returns a row-aligned ``bool`` mask.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    labels = _labels(items, label_col)
    group = _resolve_group(items, group_col)
    rows = _split_rows(items, split, labels, classes, "k_shot_mask")
    # Units exactly as splits.sample_fraction names them (group value, or row position).
    unit = (items[group].astype(str).to_numpy()[rows] if group else np.arange(len(rows)).astype(str))
    lab = labels[rows]
    keep_units: set[str] = set()
    short: list[str] = []
    for label in sorted(set(lab.tolist())):
        names = sorted(set(unit[lab == label].tolist()))
        if len(names) < k:
            short.append(f"{label} ({len(names)})")
        order = [names[i] for i in _class_rng(seed, label, _SALT).permutation(len(names))]
        keep_units.update(order[:k])
    if short and not allow_fewer:
        raise ValueError(f"k_shot_mask: k = {k} but these classes have fewer units in split {split!r}: "
                         f"{', '.join(short)} (pass allow_fewer=True to keep all they have)")
    mask = np.ones(len(items), dtype=bool)
    mask[rows] = np.isin(unit, list(keep_units))
    return mask
