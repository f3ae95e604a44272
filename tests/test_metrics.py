"""clickvision.metrics against scikit-learn and hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score

from clickvision import metrics as M


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# ------------------------------------------------------------------ accuracy, RMSE
def test_accuracy_labels_and_scores_match_sklearn(rng):
    y = rng.integers(0, 5, 200)
    scores = rng.normal(size=(200, 5))
    assert M.accuracy(y, scores) == pytest.approx(accuracy_score(y, scores.argmax(1)))
    assert M.accuracy(y, scores.argmax(1)) == pytest.approx(accuracy_score(y, scores.argmax(1)))
    assert M.accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    assert M.accuracy(torch.tensor([0, 1]), torch.tensor([[2.0, 1.0], [0.0, 3.0]])) == 1.0


def test_accuracy_bad_input():
    with pytest.raises(ValueError, match="y_true is empty"):
        M.accuracy([], [])
    with pytest.raises(ValueError, match="y_true"):
        M.accuracy([0, 1, 2], [0, 1])


def test_rmse_hand_values():
    assert M.rmse([0.0, 0.0], [3.0, 4.0]) == pytest.approx(math.sqrt(12.5))
    assert M.rmse(np.ones((3, 2)), np.ones((3, 2))) == 0.0
    with pytest.raises(ValueError, match="shape"):
        M.rmse([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        M.rmse([1.0, float("nan")], [1.0, 2.0])


def test_rmse_normalized_pins_paper_a_reading(rng):
    v = np.abs(rng.normal(size=(50, 20)))
    # scale does not matter; a prediction of zero gives exactly 1 (paper A's 1.00 at lambda=0)
    assert M.rmse_normalized(v, 7.5 * v) == pytest.approx(0.0, abs=1e-12)
    assert M.rmse_normalized(v, np.zeros_like(v)) == pytest.approx(1.0)
    assert M.rmse_normalized(v, -v) == pytest.approx(2.0)
    # hand case: rows [3,4] vs [0,1] -> N' gives [.6,.8] vs [0,1]: squared distance .36+.04
    # a zero true row stays zero: second row distance^2 = ||N'([1,0])||^2 = 1
    got = M.rmse_normalized([[3.0, 4.0], [0.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]])
    assert got == pytest.approx(math.sqrt((0.40 + 1.0) / 2))


def test_euclidean_loss_normalized_hand_case():
    # rows [3,4] vs [0,1]: N' gives [.6,.8] vs [0,1], squared distance .36 + .04 = .40
    # (= 2 - 2 cos, cos = .8); row [1,1] vs [2,2]: same direction, 0. Mean .20, halved: .10
    got = M.euclidean_loss_normalized([[3.0, 4.0], [1.0, 1.0]], [[0.0, 1.0], [2.0, 2.0]])
    assert got == pytest.approx(0.10)
    # zero rows, explicitly: N'(0) = 0, so one zero side contributes 1/2 and both zero 0
    assert M.euclidean_loss_normalized([[3.0, 4.0]], [[0.0, 0.0]]) == pytest.approx(0.5)
    assert M.euclidean_loss_normalized([[0.0, 0.0]], [[0.0, 2.0]]) == pytest.approx(0.5)
    assert M.euclidean_loss_normalized([[0.0, 0.0]], [[0.0, 0.0]]) == 0.0
    # opposite directions: cos = -1, 1 - cos = 2
    assert M.euclidean_loss_normalized([[1.0, 0.0]], [[-5.0, 0.0]]) == pytest.approx(2.0)


def test_euclidean_loss_normalized_is_one_minus_mean_cosine(rng):
    from sklearn.metrics.pairwise import cosine_similarity

    v = np.abs(rng.normal(size=(60, 30)))
    v_hat = rng.normal(size=(60, 30))
    cos = np.diag(cosine_similarity(v, v_hat))  # the oracle: 1 - mean cos on non-zero rows
    assert M.euclidean_loss_normalized(v, v_hat) == pytest.approx(1.0 - cos.mean(), abs=1e-12)
    # an unrelated head (cosine about 0) scores about 1: the paper's 100.0 / 101.0 x 1e-2 at lambda = 0
    assert M.euclidean_loss_normalized(v, v_hat) == pytest.approx(1.0, abs=0.1)
    # reading 2 = reading 1 squared, halved, on the same rows (zero rows included)
    v_hat[:5] = 0.0
    assert M.euclidean_loss_normalized(v, v_hat) == pytest.approx(M.rmse_normalized(v, v_hat) ** 2 / 2)
    # ... and with zero predictions 1 - cos (cos := 0) over-counts them by 1/2 each
    cos = np.diag(cosine_similarity(v, v_hat))
    assert M.euclidean_loss_normalized(v, v_hat) == pytest.approx(1.0 - cos.mean() - 0.5 * 5 / 60)


def test_euclidean_loss_normalized_bad_input():
    with pytest.raises(ValueError, match="v_pred must be 2-dimensional"):
        M.euclidean_loss_normalized([[1.0, 2.0]], [1.0, 2.0])
    with pytest.raises(ValueError, match="v_true has shape"):
        M.euclidean_loss_normalized([[1.0, 2.0]], [[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="v_true is empty"):
        M.euclidean_loss_normalized(np.zeros((0, 3)), np.zeros((0, 3)))


def test_rmse_normalized_needs_matrices():
    with pytest.raises(ValueError, match="v_true must be 2-dimensional"):
        M.rmse_normalized([1.0, 2.0], [1.0, 2.0])


# ------------------------------------------------------------------ word rankings of a click feature (paper A)
def test_word_average_precision_matches_sklearn_per_row_with_ties(rng):
    y = (rng.random((60, 30)) < 0.15).astype(int)
    y[y.sum(1) == 0, 0] = 1  # every row needs a clicked word
    scores = np.round(rng.random((60, 30)) + 0.4 * y, 1)  # rounding makes many ties
    got = M.word_average_precision(y, scores)
    oracle = [average_precision_score(y[i], scores[i]) for i in range(len(y))]
    np.testing.assert_allclose(got, oracle, atol=1e-12)
    assert got.mean() == pytest.approx(average_precision_score(y, scores, average="samples"), abs=1e-12)


def test_word_average_precision_hand_case():
    # row 0: ranking pos, neg, pos -> (1/1 + 2/3) / 2; row 1: the one positive ranked last of 3 -> 1/3
    got = M.word_average_precision([[1, 0, 1], [0, 1, 0]], [[0.9, 0.8, 0.7], [0.9, 0.1, 0.5]])
    np.testing.assert_allclose(got, [5 / 6, 1 / 3])
    with pytest.raises(ValueError, match="no relevant word"):
        M.word_average_precision([[1, 0], [0, 0]], [[0.1, 0.2], [0.3, 0.4]])


def test_precision_at_k_hand_cases_and_ties():
    rel = [[1, 0, 1, 0, 0], [0, 0, 0, 1, 1]]
    scores = [[0.9, 0.8, 0.7, 0.1, 0.0], [0.5, 0.4, 0.3, 0.2, 0.1]]
    np.testing.assert_allclose(M.precision_at_k_rows(rel, scores, 2), [1 / 2, 0.0])
    np.testing.assert_allclose(M.precision_at_k_rows(rel, scores, [3, 5]), [2 / 3, 2 / 5])
    # R-precision: |A| = 2 in both rows -> the same as k = 2
    np.testing.assert_allclose(M.r_precision(rel, scores), [1 / 2, 0.0])
    # ties at the cut-off: top 2 of (1.0 | 0.5, 0.5, 0.5) with the relevant word among the three tied:
    # one place left for three tied words, one of them relevant -> 1/3 of a hit in expectation
    np.testing.assert_allclose(M.precision_at_k_rows([[1, 1, 0, 0]], [[1.0, 0.5, 0.5, 0.5]], 2), [(1 + 1 / 3) / 2])
    # all scores tied (an all-zero prediction): precision = the share of relevant words, at any k
    np.testing.assert_allclose(M.precision_at_k_rows([[1, 0, 0, 0]], [[0.0] * 4], 3), [1 / 4])


def test_precision_at_k_ties_equal_the_mean_over_orderings(rng):
    """Oracle for the tie rule: the mean over every order of the tied words of the plain precision@k."""
    from itertools import permutations

    rel = np.array([1, 0, 1, 1, 0, 0])
    scores = np.array([0.9, 0.5, 0.5, 0.5, 0.5, 0.1])
    tied = [1, 2, 3, 4]
    for k in range(1, 7):
        vals = []
        for perm in permutations(tied):
            order = [0, *perm, 5]
            vals.append(rel[order[:k]].mean())
        assert M.precision_at_k_rows(rel[None], scores[None], k)[0] == pytest.approx(np.mean(vals))


def test_r_precision_matches_sklearn_precision_recall_curve(rng):
    """Without ties, precision at the |A|-th highest score is sklearn's precision at that threshold."""
    from sklearn.metrics import precision_recall_curve

    y = (rng.random((20, 40)) < 0.2).astype(int)
    y[y.sum(1) == 0, 0] = 1
    scores = rng.normal(size=(20, 40))
    got = M.r_precision(y, scores)
    for i in range(len(y)):
        prec, _, thr = precision_recall_curve(y[i], scores[i])
        kth = np.sort(scores[i])[::-1][y[i].sum() - 1]
        assert got[i] == pytest.approx(prec[np.flatnonzero(thr == kth)[0]])


