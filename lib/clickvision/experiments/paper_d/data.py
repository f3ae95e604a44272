"""Paper D's data and evaluation protocol: labelled items, item splits, bootstrap mAP tables.

Data (docs/READING-NOTES.md, paper D): MovieLens (real ratings, real genres) for Tables 3-4; the
real Open Clip Art images with their real keywords as labels and SIMULATED interactions
(:mod:`clickvision.click.interactions`) for Table 5 and Figures 3-4. No real image ever
meets a real interaction here.

Protocol: items split 70/15/15 (train / validation / test: the paper's 30% hold-out evenly
divided). Tables: mAP and, beside it, the paper's own protocol (mean and 90% range over 50
subsamples of 90% of the test rows without replacement, :func:`clickvision.stats.paper_d_subsamples`:
about a third of a confidence interval's width, shown only to match the paper's tables).
Claims: judged by :mod:`clickvision.claims` on per-test-image average precision
(:func:`per_image_ap`, :func:`item_ap_rows`), seeds x test images.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ... import features, stats
from ... import metrics as M
from ...data import movielens, openclipart
from ...data.splits import grouped_stratified_split

SPLIT_FRACTIONS = (0.7, 0.15, 0.15)
# Paper D's Table 2 (images, interactions, users) of its four data sets: the densities the simulation is set to.
PAPER_D_TABLE2 = {"Pinterest": (27_080, 265_252, 170_978), "MovieLens": (10_677, 10_000_054, 68_532),
                  "Clothing": (23_033, 278_677, 39_387), "Toys": (11_924, 167_597, 19_412)}


def paper_density(dataset: str = "Toys") -> dict:
    """Events per user and per item of one of paper D's data sets (:data:`PAPER_D_TABLE2`)."""
    if dataset not in PAPER_D_TABLE2:
        raise ValueError(f"dataset must be one of {sorted(PAPER_D_TABLE2)}, got {dataset!r}")
    n_items, n_events, n_users = PAPER_D_TABLE2[dataset]
    return {"dataset": dataset, "events_per_user": n_events / n_users, "events_per_item": n_events / n_items}


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
    # the images without any class (Open Clip Art): ids, split and features; they can take part as
    # extra training items that receive only the auxiliary target
    unlabelled_keys: np.ndarray | None = None
    unlabelled_split: np.ndarray | None = None
    unlabelled_x: np.ndarray | None = None

    def rows(self, name: str) -> np.ndarray:
        return np.flatnonzero(self.split == name)

    def unlabelled_rows(self, name: str) -> np.ndarray:
        """Rows of the unlabelled images in split ``name`` (empty when there are none)."""
        if self.unlabelled_split is None:
            return np.array([], dtype=int)
        return np.flatnonzero(self.unlabelled_split == name)

    def keys_outside(self, name: str) -> np.ndarray:
        """Ids of every image, labelled or not, whose split is not ``name`` (e.g. all but the test images)."""
        extra = np.array([], dtype=object) if self.unlabelled_keys is None else \
            self.unlabelled_keys[self.unlabelled_split != name]
        return np.concatenate([self.keys[self.split != name], extra])


ITEM_ARRAYS = ("keys", "split", "y", "x", "unlabelled_keys", "unlabelled_split", "unlabelled_x")


def save_labelled_items(items: LabelledItems, path) -> Path:
    """Write ``items`` (features included) to one ``.npz``, so that a machine without the images and
    the backbone's weights (a GPU machine lent for a sweep) can run on exactly these items
    (:func:`load_labelled_items`). Written whole or not at all; returns the path."""
    from ...io import atomic_path

    path = Path(path)
    arrays = {name: np.asarray(getattr(items, name)) for name in ITEM_ARRAYS if getattr(items, name) is not None}
    objects = [name for name, a in arrays.items() if a.dtype == object]  # strings held as objects: back as such
    arrays.update({name: arrays[name].astype(str) for name in objects})
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, classes=np.asarray(items.classes, dtype=str), rule=np.asarray(items.rule),
                 object_arrays=np.asarray(objects, dtype=str), **arrays)
    return path


def load_labelled_items(path) -> LabelledItems:
    """The :class:`LabelledItems` that :func:`save_labelled_items` wrote (each array with its dtype:
    string arrays held as objects, as :func:`openclipart_items` makes them, come back as objects).
    ValueError naming the file when it is not such a file."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a saved LabelledItems file ({e})") from None
    missing = {"keys", "split", "y", "classes"} - set(data)
    if missing:
        raise ValueError(f"{path}: not a saved LabelledItems file, missing arrays {sorted(missing)}")
    for name in data.get("object_arrays", []):
        data[str(name)] = data[str(name)].astype(object)
    return LabelledItems(data["keys"], data["split"], data["y"], [str(c) for c in data["classes"]], data.get("x"),
                         str(data["rule"]) if "rule" in data else "", data.get("unlabelled_keys"),
                         data.get("unlabelled_split"), data.get("unlabelled_x"))


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
    x_all = features.extract_features(images, image_size=128, kind="pooled") if with_features else None
    rule = (f"keywords on >= {min_train_items} training images and <= {max_train_share:.0%} of them, "
            f"minus {len(NON_CONTENT_KEYWORDS)} non-content tags: {len(classes)} classes")
    keys = items["key"].to_numpy()
    return LabelledItems(keys[keep], split[keep], y[keep], classes, None if x_all is None else x_all[keep], rule,
                         keys[~keep], split[~keep], None if x_all is None else x_all[~keep])


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


def gaussianize(q: np.ndarray, rows: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each column mapped to a standard normal by its ranks among ``rows`` (scikit-learn's
    ``QuantileTransformer``, fitted on ``rows`` only; values beyond them are clipped to its range).

    Why: MTL-reconstruct's loss ``exp(L1 + L2)`` (eq. 2) grows exponentially with a row's error, so
    a heavy-tailed target (EASE's columns: a few items sit 10-25 sd out) lets a handful of items
    dominate every batch; ranks keep each dimension's order and bound its range (about +/-5)."""
    from sklearn.preprocessing import QuantileTransformer

    q, rows = np.asarray(q, dtype=np.float64), np.asarray(rows)
    if len(rows) < 2:
        raise ValueError(f"gaussianize needs at least 2 rows to fit, got {len(rows)}")
    qt = QuantileTransformer(n_quantiles=min(1000, len(rows)), output_distribution="normal", random_state=seed)
    return qt.fit(q[rows]).transform(q)


