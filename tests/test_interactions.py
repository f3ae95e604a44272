"""Tests of the SIMULATED user-item interactions (paper D) on tiny synthetic item sets."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from clickvision.click.interactions import (InteractionSimConfig, alignment_statistics, item_factors,
                                            simulate_interactions)
from clickvision.data.base import DataError, Interactions

SMALL = dict(interactions_per_item=30.0, density=0.05)  # 600 users over 240 items


def synthetic_items(n_per_class: int = 60, n_classes: int = 4) -> pd.DataFrame:
    labels = np.repeat([f"class{c}" for c in range(n_classes)], n_per_class)
    other = np.tile(["x", "y", "z"], len(labels) // 3 + 1)[: len(labels)]
    return pd.DataFrame({"key": [f"img{i}" for i in range(len(labels))], "label": labels,
                         "labels": [f"{a}|{b}" for a, b in zip(labels, other)]})


@pytest.fixture(scope="module")
def items() -> pd.DataFrame:
    return synthetic_items()


def _probe_accuracy(items: pd.DataFrame, inter: Interactions) -> float:
    """Linear probe: item -> label from the item's co-occurrence (user incidence) vector."""
    row = {k: i for i, k in enumerate(items["key"])}
    ev = inter.events
    x = sp.csr_matrix((np.ones(len(ev)), (ev["item"].map(row), ev["user"])), shape=(len(items), inter.meta["n_users"]))
    return cross_val_score(LogisticRegression(C=0.1, max_iter=2000), x, items["label"], cv=5).mean()


def test_alignment_zero_carries_no_label_information_alignment_one_does(items):
    none = simulate_interactions(items, InteractionSimConfig(label_alignment=0.0, **SMALL), seed=3)
    full = simulate_interactions(items, InteractionSimConfig(label_alignment=1.0, **SMALL), seed=3)
    assert _probe_accuracy(items, none) < 0.35  # chance: 0.25
    assert _probe_accuracy(items, full) > 0.8
    assert none.meta["alignment"]["factor_label_r2"] < 0.05
    assert full.meta["alignment"]["factor_label_r2"] == pytest.approx(1.0)
    assert abs(none.meta["alignment"]["pair_lift"] - 1) < 0.1 < full.meta["alignment"]["pair_lift"] - 1


def test_item_factor_variance_split_matches_alignment():
    labels = [[f"c{i % 200}"] for i in range(4000)]  # 200 class vectors: a stable variance
    for a in (0.0, 0.3, 0.7):
        factors, label_part = item_factors(labels, a, 8, np.random.default_rng(0))
        np.testing.assert_allclose(factors.var(), 1.0, atol=0.1)
        beta = (factors * label_part).sum() / (label_part ** 2).sum()  # regression on the label part
        assert beta == pytest.approx(np.sqrt(a), abs=0.05)


def test_same_seed_same_events_other_seed_other_events(items):
    cfg = InteractionSimConfig(**SMALL)
    a, b = simulate_interactions(items, cfg, seed=1), simulate_interactions(items, cfg, seed=1)
    pd.testing.assert_frame_equal(a.events, b.events)
    assert not a.events.equals(simulate_interactions(items, cfg, seed=2).events)


def test_counts_density_and_ratings(items):
    cfg = InteractionSimConfig(**SMALL)
    inter = simulate_interactions(items, cfg, seed=0)
    ev = inter.events
    assert inter.meta["simulated"] is True and inter.meta["n_users"] == 600
    assert not ev.duplicated(["user", "item"]).any()
    assert ev.groupby("user").size().min() >= cfg.min_per_user
    assert len(ev) / len(items) == pytest.approx(30.0, rel=0.25)
    assert len(ev) / (600 * len(items)) == pytest.approx(0.05, rel=0.25)
    assert set(ev["rating"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert inter.items["n_interactions"].sum() == len(ev)


def test_popularity_bias_makes_popular_items_popular(items):
    cfg = InteractionSimConfig(taste_strength=0.0, noise_rate=0.0, **SMALL)
    inter = simulate_interactions(items, cfg, seed=0)
    assert spearmanr(inter.items["popularity"], inter.items["n_interactions"]).statistic > 0.8


def test_multi_label_column(items):
    cfg = InteractionSimConfig(label_column="labels", label_alignment=1.0, **SMALL)
    inter = simulate_interactions(items, cfg, seed=0)
    assert "labels" in inter.items.columns
    assert inter.meta["alignment"]["pair_lift"] > 1.05


def test_alignment_statistics_hand_checked():
    events = pd.DataFrame({"user": [0, 0, 1, 1], "item": ["a", "b", "a", "c"]})
    items = pd.DataFrame({"item": ["a", "b", "c"], "label": ["x", "x", "y"]})
    s = alignment_statistics(events, items)
    # user 0: one same-label pair of one; user 1: none of one -> 1/2. Event shares x 3/4, y 1/4.
    assert s["same_label_pair_rate"] == pytest.approx(0.5)
    assert s["chance_pair_rate"] == pytest.approx(9 / 16 + 1 / 16)
    assert s["pair_lift"] == pytest.approx(0.5 / (10 / 16))
    assert s["item_popularity_gini"] == pytest.approx(1 / 6)  # counts 1, 1, 2: sum|xi - xj| / (2 n^2 mean)
    r2 = alignment_statistics(events, items, factors=np.array([[1.0], [1.0], [-2.0]]))["factor_label_r2"]
    assert r2 == pytest.approx(1.0)


def test_bad_input_names_the_parameter(items):
    with pytest.raises(ValueError, match="label_alignment"):
        InteractionSimConfig(label_alignment=1.5)
    with pytest.raises(ValueError, match="label_column"):
        InteractionSimConfig(label_column="genre")
    with pytest.raises(DataError, match="'label'"):
        simulate_interactions(items.drop(columns="label"))
    with pytest.raises(DataError, match="duplicate key"):
        simulate_interactions(pd.concat([items, items.head(1)]), InteractionSimConfig(**SMALL))
