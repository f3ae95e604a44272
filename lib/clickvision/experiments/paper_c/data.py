"""Paper C (CHTN, IJCAI 2017): the cross-modal target pairs and the single-modal source.

Targets (image/text pairs with one label each, like Wikipedia / NUS-WIDE-10k / Pascal
Sentences), switched by one parameter ``target``:

* ``"openclipart"``: Open Clip Art, label = the top-level folder, restricted to
  :data:`CLIPART_TOPICS` (eleven subject topics; the icon themes of ``computer``, the
  ``shapes`` dominated by stars, ``unsorted`` and ``special`` are not topics), at most
  ``cap_per_class`` images per topic (split-proportional, seeded); text = title + keywords.
  Source: Google + Twitter emoji by Unicode subgroup (40 classes): drawn pictograms like
  the target, a label space that differs from the clip-art topics, and no image in common.
* ``"openmoji"``: OpenMoji renders, label = Unicode group (8), text = CLDR name + OpenMoji
  annotation and tags. Source: Open Clip Art by folder (the emoji vendors would put every
  test concept's twin drawing into the source, and a concept's text is the same on every
  vendor's row). Both sources carry labels only (single-modal, like ImageNet).
* ``"wikipedia"``, ``"nus-wide-10k"``, ``"pascal-sentences"``: the originals through
  :mod:`clickvision.data.originals.crossmodal` (``root=`` their folder).

Images enter as cached frozen backbone features (z-scored with the target's training
statistics); text as a binary bag of words over the training vocabulary (paper: 1,000 or
3,000 words). Splits are the builders' fixed, seeded, twin-free splits.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ... import features
from ...data.base import ImageSet
from ...threads import limited

TARGETS = ("openclipart", "openmoji", "wikipedia", "nus-wide-10k", "pascal-sentences")
CLIPART_TOPICS = ("animals", "buildings", "food", "geography", "office", "people", "plants", "recreation",
                  "signs_and_symbols", "tools", "transportation")
DEFAULT_SOURCE = {"openclipart": "emoji"}  # every other target: "openclipart"
TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"  # bag-of-words tokens: alphabetic, two letters or more
PAPER_SIZES = pd.DataFrame(
    [("Wikipedia (paper)", 2173, 231, 462, 10, 3000), ("NUS-WIDE-10k (paper)", 8000, 1000, 1000, 10, 1000),
     ("Pascal Sentences (paper)", 800, 100, 100, 20, 1000)],
    columns=["data set", "train", "val", "test", "classes", "BoW words"])


@functools.lru_cache(maxsize=None)
def _full_set(name: str) -> ImageSet:
    """The full embedded set ``"emoji"`` or ``"openclipart"``, loaded once per process (the
    targets, the sources and the feature look-up all start from it; callers copy before
    changing anything). :func:`clear_cache` forgets it, e.g. after a data rebuild."""
    from ... import data as cvdata

    return {"emoji": cvdata.load_emoji, "openclipart": cvdata.load_openclipart}[name]()


@functools.lru_cache(maxsize=None)
def _full_features(name: str, kw: tuple) -> np.ndarray:
    """Cached backbone features of :func:`_full_set` (read-only array)."""
    feats = features.extract_features(_full_set(name), **dict(kw))
    feats.setflags(write=False)
    return feats


def clear_cache() -> None:
    """Forget the full sets and features this module keeps in memory."""
    _full_set.cache_clear()
    _full_features.cache_clear()


def load_target(target: str = "openclipart", root: str | None = None, topics: tuple[str, ...] = CLIPART_TOPICS,
                cap_per_class: int = 300, seed: int = 0) -> ImageSet:
    """The target image/text pairs (module docstring) as an ImageSet with ``text`` and one ``label``."""
    from ... import data as cvdata

    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if target in TARGETS[2:]:
        if root is None:
            raise ValueError(f"target={target!r} is an original data set: pass root= (its folder)")
        loader = {"wikipedia": "load_wikipedia", "nus-wide-10k": "load_nus_wide_10k",
                  "pascal-sentences": "load_pascal_sentences"}[target]
        kw = {"val_size": 231} if target == "wikipedia" else {}
        return getattr(cvdata.originals.crossmodal, loader)(root, **kw)
    if target == "openmoji":
        full = _full_set("emoji")
        items = full.items[full.items["domain"] == "openmoji"].copy()
        items["subgroup"], items["label"] = items["label"], items["group"]
    else:
        if not topics:
            raise ValueError("topics must name at least one Open Clip Art top-level folder")
        full = _full_set("openclipart")
        items = full.items.copy()
        items["folder"], items["label"] = items["label"], items["label"].str.split("/").str[0]
        items = items[items["label"].isin(topics) & (items["text"].fillna("").str.strip() != "")]
        items = _cap(items, cap_per_class, seed)
    items = items.reset_index(drop=True)
    return ImageSet(target, items, {**full.meta, "full_set": full.name})


def _cap(items: pd.DataFrame, cap: int, seed: int) -> pd.DataFrame:
    """At most ``cap`` rows per label, each split keeping its share (seeded)."""
    if cap < 1:
        raise ValueError(f"cap_per_class must be >= 1, got {cap}")
    keep = []
    for label, rows in items.groupby("label", sort=True):
        rng = np.random.default_rng([seed, sum(map(ord, label))])
        for _split, part in rows.groupby("split", sort=True):
            n = min(len(part), math.ceil(cap * len(part) / len(rows)) if len(rows) > cap else len(part))
            keep.extend(part.index[np.sort(rng.permutation(len(part))[:n])])
    return items.loc[sorted(keep)]


def load_source(source: str = "emoji") -> ImageSet:
    """The single-modal labelled source: ``"emoji"`` (Google + Twitter, Unicode subgroups) or
    ``"openclipart"`` (folders with >= 20 images)."""
    if source == "emoji":
        full = _full_set("emoji")
        return full.subset(full.items["domain"].isin(["google", "twitter"]).to_numpy(), "emoji")
    if source == "openclipart":
        full = _full_set("openclipart")
        return ImageSet(full.name, full.items.copy(), dict(full.meta))
    raise ValueError(f"source must be 'emoji' or 'openclipart', got {source!r}")


def image_features(imageset: ImageSet, **kw) -> np.ndarray:
    """Backbone features row-aligned with ``imageset``; embedded sets read the cache of their
    FULL default set (what ``make features`` fills, read once per process) and pick rows by key."""
    full = {"emoji": "emoji", "openmoji": "emoji", "openclipart": "openclipart"}.get(imageset.name)
    if full is None:
        return features.extract_features(imageset, **kw)
    ref = _full_set(full)
    pos = pd.Series(np.arange(len(ref)), index=ref.items["key"])
    return _full_features(full, tuple(sorted(kw.items())))[pos.loc[imageset.items["key"]].to_numpy()]


@dataclass
class CrossModalData:
    """One target's pairs as arrays per split, its vocabulary, and the source images."""

    target: str
    source: str
    pairs: ImageSet  # target pairs (all splits)
    classes: list[str]
    vocabulary: list[str]
    image: dict[str, np.ndarray]  # split -> z-scored features
    text: dict[str, np.ndarray]  # split -> binary bag of words
    labels: dict[str, np.ndarray]  # split -> class index
    rows: dict[str, np.ndarray]  # split -> row numbers in pairs.items
    source_image: np.ndarray
    source_labels: np.ndarray
    source_classes: list[str]
    meta: dict = field(default_factory=dict)

    def sizes(self) -> pd.DataFrame:
        """Counts beside the paper's three data sets (:data:`PAPER_SIZES`)."""
        ours = pd.DataFrame([{"data set": f"{self.target} (ours)", **{s: len(self.labels[s]) for s in self.labels},
                              "classes": len(self.classes), "BoW words": len(self.vocabulary)}])
        return pd.concat([ours, PAPER_SIZES], ignore_index=True)

    def view(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.image[split], self.text[split], self.labels[split]


def _limit(rows: pd.DataFrame, per_class: int | None, seed: int) -> np.ndarray:
    if not per_class:
        return rows.index.to_numpy()
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.permutation(g.index.to_numpy())[:per_class]
                                   for _, g in rows.groupby("label", sort=True)]))


