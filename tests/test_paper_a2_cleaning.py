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


# --- thresholds calibrated to a keep rate, the rank rule, removal against random (issue #18 item 5) ---

def test_paper_keep_rate_is_the_papers_count():
    assert K.PAPER_KEEP_RATE == pytest.approx(32691 / 95041) and round(100 * K.PAPER_KEEP_RATE, 1) == 34.4


def test_calibrated_hand_checked_class():
    # The class of test_hand_checked_class: first half (rows 0-4) threshold 0.2, second (5-9) 0.4.
    # Ratios p / t: 0.5, 1.25, 1.0, 4.5, 0.25 | 0.975, 1.0, 1.25, 0.0, 2.5.
    clicks = np.array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    prob = np.array([0.1, 0.25, 0.2, 0.9, 0.05, 0.39, 0.4, 0.5, 0.0, 1.0])
    res = K.clean_by_clicks(prob, clicks, ["a"] * 10, edge_scale=1, rule="calibrated", keep_rate=0.2)
    assert res.rule == "calibrated" and res.scale == pytest.approx(2.5)
    assert np.flatnonzero(res.keep).tolist() == [3, 9] and res.keep_rate == pytest.approx(0.2)
    assert res.threshold.tolist() == pytest.approx([0.5] * 5 + [1.0] * 5)  # Table II's pair times 2.5
    res = K.clean_by_clicks(prob, clicks, ["a"] * 10, edge_scale=1, rule="calibrated", keep_rate=0.7)
    assert res.scale == pytest.approx(0.975) and np.flatnonzero(res.keep).tolist() == [1, 2, 3, 5, 6, 7, 9]
    # A tie at the solved ratio keeps both tied images: 0.3 asks for 3, ratio 1.25 is shared by rows 1 and 7.
    res = K.clean_by_clicks(prob, clicks, ["a"] * 10, edge_scale=1, rule="calibrated", keep_rate=0.3)
    assert res.scale == pytest.approx(1.25) and np.flatnonzero(res.keep).tolist() == [1, 3, 7, 9]


@pytest.mark.parametrize("keep_rate", [0.05, 0.2, K.PAPER_KEEP_RATE, 0.6, 0.95, 1.0])
def test_calibration_hits_the_keep_rate(keep_rate):
    sizes = [5, 8, 40, 99, 100, 150, 299, 300, 420]  # every band of the printed edges, "All" included
    prob, clicks, labels = _classes(sizes, seed=3)  # continuous probabilities: no ties
    res = K.clean_by_clicks(prob, clicks, labels, edge_scale=1, rule="calibrated", keep_rate=keep_rate)
    n = len(labels)
    assert res.keep.sum() == max(5, round(keep_rate * n)) and res.keep_rate == pytest.approx(res.keep.mean())
    paper = K.clean_by_clicks(prob, clicks, labels, edge_scale=1)
    assert (res.band == paper.band).all() and (res.half == paper.half).all()  # Table II's structure kept
    t = paper.threshold
    assert res.keep[t == 0].all()  # the "All" band stays whole
    assert res.threshold[t > 0] / t[t > 0] == pytest.approx(np.full((t > 0).sum(), res.scale))  # one factor
    assert (prob[res.keep & (t > 0)] >= res.threshold[res.keep & (t > 0)] - 1e-12).all()
    assert (prob[~res.keep] < res.threshold[~res.keep]).all()
    assert res.stages.set_index("band").loc["total", "kept"] == res.keep.sum()


def test_calibrated_keep_rate_is_monotone_and_paper_rate_printed():
    prob, clicks, labels = _classes([30, 60, 90], seed=5)
    kept = [K.clean_by_clicks(prob, clicks, labels, rule="calibrated", keep_rate=r).keep for r in (0.1, 0.3, 0.5, 0.9)]
    assert all((a <= b).all() for a, b in zip(kept[:-1], kept[1:]))  # a higher rate keeps a superset
    paper = K.clean_by_clicks(prob, clicks, labels)
    assert paper.rule == "paper" and paper.scale == 1.0 and paper.keep_rate == pytest.approx(paper.keep.mean())


def test_calibration_cannot_go_below_the_all_band():
    prob, clicks, labels = _classes([5, 5, 20], seed=1)  # 10 of 30 images in n < 8: always kept
    with pytest.raises(ValueError, match="keep_rate = 0.2 cannot be reached"):
        K.clean_by_clicks(prob, clicks, labels, edge_scale=1, rule="calibrated", keep_rate=0.2)
    only = K.clean_by_clicks(prob, clicks, labels, edge_scale=1, rule="calibrated", keep_rate=1 / 3)
    assert np.flatnonzero(only.keep).tolist() == list(range(10))


def test_rank_rule_keeps_the_top_share_per_class():
    sizes = [5, 10, 31]
    prob, clicks, labels = _classes(sizes, seed=2)
    res = K.clean_by_clicks(prob, clicks, labels, rule="rank", keep_rate=0.34)
    assert res.rule == "rank" and np.isnan(res.scale)
    for i, (n, k) in enumerate(zip(sizes, (2, 3, 11))):  # round(0.34 n): 1.7, 3.4, 10.54
        rows = np.flatnonzero(labels == f"c{i}")
        top = rows[np.argsort(-prob[rows])[:k]]
        assert set(np.flatnonzero(res.keep & (labels == f"c{i}"))) == set(top)
        assert (res.threshold[rows] == prob[top].min()).all()
    tiny = K.clean_by_clicks(prob, clicks, labels, rule="rank", keep_rate=0.01)
    assert [int(tiny.keep[labels == f"c{i}"].sum()) for i in range(3)] == [1, 1, 1]  # no class emptied
    assert K.clean_by_clicks(prob, clicks, labels, rule="rank", keep_rate=1.0).keep.all()