def test_matched_recall_at_k_matches_sklearn_top_k_accuracy(rng):
    """Without ties, recall@k of matched pairs is sklearn's top-k accuracy with row i's label i; R-sum adds
    both directions over k = 1, 5, 10."""
    from sklearn.metrics import top_k_accuracy_score

    n = 30
    sim = rng.normal(size=(n, n)) + 1.5 * np.eye(n)
    labels = np.arange(n)
    for k in (1, 5, 10):
        assert M.matched_recall_at_k(sim, k) == pytest.approx(top_k_accuracy_score(labels, sim, k=k, labels=labels))
        assert M.matched_recall_at_k(torch.tensor(sim.T), k) == pytest.approx(
            top_k_accuracy_score(labels, sim.T, k=k, labels=labels))
    want = sum(top_k_accuracy_score(labels, m, k=k, labels=labels) for m in (sim, sim.T) for k in (1, 5, 10))
    assert M.matched_rsum(sim) == pytest.approx(want)
    assert M.matched_rsum(np.eye(4)) == pytest.approx(6.0) and M.matched_recall_at_k(np.eye(4), 1) == 1.0


def test_matched_recall_counts_ties_against_the_match_and_names_bad_input():
    # a constant score: every candidate ties with the match, so it ranks last (n), not first
    assert M.matched_recall_at_k(np.zeros((5, 5)), 4) == 0.0 and M.matched_recall_at_k(np.zeros((5, 5)), 5) == 1.0
    sim = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 0.0], [0.0, 3.0, 1.0]])  # row 0 tied with one, row 2 beaten once
    assert M.matched_recall_at_k(sim, 1) == pytest.approx(1 / 3)
    assert M.matched_recall_at_k(sim, 2) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="square"):
        M.matched_recall_at_k(np.zeros((2, 3)), 1)
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        M.matched_recall_at_k(np.eye(2), 0)
    with pytest.raises(ValueError, match="similarity contains NaN"):
        M.matched_rsum(np.array([[np.nan, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="ks must name"):
        M.matched_rsum(np.eye(2), ks=())


def test_precision_at_k_bad_input():
    with pytest.raises(ValueError, match="k must lie in"):
        M.precision_at_k_rows([[1, 0]], [[0.1, 0.2]], 3)
    with pytest.raises(ValueError, match="k must lie in"):
        M.precision_at_k_rows([[1, 0]], [[0.1, 0.2]], 0)
    with pytest.raises(ValueError, match="k must hold integers"):
        M.precision_at_k_rows([[1, 0]], [[0.1, 0.2]], 1.5)
    with pytest.raises(ValueError, match="one integer per row"):
        M.precision_at_k_rows([[1, 0]], [[0.1, 0.2]], [1, 1])
    with pytest.raises(ValueError, match="relevant must be binary"):
        M.precision_at_k_rows([[2, 0]], [[0.1, 0.2]], 1)
    with pytest.raises(ValueError, match="no relevant word"):
        M.r_precision([[0, 0]], [[0.1, 0.2]])


# ------------------------------------------------------------------ macro mAP (paper D)
def test_average_precision_macro_matches_sklearn_with_ties_and_empty_class(rng):
    y = (rng.random((300, 8)) < 0.2).astype(int)
    y[:, 3] = 0  # a class without positives is skipped
    scores = np.round(rng.random((300, 8)) + 0.3 * y, 1)  # rounding makes many ties
    kept = y.sum(0) > 0
    oracle = average_precision_score(y[:, kept], scores[:, kept], average="macro")
    assert M.average_precision_macro(y, scores) == pytest.approx(oracle, abs=1e-12)


def test_average_precision_hand_case():
    # ranking: pos, neg, pos -> precisions 1/1 and 2/3 at the hits
    assert M.average_precision_macro([[1], [0], [1]], [[0.9], [0.8], [0.7]]) == pytest.approx(5 / 6)
    # a tie between a positive and a negative at the top: precision 1/2 for that positive
    assert M.average_precision_macro([[1], [0]], [[0.5], [0.5]]) == pytest.approx(0.5)


def test_average_precision_macro_bad_input():
    with pytest.raises(ValueError, match="no positive"):
        M.average_precision_macro(np.zeros((4, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="y_true must be binary"):
        M.average_precision_macro([[2, 0]], [[0.1, 0.2]])
    with pytest.raises(ValueError, match="y_score"):
        M.average_precision_macro([[1, 0]], [[0.1, 0.2, 0.3]])


# ------------------------------------------------------------------ AUC
def test_auc_binary_matches_sklearn_with_ties(rng):
    y = rng.integers(0, 2, 500)
    s = np.round(rng.random(500) + 0.4 * y, 1)
    assert M.auc_binary(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert M.auc_binary([0, 1], [0.3, 0.3]) == 0.5
    with pytest.raises(ValueError, match="both classes"):
        M.auc_binary([1, 1, 1], [0.1, 0.2, 0.3])


def _masks(rng, n_users=30, n_items=40):
    scores = np.round(rng.random((n_users, n_items)), 1)  # ties on purpose
    heldout = rng.random((n_users, n_items)) < 0.15
    exclude = (rng.random((n_users, n_items)) < 0.3) & ~heldout
    heldout[0] = False  # a user with nothing held out
    heldout[1] = ~exclude[1]  # a user with no negative left
    return scores, heldout, exclude


def test_interaction_auc_matches_sklearn_per_user(rng):
    scores, heldout, exclude = _masks(rng)
    expected = []
    for u in range(scores.shape[0]):
        cand = ~exclude[u]
        yu = heldout[u][cand]
        if 0 < yu.sum() < yu.size:
            expected.append(roc_auc_score(yu, scores[u][cand]))
    res = M.interaction_auc(scores, heldout, exclude, return_per_user=True, block_size=7)
    assert res.mean == pytest.approx(np.mean(expected), abs=1e-12)
    assert res.n_skipped == scores.shape[0] - len(expected) >= 2
    assert np.isnan(res.values[0]) and np.isnan(res.values[1])
    assert M.interaction_auc(scores, heldout, exclude) == pytest.approx(res.mean)


def test_interaction_auc_ties_zero_counts_strict_wins(rng):
    scores, heldout, exclude = _masks(rng)
    expected = []
    for u in range(scores.shape[0]):
        pos = scores[u][heldout[u]]
        neg = scores[u][~heldout[u] & ~exclude[u]]
        if pos.size and neg.size:
            expected.append(np.mean(pos[:, None] > neg[None, :]))  # Cornac's rule
    got = M.interaction_auc(scores, heldout, exclude, ties="zero")
    assert got == pytest.approx(np.mean(expected), abs=1e-12)
    assert got < M.interaction_auc(scores, heldout, exclude)  # ties exist, so strictly lower


def test_interaction_auc_hand_case_and_errors():
    # one user: held-out item scores 0.9; negatives 0.5 and 0.95; item 3 is a training item
    scores = [[0.9, 0.5, 0.95, 0.99]]
    assert M.interaction_auc(scores, [[1, 0, 0, 0]], [[0, 0, 0, 1]]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="overlap"):
        M.interaction_auc(scores, [[1, 0, 0, 0]], [[1, 0, 0, 0]])
    with pytest.raises(ValueError, match="no users"):
        M.interaction_auc(scores, [[0, 0, 0, 0]])
    with pytest.raises(ValueError, match="ties"):
        M.interaction_auc(scores, [[1, 0, 0, 0]], ties="ignore")


# ------------------------------------------------------------------ MAP (paper C eq. 8)
def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


def test_retrieval_map_matches_sklearn_per_query(rng):
    q, g = rng.normal(size=(60, 16)), rng.normal(size=(90, 16))
    ql, gl = rng.integers(0, 5, 60), rng.integers(0, 5, 90)
    sim = _cosine(q, g)
    oracle = np.mean([average_precision_score(gl == ql[i], sim[i]) for i in range(60)])
    for block in (7, 512):
        assert M.retrieval_map(q, g, ql, gl, block_size=block) == pytest.approx(oracle, abs=1e-12)
    # cosine: rescaling embeddings changes nothing; torch tensors are accepted
    assert M.retrieval_map(torch.tensor(3 * q), torch.tensor(g), ql, gl) == pytest.approx(oracle)


def test_retrieval_map_hand_case_and_tie_order():
    q = np.array([[1.0, 0.0]])
    g = np.array([[1.0, 0.0], [0.9, 0.1], [0.5, 0.5], [0.0, 1.0]])  # already in ranked order
    # relevant at ranks 1 and 3 -> AP = (1/1 + 2/3) / 2
    assert M.retrieval_map(q, g, ["a"], ["a", "b", "a", "b"]) == pytest.approx(5 / 6)
    # all similarities tied: ties are broken by gallery index (documented), not averaged
    tied = np.ones((4, 2))
    assert M.retrieval_map(q, tied, [1], [0, 1, 0, 1]) == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert M.retrieval_map(q, tied, [1], [1, 1, 0, 0]) == pytest.approx(1.0)
    assert M.retrieval_map(q, tied, [1], [0, 0, 1, 1]) == pytest.approx((1 / 3 + 2 / 4) / 2)


def test_retrieval_map_skips_queries_without_relevant_items(rng):
    q, g = rng.normal(size=(5, 4)), rng.normal(size=(6, 4))
    ql, gl = np.array([0, 1, 9, 0, 9]), np.array([0, 1, 0, 1, 0, 1])
    res = M.retrieval_map(q, g, ql, gl, return_per_query=True)
    assert res.n_skipped == 2 and np.isnan(res.values[[2, 4]]).all()
    assert res.mean == pytest.approx(np.nanmean(res.values))
    with pytest.raises(ValueError, match="no queries"):
        M.retrieval_map(q, g, np.full(5, 7), gl)


def test_retrieval_map_exclude_self_equals_removing_the_query(rng):
    x, lab = rng.normal(size=(40, 8)), rng.integers(0, 4, 40)
    got = M.retrieval_map(x, x, lab, lab, exclude_self=True, return_per_query=True)
    for i in (0, 17, 39):
        keep = np.arange(40) != i
        ap = M.retrieval_map(x[i : i + 1], x[keep], lab[i : i + 1], lab[keep])
        assert got.values[i] == pytest.approx(ap)
    with pytest.raises(ValueError, match="exclude_self"):
        M.retrieval_map(x[:3], x, lab[:3], lab, exclude_self=True)


def test_retrieval_map_bad_input(rng):
    x = rng.normal(size=(4, 3))
    with pytest.raises(ValueError, match="query_labels has 3 entries"):
        M.retrieval_map(x, x, [0, 1, 2], [0, 1, 2, 3])
    with pytest.raises(ValueError, match="dimension"):
        M.retrieval_map(x, x[:, :2], [0] * 4, [0] * 4)
    with pytest.raises(ValueError, match="gallery_emb is empty"):
        M.retrieval_map(x, np.zeros((0, 3)), [0] * 4, [])


def test_cross_modal_map_averages_both_directions(rng):
    img, txt, lab = rng.normal(size=(30, 6)), rng.normal(size=(30, 6)), rng.integers(0, 3, 30)
    res = M.cross_modal_map(img, txt, lab)
    assert res["img2txt"] == pytest.approx(M.retrieval_map(img, txt, lab, lab))
    assert res["txt2img"] == pytest.approx(M.retrieval_map(txt, img, lab, lab))
    assert res["average"] == pytest.approx((res["img2txt"] + res["txt2img"]) / 2)


# ------------------------------------------------------------------ DCG@25 (paper B eq. 4)
def test_dcg_25_excellent_scores_one():
    ideal = sum(7 / math.log2(i + 1) for i in range(1, 26))  # 56.92236
    assert M.dcg_at_k([3] * 25) == pytest.approx(0.01757 * ideal, abs=1e-12)
    assert M.dcg_at_k([3] * 25) == pytest.approx(1.0, abs=2e-4)  # 1.000126 with Z = 0.01757
    assert M.dcg_at_k([3] * 25, normalizer="exact") == pytest.approx(1.0, abs=1e-12)
    assert M.dcg_normalizer(25, "exact") == pytest.approx(0.0175678, abs=1e-7)
    assert M.dcg_at_k([0] * 25) == 0.0


def test_dcg_hand_computed_three_items():
    # Excellent, Good, Bad: 7/log2(2) + 3/log2(3) + 0/log2(4)
    expected = 0.01757 * (7.0 + 3.0 / math.log2(3))
    assert M.dcg_at_k([3, 2, 0]) == pytest.approx(expected, abs=1e-12)
    # a short list is not padded: the normaliser stays the one for k = 25
    assert M.dcg_at_k([3] * 10) < 0.6
    # a long list is cut at k
    assert M.dcg_at_k([3, 2, 0] + [3] * 30) == pytest.approx(M.dcg_at_k([3, 2, 0] + [3] * 22))
    assert M.dcg_at_k([3] * 10, k=10, normalizer="exact") == pytest.approx(1.0)
    assert M.dcg_at_k([3, 2, 0], normalizer=1.0) == pytest.approx(7.0 + 3.0 / math.log2(3))


def test_dcg_from_scores_and_mean():
    rel = [0, 2, 3]
    assert M.dcg_at_k_from_scores([0.1, 0.5, 0.9], rel) == pytest.approx(M.dcg_at_k([3, 2, 0]))
    assert M.mean_dcg_at_k([[3] * 25, [0, 0]]) == pytest.approx(M.dcg_at_k([3] * 25) / 2)


def test_dcg_bad_input():
    with pytest.raises(ValueError, match="relevances is empty"):
        M.dcg_at_k([])
    with pytest.raises(ValueError, match="relevance_lists is empty"):
        M.mean_dcg_at_k([])
    with pytest.raises(ValueError, match="normalizer='paper'"):
        M.dcg_at_k([3], k=10)
    with pytest.raises(ValueError, match="non-negative"):
        M.dcg_at_k([3, -1])
    with pytest.raises(ValueError, match="k must be"):
        M.dcg_at_k([3], k=0)
