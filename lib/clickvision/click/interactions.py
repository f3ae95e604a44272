"""SIMULATED user-item interactions for image items (paper D), only partly aligned with labels.

No real image ever meets a real interaction here (docs/READING-NOTES.md, paper D): these events are
simulated, and built so that they do not put the paper's result in by construction.

* Item factors mix a label-derived vector with a random one,
  ``v_i = sqrt(alpha) * mean_c(L_c) * sqrt(|labels_i|) + sqrt(1 - alpha) * R_i`` with
  ``alpha = label_alignment``: class vectors ``L_c`` and ``R_i`` are i.i.d. N(0, I), so at
  alpha = 0 the factors (and so every interaction) are independent of the labels, and at 1
  items of one class share one factor.
* Users have latent tastes ``u ~ N(0, I)``; item popularity is a Zipf law over a random order
  of the items (independent of the labels).
* A user picks items without replacement with probability proportional to
  ``exp(taste_strength * u.v / sqrt(d) + popularity_bias * log popularity)`` (Gumbel top-k);
  a ``noise_rate`` share of each user's picks is uniformly random instead.
* Ratings 1-5: ``1 + 4 * quantile`` of the item's affinity among all items for that user (normal
  approximation) plus Gaussian noise, rounded.
The realised alignment is measured and returned with the events (:func:`alignment_statistics`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr

from ..data.base import DataError, ImageSet, Interactions


@dataclass(frozen=True)
class InteractionSimConfig:
    """Parameters of the SIMULATED interactions (set once; never tuned to make a claim hold).

    From paper D's Table 2 (Amazon Toys, the single-label-like e-commerce set with images:
    167,597 interactions, 11,924 items, 19,412 users, sparsity 7.24e-4):
      interactions_per_item = 14.1   167,597 / 11,924
      density = 7.24e-4              interactions / (users x items); users = per_item / density
    Assumptions (no published figure):
      label_alignment = 0.5          share of item-factor variance tied to the labels; sweep it
      latent_dim = 16, taste_strength = 2.0, popularity_exponent = 1.0 (Zipf),
      popularity_bias = 0.5 (so the prior is rank^-0.5: at 1.0 the top Open Clip Art item
      reached a quarter of all users), noise_rate = 0.1, min_per_user = 2,
      user_activity_sigma = 1.0      log-normal spread of interactions per user
      label_column = "label"         or "labels" ("|"-joined multi-labels)
    """

    label_alignment: float = 0.5
    interactions_per_item: float = 14.1
    density: float = 7.24e-4
    latent_dim: int = 16
    taste_strength: float = 2.0
    popularity_exponent: float = 1.0
    popularity_bias: float = 0.5
    noise_rate: float = 0.1
    min_per_user: int = 2
    user_activity_sigma: float = 1.0
    rating_noise: float = 0.5
    label_column: str = "label"

    def __post_init__(self) -> None:
        for name in ("label_alignment", "noise_rate", "density"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"InteractionSimConfig.{name} must be in [0, 1], got {getattr(self, name)!r}")
        if self.density == 0:
            raise ValueError("InteractionSimConfig.density must be > 0")
        for name in ("interactions_per_item", "taste_strength", "popularity_exponent", "popularity_bias",
                     "user_activity_sigma", "rating_noise"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"InteractionSimConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("latent_dim", "min_per_user"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ValueError(f"InteractionSimConfig.{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if self.label_column not in ("label", "labels"):
            raise ValueError(f"InteractionSimConfig.label_column must be 'label' or 'labels', got {self.label_column!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _item_labels(items: ImageSet | pd.DataFrame, column: str) -> tuple[pd.DataFrame, list[list[str]]]:
    frame = items.items if isinstance(items, ImageSet) else items
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"items must be an ImageSet or a DataFrame, got {type(items).__name__}")
    for col in ("key", column):
        if col not in frame.columns:
            raise DataError(f"interaction simulator: items lack column {col!r}")
    if len(frame) < 2:
        raise DataError(f"interaction simulator: need at least 2 items, got {len(frame)}")
    if frame["key"].duplicated().any():
        raise DataError(f"interaction simulator: duplicate key {frame.loc[frame['key'].duplicated(), 'key'].iloc[0]!r}")
    raw = frame[column].fillna("").astype(str)
    labels = [[s for s in v.split("|") if s] if column == "labels" else ([v] if v else []) for v in raw]
    return frame.reset_index(drop=True), labels


def item_factors(labels: list[list[str]], alignment: float, dim: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """SIMULATED item factors: ``sqrt(a) * label part + sqrt(1 - a) * random part``.

    Returns (factors (n, dim), label part (n, dim)). Items without a label get a random
    label part, so they carry no label information at any alignment.
    """
    classes = sorted({c for ls in labels for c in ls})
    class_vec = dict(zip(classes, rng.standard_normal((len(classes), dim))))
    own = rng.standard_normal((len(labels), dim))
    label_part = np.array([np.mean([class_vec[c] for c in ls], axis=0) * np.sqrt(len(ls)) if ls else own[i]
                           for i, ls in enumerate(labels)])
    random_part = rng.standard_normal((len(labels), dim))
    return np.sqrt(alignment) * label_part + np.sqrt(1 - alignment) * random_part, label_part


def simulate_interactions(items: ImageSet | pd.DataFrame, config: InteractionSimConfig | None = None,
                          seed: int = 0, name: str = "simulated") -> Interactions:
    """SIMULATED user-item events over ``items`` (``key`` + ``label`` or ``labels``).

    Returns :class:`Interactions`: ``events`` (user int, item = image key, rating 1-5),
    ``items`` (item, label[s], popularity, n_interactions), and ``meta`` with ``simulated``,
    the config, the seed and :func:`alignment_statistics` of the realised events.
    """
    cfg = config or InteractionSimConfig()
    frame, labels = _item_labels(items, cfg.label_column)
    rng = np.random.default_rng(seed)
    n_items = len(frame)
    n_users = max(1, round(cfg.interactions_per_item / cfg.density))
    factors, _ = item_factors(labels, cfg.label_alignment, cfg.latent_dim, rng)
    rank = rng.permutation(n_items)
    popularity = (rank + 1.0) ** -cfg.popularity_exponent
    popularity /= popularity.sum()
    per_user = rng.lognormal(0.0, cfg.user_activity_sigma, n_users)
    per_user = np.clip(np.round(per_user / per_user.mean() * cfg.density * n_items), cfg.min_per_user, n_items)
    users = rng.standard_normal((n_users, cfg.latent_dim))
    prior = cfg.popularity_bias * np.log(popularity)
    ev_user, ev_item, ev_rating = [], [], []
    for start in range(0, n_users, 1024):
        block, wanted = users[start:start + 1024], per_user[start:start + 1024].astype(int)
        affinity = cfg.taste_strength * block @ factors.T / np.sqrt(cfg.latent_dim)
        keys = affinity + prior + rng.gumbel(size=affinity.shape)  # Gumbel top-k = sampling w/o replacement
        k = int(wanted.max())
        top = np.argpartition(-keys, k - 1, axis=1)[:, :k] if k < n_items else np.tile(np.arange(n_items), (len(block), 1))
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(keys, top, 1), axis=1, kind="stable"), 1)
        z = (affinity - affinity.mean(1, keepdims=True)) / (affinity.std(1, keepdims=True) + 1e-12)
        for r in range(len(block)):
            n = int(wanted[r])
            n_random = int(rng.binomial(n, cfg.noise_rate))
            chosen = dict.fromkeys(top[r, :n - n_random].tolist())
            while len(chosen) < n:  # the noisy share: uniformly random items not yet chosen
                chosen.update(dict.fromkeys(rng.integers(n_items, size=n - len(chosen)).tolist()))
            picked = list(chosen)[:n]
            quantile = ndtr(z[r, picked])  # affinity is about normal: its quantile among all items
            stars = np.clip(np.round(1 + 4 * quantile + cfg.rating_noise * rng.standard_normal(n)), 1, 5)
            ev_user += [start + r] * n
            ev_item += picked
            ev_rating += stars.tolist()
    keys = frame["key"].astype(str).to_numpy(object)
    events = pd.DataFrame({"user": np.array(ev_user, dtype=np.int64), "item": keys[ev_item],
                           "rating": np.array(ev_rating, dtype=np.float32)})
    counts = np.bincount(np.array(ev_item, dtype=np.int64), minlength=n_items)
    table = pd.DataFrame({"item": keys, cfg.label_column: frame[cfg.label_column].to_numpy(),
                          "popularity": popularity, "n_interactions": counts})
    stats = alignment_statistics(events, table, cfg.label_column, factors)
    meta = {"simulated": True, "config": cfg.to_dict(), "seed": seed, "n_users": n_users,
            "alignment": stats, "item_factors": factors}
    return Interactions(name, events, table, meta)


def alignment_statistics(events: pd.DataFrame, items: pd.DataFrame, label_column: str = "label",
                         factors: np.ndarray | None = None) -> dict[str, float]:
    """How much the SIMULATED interactions carry the labels (first label of each item).

    ``same_label_pair_rate``: share of a user's item pairs with one label;
    ``chance_pair_rate``: the same share if items were drawn from the event marginals
    (sum over labels of the squared event share); ``pair_lift`` = their ratio (1 = no label
    signal). ``item_popularity_gini``: Gini index of interactions per item (0 = uniform).
    ``factor_label_r2``: share of item-factor variance between labels (when given).
    """
    first = items[label_column].fillna("").astype(str).str.split("|").str[0]
    label_of = dict(zip(items["item"], first))
    ev = pd.DataFrame({"user": events["user"].to_numpy(), "label": events["item"].map(label_of).to_numpy()})
    per_user_label = ev.groupby(["user", "label"]).size().to_numpy(dtype=float)
    per_user = ev.groupby("user").size().to_numpy(dtype=float)
    pairs = (per_user * (per_user - 1)).sum()
    same = (per_user_label * (per_user_label - 1)).sum() / pairs if pairs else float("nan")
    share = ev["label"].value_counts(normalize=True).to_numpy()
    chance = float((share ** 2).sum())
    counts = np.sort(events["item"].value_counts().reindex(items["item"], fill_value=0).to_numpy(dtype=float))
    n = len(counts)
    gini = float((2 * np.arange(1, n + 1) - n - 1) @ counts / (n * counts.sum())) if counts.sum() else float("nan")
    out = {"events": float(len(events)), "same_label_pair_rate": float(same), "chance_pair_rate": chance,
           "pair_lift": float(same / chance) if chance else float("nan"), "item_popularity_gini": gini}
    if factors is not None:
        codes = pd.factorize(first)[0]
        centred = factors - factors.mean(axis=0)
        means = np.zeros((codes.max() + 1, factors.shape[1]))
        np.add.at(means, codes, centred)
        means /= np.bincount(codes)[:, None]
        out["factor_label_r2"] = float((means[codes] ** 2).sum() / (centred ** 2).sum())
    return out