# ----------------------------------------------------------------------------- evaluation
def per_image_ap(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """Average precision of each test image's ranking of the classes, one value per row.

    The per-item score behind the claims: its mean over images is the sample-averaged AP
    (scikit-learn's ``average_precision_score(..., average="samples")``; tied scores grouped
    by its step rule), a different average than the macro (per-class) mAP of the tables.
    A row without a positive label has no AP: ValueError.
    """
    y_true, y_score = np.asarray(y_true, dtype=float), np.asarray(y_score, dtype=float)
    if y_true.shape != y_score.shape or y_true.ndim != 2:
        raise ValueError(f"y_true and y_score must be equal 2-d shapes, got {y_true.shape}, {y_score.shape}")
    empty = np.flatnonzero(y_true.sum(1) == 0)
    if len(empty):
        raise ValueError(f"{len(empty)} rows have no positive label (e.g. row {empty[0]}): AP undefined")
    return M._average_precision_columns(y_true.T, y_score.T)


def per_class_ap(y_true: np.ndarray, y_score: np.ndarray) -> pd.Series:
    """Average precision of each class with a positive test item, indexed by class column.

    Their mean is exactly the macro mAP of the tables (:func:`clickvision.metrics.average_precision_macro`).
    """
    y_true, y_score = np.asarray(y_true, dtype=float), np.asarray(y_score, dtype=float)
    cols = np.flatnonzero(y_true.sum(0) > 0)
    return pd.Series(M._average_precision_columns(y_true[:, cols], y_score[:, cols]), index=cols)


def item_ap_rows(y_test: np.ndarray, scores: dict, per: str = "image", **columns) -> pd.DataFrame:
    """Tidy AP rows (method, seed, item, value) for :func:`clickvision.claims.judge`.

    ``scores`` maps a method to ``{seed: test score matrix}`` (rows aligned with ``y_test``).
    ``per="image"``: one row per test image (:func:`per_image_ap`, ``item`` the test row);
    ``per="class"``: one row per class with a positive test item (:func:`per_class_ap`, ``item``
    the class column), whose mean is the macro mAP itself. Extra ``columns`` (e.g.
    ``label_ratio=0.1``) are added as constants.
    """
    if per not in ("image", "class"):
        raise ValueError(f"per must be 'image' or 'class', got {per!r}")
    frames = []
    for name, per_seed in scores.items():
        for sd, s in per_seed.items():
            v = pd.Series(per_image_ap(y_test, s)) if per == "image" else per_class_ap(y_test, s)
            frames.append(pd.DataFrame({"method": name, "seed": int(sd), "item": v.index.to_numpy(),
                                        "value": v.to_numpy()}))
    return pd.concat(frames, ignore_index=True).assign(**columns)


def paper_protocol_table(values: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """Per method: mean mAP over paper D's subsamples, the paper's 90% range (``lo_paper``,
    ``hi_paper``: about a third of a confidence interval, display only) and, with ``baseline``,
    the relative gain in % (``gain_%``). No significance column: claims go through
    :mod:`clickvision.claims`."""
    summary = stats.summarize_bootstrap(values).rename(columns={"lo": "lo_paper", "hi": "hi_paper"})
    if baseline is not None:
        base = float(summary.set_index("method").loc[baseline, "mean"])
        summary["gain_%"] = 100 * (summary["mean"] - base) / base
    return summary


def bootstrap_table(y_test: np.ndarray, scores: dict, baseline: str | None = None, n_resamples: int = 50,
                    seed: int = 0) -> pd.DataFrame:
    """:func:`paper_protocol_table` of every method's test scores (one matrix each) on the same
    paper-D subsamples of the test rows (:func:`clickvision.stats.paper_d_subsamples`)."""
    idx = stats.paper_d_subsamples(len(y_test), n_resamples, seed)
    return paper_protocol_table(stats.bootstrap_metric(M.average_precision_macro, y_test, scores, idx), baseline)


def subsample_users(events: pd.DataFrame, n_users: int, seed: int = 0) -> pd.DataFrame:
    """The events of a seeded random ``n_users`` users (smoke runs)."""
    users = np.sort(events["user"].unique())
    if n_users >= len(users):
        return events
    keep = np.random.default_rng(seed).choice(users, n_users, replace=False)
    return events[events["user"].isin(keep)].reset_index(drop=True)