def prepare_data(target: str = "openclipart", source: str | None = None, root: str | None = None,
                 vocab_size: int = 1000, cap_per_class: int = 300, max_per_class: int | None = None,
                 max_source: int | None = None, feature_dim: int = 256, seed: int = 0) -> CrossModalData:
    """Load target pairs and source images, featurise both. ``max_per_class`` / ``max_source``
    subsample (the smoke profile); ``feature_dim`` > 0 projects the z-scored backbone
    features on their first principal components (fitted on the target's training images;
    0 keeps all 1,280); the vocabulary = the ``vocab_size`` words with the highest
    training document frequency (lower-case alphabetic tokens, English stop words removed).
    The linear algebra runs on one BLAS thread: on a shared 2-core machine the threaded SVD
    spent several times the CPU of a single thread for the same result."""
    with limited():
        return _prepare_data(target, source, root, vocab_size, cap_per_class, max_per_class, max_source,
                             feature_dim, seed)


def _prepare_data(target: str, source: str | None, root: str | None, vocab_size: int, cap_per_class: int,
                  max_per_class: int | None, max_source: int | None, feature_dim: int, seed: int) -> CrossModalData:
    from sklearn.feature_extraction.text import CountVectorizer

    source = source or DEFAULT_SOURCE.get(target, "openclipart")
    pairs = load_target(target, root, cap_per_class=cap_per_class, seed=seed)
    items = pairs.items
    classes = sorted(items["label"].unique())
    rows = {s: _limit(items[items["split"] == s], max_per_class, seed) for s in ("train", "val", "test")}
    if any(len(r) == 0 for r in rows.values()):
        raise ValueError(f"target {target!r}: a split is empty ({ {s: len(r) for s, r in rows.items()} })")
    feats = image_features(pairs)
    mu, sd = feats[rows["train"]].mean(0), feats[rows["train"]].std(0)
    sd = np.maximum(sd, 0.1 * np.median(sd))  # near-constant channels would blow the source up
    vec = CountVectorizer(max_features=vocab_size, binary=True, stop_words="english",
                          token_pattern=TOKEN_PATTERN).fit(items["text"].iloc[rows["train"]])
    proj = np.eye(feats.shape[1])
    if feature_dim:
        z = (feats[rows["train"]] - mu) / sd
        proj = np.linalg.svd(z - z.mean(0), full_matrices=False)[2][:feature_dim].T
    cls_index = {c: i for i, c in enumerate(classes)}
    src = load_source(source)
    src_rows = np.arange(len(src)) if not max_source or max_source >= len(src) else \
        np.sort(np.random.default_rng(seed).permutation(len(src))[:max_source])
    src_classes = sorted(src.items["label"].iloc[src_rows].unique())
    src_index = {c: i for i, c in enumerate(src_classes)}
    return CrossModalData(
        target=target, source=source, pairs=pairs, classes=classes, vocabulary=list(vec.get_feature_names_out()),
        image={s: (((feats[r] - mu) / sd) @ proj).astype(np.float32) for s, r in rows.items()},
        text={s: vec.transform(items["text"].iloc[r]).toarray().astype(np.float32) for s, r in rows.items()},
        labels={s: items["label"].iloc[r].map(cls_index).to_numpy() for s, r in rows.items()}, rows=rows,
        source_image=(((image_features(src)[src_rows] - mu) / sd) @ proj).astype(np.float32),
        source_labels=src.items["label"].iloc[src_rows].map(src_index).to_numpy(), source_classes=src_classes,
        meta={"vocab_size": vocab_size, "cap_per_class": cap_per_class, "max_per_class": max_per_class,
              "feature_dim": feature_dim or feats.shape[1]})