@pytest.mark.parametrize("kwargs, match", [
    ({"rule": "calibrated", "keep_rate": 0.0}, "keep_rate"),
    ({"rule": "rank", "keep_rate": -0.1}, "keep_rate"),
    ({"rule": "calibrated", "keep_rate": 1.5}, "keep_rate"),
    ({"rule": "calibrated", "keep_rate": float("nan")}, "keep_rate"),
    ({"rule": "calibrated", "keep_rate": "34%"}, "keep_rate"),
    ({"rule": "quantile"}, "rule must be one of"),
])
def test_bad_rule_and_keep_rate_are_named(kwargs, match):
    prob, clicks, labels = _classes([10, 12])
    with pytest.raises(ValueError, match=match):
        K.clean_by_clicks(prob, clicks, labels, **kwargs)


def test_removal_scores_hand_computed_case():
    # 8 images, 3 noisy (rows 0, 1, 2); removed rows 0, 1, 5 -> TP 2 of 3 removed, 2 of 3 noisy found.
    noisy = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)
    keep = np.array([0, 0, 1, 1, 1, 0, 1, 1], bool)
    score = np.array([0.9, 0.8, 0.3, 0.1, 0.2, 0.7, 0.4, 0.3])
    # AUROC: pairs (noisy, clean) with the noisy scored higher, ties half: 0.9 and 0.8 beat all 5;
    # 0.3 beats 0.1 and 0.2, ties 0.3, loses to 0.7 and 0.4 -> (5 + 5 + 2.5) / 15.
    got = K.removal_scores(keep, noisy, score)
    assert got["precision"] == pytest.approx(2 / 3) and got["recall"] == pytest.approx(2 / 3)
    assert got["auroc"] == pytest.approx(12.5 / 15)
    assert got["random_precision"] == pytest.approx(3 / 8) and got["random_recall"] == pytest.approx(3 / 8)
    assert got["random_auroc"] == 0.5 and got["keep_rate"] == pytest.approx(5 / 8)
    vals = K.removal_item_values(keep, noisy, score)
    assert vals.mean().to_dict() == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "auroc": 12.5 / 15,
                                                   "random_precision": 3 / 8, "random_recall": 3 / 8,
                                                   "random_auroc": 0.5})
    # Placement values by hand: noisy row 2 beats 2.5 of 5 clean images -> A + 8/3 (0.5 - A).
    a = 12.5 / 15
    assert vals["auroc"].iloc[2] == pytest.approx(a + 8 / 3 * (0.5 - a))
    # Clean row 5 (0.7) is beaten by 2 of 3 noisy images -> A + 8/5 (2/3 - A).
    assert vals["auroc"].iloc[5] == pytest.approx(a + 8 / 5 * (2 / 3 - a))


def test_removal_values_match_sklearn_and_its_bootstrap():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(7)
    n = 400
    noisy = rng.random(n) < 0.2
    score = rng.normal(size=n) + 0.8 * noisy
    score[::7] = np.round(score[::7], 1)  # some ties
    keep = score < np.quantile(score, 0.66)
    vals = K.removal_item_values(keep, noisy, score)
    got = K.removal_scores(keep, noisy, score)
    assert vals["precision"].mean() == pytest.approx(precision_score(noisy, ~keep)) == pytest.approx(got["precision"])
    assert vals["recall"].mean() == pytest.approx(recall_score(noisy, ~keep)) == pytest.approx(got["recall"])
    assert vals["auroc"].mean() == pytest.approx(roc_auc_score(noisy, score)) == pytest.approx(got["auroc"])
    # The bootstrap of the per-image means (what the claims engine resamples) has the spread of a
    # direct bootstrap of scikit-learn's statistics on the same resamples.
    idx = rng.integers(0, n, size=(500, n))
    for col, direct in (("precision", lambda i: precision_score(noisy[i], ~keep[i])),
                        ("recall", lambda i: recall_score(noisy[i], ~keep[i])),
                        ("auroc", lambda i: roc_auc_score(noisy[i], score[i]))):
        lin = vals[col].to_numpy()[idx].mean(axis=1)
        ref = np.array([direct(i) for i in idx])
        assert lin.std() == pytest.approx(ref.std(), rel=0.1), col
        assert np.corrcoef(lin, ref)[0, 1] > 0.95, col


def test_removal_needs_both_sides():
    noisy = np.array([1, 0, 0, 1], bool)
    with pytest.raises(ValueError, match="keep must remove some"):
        K.removal_scores(np.ones(4, bool), noisy, np.arange(4.0))
    with pytest.raises(ValueError, match="noisy must hold both"):
        K.removal_item_values(np.array([1, 0, 1, 0], bool), np.zeros(4, bool), np.arange(4.0))
    with pytest.raises(ValueError, match="noise_score has 3"):
        K.removal_scores(np.array([1, 0, 1, 0], bool), noisy, np.arange(3.0))
