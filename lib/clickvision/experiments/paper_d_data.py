"""Paper D's data and evaluation protocol: labelled items, item splits, bootstrap mAP tables.

Data (READING-NOTES, paper D): MovieLens (real ratings, real genres) for Tables 3-4; the
real Open Clip Art images with their real keywords as labels and SIMULATED interactions
(:mod:`clickvision.click.interactions`) for Table 5 and Figures 3-4. No real image ever
meets a real interaction here.

Protocol: items split 70/15/15 (train / validation / test: the paper's 30% hold-out evenly
divided). mAP: mean and 90% interval over 50 resamples of 90% of the test rows, the SAME
resamples for every method, paired tests (:mod:`clickvision.stats`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import features, stats
from .. import metrics as M
from ..data import movielens, openclipart
from ..data.splits import grouped_stratified_split

SPLIT_FRACTIONS = (0.7, 0.15, 0.15)
# Keywords that name no content: the catch-all folder, an icon theme, an author.
NON_CONTENT_KEYWORDS = ("unsorted", "lemon theme icon", "architetto francesco rollandin")


# ----------------------------------------------------------------------------- data
@dataclass
class LabelledItems:
    """Items with multi-labels: ids, split, label matrix, class names and (images) features."""

    keys: np.ndarray
    split: np.ndarray
    y: np.ndarray
    classes: list
    x: np.ndarray | None = None
    rule: str = ""

    def rows(self, name: str) -> np.ndarray:
        return np.flatnonzero(self.split == name)


def multi_hot(label_lists: list, classes: list) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    y = np.zeros((len(label_lists), len(classes)), dtype=bool)
    for r, labels in enumerate(label_lists):
        for c in labels:
            if c in index:
                y[r, index[c]] = True
    return y


def openclipart_items(min_train_items: int = 20, max_train_share: float = 0.10, seed: int = 0,
                      with_features: bool = True) -> LabelledItems:
    """Open Clip Art images with real keyword labels (paper D's image set, here).

    Rule: items split 70/15/15 (grouped by image, stratified by folder); a keyword is a
    class when at least ``min_train_items`` training images carry it, unless it is generic
    (carried by more than ``max_train_share`` of the training images: the icon-theme and
    shapes/stars blanket tags) or names no content (:data:`NON_CONTENT_KEYWORDS`). Images
    with no class are dropped. Features: the cached frozen EfficientNet-Lite0 pooled vector.
    """
    images = openclipart.load_openclipart()
    items = images.items
    split = grouped_stratified_split(items["label"], items["concept"], SPLIT_FRACTIONS, seed)
    lists = [[k for k in s.split("|") if k] for s in items["labels"].fillna("")]
    counts = pd.Series([k for ls, sp in zip(lists, split) if sp == "train" for k in ls]).value_counts()
    n_train = int((split == "train").sum())
    classes = sorted(k for k, n in counts.items() if n >= min_train_items and n <= max_train_share * n_train
                     and k not in NON_CONTENT_KEYWORDS)
    y = multi_hot(lists, classes)
    keep = y.any(1)
    x = features.extract_features(images, image_size=128, kind="pooled")[keep] if with_features else None
    rule = (f"keywords on >= {min_train_items} training images and <= {max_train_share:.0%} of them, "
            f"minus {len(NON_CONTENT_KEYWORDS)} non-content tags: {len(classes)} classes")
    return LabelledItems(items["key"].to_numpy()[keep], split[keep], y[keep], classes, x, rule)


def movielens_items(seed: int = 0) -> tuple[LabelledItems, pd.DataFrame]:
    """MovieLens movies (with a rating and a genre) and their real genres; items split 70/15/15."""
    data = movielens.load_movielens()
    genres = [g for g in movielens.genre_list(data.items) if g != "(no genres listed)"]
    rated = data.items[data.items["item"].isin(data.events["item"].unique())]
    lists = [s.split("|") for s in rated["genres"]]
    y = multi_hot(lists, genres)
    keep = y.any(1)
    keys = rated["item"].to_numpy()[keep]
    split = np.array(["train", "val", "test"])[np.random.default_rng(seed).choice(3, keep.sum(), p=SPLIT_FRACTIONS)]
    return LabelledItems(keys, split, y[keep], genres, rule=f"{len(genres)} genres"), data.events


def standardize(q: np.ndarray, rows: np.ndarray) -> np.ndarray:
    mu, sd = q[rows].mean(0), q[rows].std(0) + 1e-8
    return (q - mu) / sd


# ----------------------------------------------------------------------------- evaluation
def summarize_with_tests(values: pd.DataFrame, baseline: str | None = None, pairs: tuple = ()) -> pd.DataFrame:
    """Mean mAP and 90% interval per method; with ``baseline``, the relative gain, the paired
    bootstrap p-value (``significant``: p < 0.05, i.e. all 50 paired resamples on one side)
    and the paper's paired t-test p on the resamples (optimistic: resamples overlap)."""
    summary = stats.summarize_bootstrap(values)
    if baseline is not None:
        tests = [stats.paired_bootstrap_test(values, m, baseline) if m != baseline else {} for m in summary["method"]]
        base = float(summary.set_index("method").loc[baseline, "mean"])
        summary["gain_%"] = 100 * (summary["mean"] - base) / base
        summary["p_boot"] = [t.get("p_value", np.nan) for t in tests]
        summary["p_ttest"] = [t.get("t_p_value", np.nan) for t in tests]
        summary["significant"] = [bool(t) and t["p_value"] < 0.05 for t in tests]
    summary.attrs["pairs"] = {f"{a} vs {b}": stats.paired_bootstrap_test(values, a, b) for a, b in pairs}
    return summary


def bootstrap_table(y_test: np.ndarray, scores: dict, baseline: str | None = None, n_resamples: int = 50,
                    fraction: float = 0.9, seed: int = 0, pairs: tuple = ()) -> pd.DataFrame:
    """:func:`summarize_with_tests` of every method's scores on the same resamples of the test rows;
    ``pairs`` of methods (a, b) get a paired test in ``attrs['pairs']['a vs b']``."""
    idx = stats.bootstrap_indices(len(y_test), n_resamples, fraction, seed)
    return summarize_with_tests(stats.bootstrap_metric(M.average_precision_macro, y_test, scores, idx), baseline,
                                pairs)


def subsample_users(events: pd.DataFrame, n_users: int, seed: int = 0) -> pd.DataFrame:
    """The events of a seeded random ``n_users`` users (smoke runs)."""
    users = np.sort(events["user"].unique())
    if n_users >= len(users):
        return events
    keep = np.random.default_rng(seed).choice(users, n_users, replace=False)
    return events[events["user"].isin(keep)].reset_index(drop=True)
