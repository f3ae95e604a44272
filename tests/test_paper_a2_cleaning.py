"""Paper A Table II cleaning: bands, click halves, thresholds, and scores against sklearn."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from clickvision import cleaning as K


def _classes(sizes, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.concatenate([[f"c{i}"] * n for i, n in enumerate(sizes)])
    clicks = rng.permutation(len(labels)).astype(float)  # distinct click counts
    prob = rng.uniform(0, 1, len(labels))
    return prob, clicks, labels


def test_paper_thresholds_per_band_and_half():
    sizes = [5, 8, 99, 100, 299, 300, 301]  # every band, both sides of each printed edge
    prob, clicks, labels = _classes(sizes)
    res = K.clean_by_clicks(prob, clicks, labels, edge_scale=1)
    assert res.edges == (8, 100, 300)
    expected_band = {5: 0, 8: 1, 99: 1, 100: 2, 299: 2, 300: 3, 301: 3}
    assert K.PAPER_THRESHOLDS == ((0, 0), (0.2, 0.4), (0.3, 0.5), (0.4, 0.6))  # Table II as printed
    for i, n in enumerate(sizes):
        rows = np.flatnonzero(labels == f"c{i}")
        b = expected_band[n]
        assert (res.band[rows] == b).all(), n
        # The ceil(n/2) images with most clicks form the first half.
        order = rows[np.argsort(-clicks[rows])]
        first, second = order[: (n + 1) // 2], order[(n + 1) // 2:]
        assert (res.half[first] == "first").all() and (res.half[second] == "second").all()
        t1, t2 = K.PAPER_THRESHOLDS[b]
        assert (res.threshold[first] == t1).all() and (res.threshold[second] == t2).all()
        assert (res.keep[first] == (prob[first] >= t1)).all()
        assert (res.keep[second] == (prob[second] >= t2)).all()
    assert res.keep[labels == "c0"].all()  # n < 8: "All" kept
    assert res.stages.set_index("band").loc["total", "kept"] == res.keep.sum()
    assert res.stages.set_index("band").loc["total", "images"] == len(labels)
    st = res.stages.iloc[:-1]
    assert (st.first + st.second == st.images).all() and (st.first_kept + st.second_kept == st.kept).all()
    assert st.classes.tolist() == [1, 2, 2, 2]


def test_hand_checked_class():
    # One class of 10 (band 8 <= n < 100): top-5 clicks need 0.2, bottom-5 need 0.4.
    clicks = np.array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    prob = np.array([0.1, 0.25, 0.2, 0.9, 0.05, 0.39, 0.4, 0.5, 0.0, 1.0])
    res = K.clean_by_clicks(prob, clicks, ["a"] * 10, edge_scale=1)
    assert res.keep.tolist() == [False, True, True, True, False, False, True, True, False, True]


def test_edges_rescaled_to_class_sizes():
    prob, clicks, labels = _classes([4, 10, 30, 60])  # mean 26
    res = K.clean_by_clicks(prob, clicks, labels)  # edge_scale="mean"
    scale = 26 / (95041 / 283)
    assert res.edges == pytest.approx((8 * scale, 100 * scale, 300 * scale))
    # edges ~0.62, 7.7, 23.2: sizes 4 -> band 1, 10 -> band 2, 30 and 60 -> band 3
    assert [int(res.band[labels == c][0]) for c in ("c0", "c1", "c2", "c3")] == [1, 2, 3, 3]
    custom = K.clean_by_clicks(prob, clicks, labels, band_edges=(20,), thresholds=((0, 0), (0.5, 0.5)), edge_scale=1)
    assert custom.keep[labels == "c0"].all() and custom.keep[labels == "c1"].all()
    assert (custom.keep[np.isin(labels, ["c2", "c3"])] == (prob[np.isin(labels, ["c2", "c3"])] >= 0.5)).all()


@pytest.mark.parametrize("kwargs, match", [
    ({"band_edges": (100, 8, 300)}, "increasing"),
    ({"thresholds": ((0, 0), (0.2, 0.4))}, "one \\(first, second\\) pair per band"),
    ({"thresholds": ((0, 0), (0.2, 1.4), (0.3, 0.5), (0.4, 0.6))}, "in \\[0, 1\\]"),
    ({"edge_scale": 0}, "edge_scale"),
    ({"edge_scale": "median"}, "edge_scale"),
])
def test_bad_parameters_are_named(kwargs, match):
    prob, clicks, labels = _classes([10, 12])
    with pytest.raises(ValueError, match=match):
        K.clean_by_clicks(prob, clicks, labels, **kwargs)


def test_bad_inputs_are_named():
    prob, clicks, labels = _classes([10, 12])
    with pytest.raises(ValueError, match="own_prob.*NaN"):
        K.clean_by_clicks(np.where(np.arange(22) == 3, np.nan, prob), clicks, labels)
    with pytest.raises(ValueError, match="clicks has 21"):
        K.clean_by_clicks(prob, clicks[:-1], labels)
    with pytest.raises(ValueError, match="own_prob must be probabilities"):
        K.clean_by_clicks(prob + 1, clicks, labels)
    with pytest.raises(ValueError, match="labels has missing"):
        K.clean_by_clicks(prob, clicks, np.where(np.arange(22) == 0, None, labels))
    with pytest.raises(ValueError, match="no images"):
        K.clean_by_clicks([], [], [])


def test_scores_match_sklearn():
    rng = np.random.default_rng(4)
    for _ in range(5):
        noisy = rng.random(200) < 0.2
        keep = np.where(noisy, rng.random(200) < 0.3, rng.random(200) < 0.9)
        got = K.cleaning_scores(keep, noisy)
        removed = ~keep
        assert got["precision"] == pytest.approx(precision_score(noisy, removed))
        assert got["recall"] == pytest.approx(recall_score(noisy, removed))
        assert got["f1"] == pytest.approx(f1_score(noisy, removed))
        assert got["noise_after"] == pytest.approx(noisy[keep].mean())
        assert got["noise_before"] == pytest.approx(noisy.mean())
    nothing = K.cleaning_scores(np.ones(5, bool), np.array([1, 0, 0, 1, 0]))
    assert np.isnan(nothing["precision"]) and nothing["recall"] == 0.0
    with pytest.raises(ValueError, match="keep has 3"):
        K.cleaning_scores(np.ones(3, bool), np.ones(4, bool))


def test_own_label_probability_and_out_of_fold():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    assert K.own_label_probability(probs, np.array([0, 1])).tolist() == [0.7, 0.3]
    with pytest.raises(ValueError, match="class indices"):
        K.own_label_probability(probs, np.array([0, 3]))
    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b", "c"], 12)
    x = rng.normal(size=(36, 4)) + 3.0 * (y[:, None] == np.array(["a", "b", "c", "a"])[None, :])
    flipped = y.copy()
    flipped[:4] = "b"  # four planted label errors score lower than the clean rows
    q = K.out_of_fold_own_label_probability(x, flipped, n_splits=3)
    assert q.shape == (36,) and ((0 <= q) & (q <= 1)).all() and q[4:].mean() > 0.5
    assert q[:4].mean() < q[4:].mean()
    with pytest.raises(ValueError, match="fewer than n_splits"):
        K.out_of_fold_own_label_probability(x[10:20], y[10:20], n_splits=5)  # 2 of "a", 8 of "b"
