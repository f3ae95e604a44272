"""Evaluation metrics of the four papers, in NumPy, each checked against an oracle in tests.

| metric | paper | function |
|---|---|---|
| recognition accuracy (Acc-S, Acc-T) | A, Tables III-IX | :func:`accuracy` |
| RMSE-S of the predicted click feature, reading 1 (pinned in docs/READING-NOTES.md) | A, Table VII | :func:`rmse_normalized` |
| RMSE-S, reading 2: Caffe's ``EuclideanLoss`` of l2-normalised vectors | A, Table VII | :func:`euclidean_loss_normalized` |
| per image: word AP and precision at the number of clicked words (R-precision) of a predicted click feature | A, Fig. 10, Table III | :func:`word_average_precision`, :func:`r_precision`, :func:`precision_at_k_rows` |
| recall@K of matched pairs and their R-sum (VSE++'s model selection, Faghri et al.) | A, Table VIII's VSE++ | :func:`matched_recall_at_k`, :func:`matched_rsum` |
| DCG@25 with Z = 0.01757 | B, eq. (4) | :func:`dcg_at_k`, :func:`mean_dcg_at_k` |
| MAP over the whole ranking (Img->Txt, Txt->Img) | C, eq. (8) | :func:`retrieval_map`, :func:`cross_modal_map` |
| macro mAP over classes with a positive | D, section 4.1.4 | :func:`average_precision_macro` |
| AUC of held-out interactions, per user | D, Table 3 | :func:`interaction_auc` |

Every function accepts NumPy arrays, lists or (CPU or CUDA) torch tensors, and raises a
``ValueError`` naming the offending argument on empty, mis-shaped or non-finite input.
Bootstrap intervals and paired tests live in :mod:`clickvision.stats`.
"""
from __future__ import annotations

from typing import Any, Literal, NamedTuple, Sequence

import numpy as np
from scipy.stats import rankdata

#: Paper B's relevance grades (eq. 4): Excellent = 3, Good = 2, Bad = 0.
RELEVANCE_GRADES: dict[str, int] = {"Excellent": 3, "Good": 2, "Bad": 0}
#: Paper B's printed normaliser Z_25. 25 Excellent results then score 0.01757 * 56.92236 =
#: 1.000126 (the exact normaliser, 1 / 56.92236 = 0.01756779, is ``normalizer="exact"``).
PAPER_DCG25_NORMALIZER = 0.01757


class MeanOverQueries(NamedTuple):
    """A metric averaged over queries (or users), with the per-query values kept.

    ``values`` holds NaN for the queries that were skipped (no relevant item, or no
    negative for an AUC); ``mean`` is the mean over the others.
    """

    mean: float
    values: np.ndarray
    n_skipped: int


def _as_array(x: Any, name: str, ndim: int | None = None, dtype: Any = None) -> np.ndarray:
    """Convert ``x`` (array, list, torch tensor) to a NumPy array and check it is usable."""
    if hasattr(x, "detach"):  # a torch tensor, on any device
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=dtype)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _as_binary(x: Any, name: str, ndim: int) -> np.ndarray:
    arr = _as_array(x, name, ndim)
    if arr.dtype != bool:
        if not np.all((arr == 0) | (arr == 1)):
            raise ValueError(f"{name} must be binary (0/1 or bool); found other values")
        arr = arr.astype(bool)
    return arr


def _same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}")


def _l2_normalize_rows(x: np.ndarray) -> np.ndarray:
    """N'(x) row by row; a zero row stays zero (N'(0) is undefined, paper A eq. 1)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x, dtype=float), where=norms > 0)


# ---------------------------------------------------------------- paper A: recognition, RMSE-S
def accuracy(y_true: Any, y_pred_or_scores: Any) -> float:
    """Top-1 accuracy (paper A's Acc-S / Acc-T).

    ``y_pred_or_scores`` is either predicted labels, shape (n,), or a score matrix, shape
    (n, C), whose row-wise argmax is the prediction.
    """
    y_true = _as_array(y_true, "y_true", 1)
    pred = _as_array(y_pred_or_scores, "y_pred_or_scores")
    if pred.ndim == 2:
        pred = pred.argmax(axis=1)
    elif pred.ndim != 1:
        raise ValueError(f"y_pred_or_scores must be (n,) labels or (n, C) scores, got {pred.shape}")
    _same_shape(y_true, pred, "y_true", "y_pred_or_scores (as labels)")
    return float(np.mean(y_true == pred))


def matched_recall_at_k(similarity: Any, k: int) -> float:
    """Recall@k of matched pairs: the share of rows ``i`` of an ``(n, n)`` ``similarity`` (row: a query,
    column: a candidate, ``similarity[i, i]`` the query's one match) whose match ranks among the ``k``
    highest scores of the row. A tie with the match counts against it (rank = 1 + the number of candidates
    scored at least as high), so a constant score never looks like retrieval. Text-to-image recall is
    this function on ``similarity.T``."""
    sim = _as_array(similarity, "similarity", 2, float)
    if sim.shape[0] != sim.shape[1] or sim.shape[0] < 1:
        raise ValueError(f"similarity must be a square (n, n) matrix with n >= 1, got {sim.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    match = np.diagonal(sim)[:, None]
    rank = (sim >= match).sum(axis=1)  # the match itself counts once: rank 1 when every other scores lower
    return float(np.mean(rank <= k))


def matched_rsum(similarity: Any, ks: Sequence[int] = (1, 5, 10)) -> float:
    """R-sum: recall@k (:func:`matched_recall_at_k`) summed over ``ks`` in both directions (rows as queries,
    then columns), in [0, 2 len(ks)] -- the validation score VSE++ (Faghri et al., 2018) selects its model
    by."""
    sim = _as_array(similarity, "similarity", 2, float)
    if not len(ks):
        raise ValueError("ks must name at least one k")
    return float(sum(matched_recall_at_k(sim, k) + matched_recall_at_k(sim.T, k) for k in ks))


def rmse(a: Any, b: Any) -> float:
    """Plain root mean squared error over all entries: sqrt(mean((a - b)^2))."""
    a = _as_array(a, "a", dtype=float)
    b = _as_array(b, "b", dtype=float)
    _same_shape(a, b, "a", "b")
    return float(np.sqrt(np.mean((a - b) ** 2)))


def _normalized_sq_distances(v_true: Any, v_pred: Any) -> np.ndarray:
    """||N'(v_i) - N'(vhat_i)||^2 per row (N'(0) = 0), after checking both (n, K) inputs."""
    v_true = _as_array(v_true, "v_true", 2, dtype=float)
    v_pred = _as_array(v_pred, "v_pred", 2, dtype=float)
    _same_shape(v_true, v_pred, "v_true", "v_pred")
    diff = _l2_normalize_rows(v_true) - _l2_normalize_rows(v_pred)
    return np.sum(diff**2, axis=1)


def rmse_normalized(v_true: Any, v_pred: Any) -> float:
    """Paper A's RMSE-S, reading 1: sqrt(mean_i ||N'(v_i) - N'(vhat_i)||^2), N' the l2 normalisation.

    The paper never defines RMSE-S. This is the reading pinned in docs/READING-NOTES.md: the
    root mean squared distance of the normalised vectors (eq. 2's l_p, averaged, square-rooted).
    A prediction of zero scores 1.00; a head unrelated to the truth (cosine about 0) scores
    about sqrt(2) = 1.41. Reading 2 is :func:`euclidean_loss_normalized` (= this squared / 2).
    Rows are click vectors, shape (n, K); a zero row stays zero after N'.
    """
    return float(np.sqrt(np.mean(_normalized_sq_distances(v_true, v_pred))))


def euclidean_loss_normalized(v_true: Any, v_pred: Any) -> float:
    """Paper A's RMSE-S, reading 2: Caffe's ``EuclideanLoss`` of l2-normalised vectors,

        1/(2n) sum_i ||N'(v_i) - N'(vhat_i)||^2,

    N' the l2 normalisation. The paper never defines RMSE-S; its lambda = 0 entries of Table VII
    (100.0 and 101.0 x 1e-2) are what this gives for a head unrelated to the truth, and the
    authors trained with Caffe, whose ``EuclideanLoss`` layer reports exactly this quantity.
    No square root is taken (the name RMSE notwithstanding); it equals
    ``rmse_normalized(v_true, v_pred) ** 2 / 2`` on the same rows.

    For rows where both ``v_i`` and ``vhat_i`` are non-zero, ||N'(a) - N'(b)||^2 = 2 - 2 cos(a, b),
    so the value is ``1 - mean_i cos(v_i, vhat_i)``. Zero rows, explicitly: N'(0) = 0 (as in
    :func:`rmse_normalized`), so a row where exactly one of the two is zero contributes 1/2
    (not the 1 that ``1 - cos`` with cos := 0 would give), and a row where both are zero
    contributes 0. Paper A's callers drop zero truths first (``click_metrics``); a zero
    prediction then scores 0.5 per row. Rows are click vectors, shape (n, K).
    """
    return float(np.mean(_normalized_sq_distances(v_true, v_pred)) / 2.0)


# ---------------------------------------------------------------- paper A: which words a click feature names
def _relevant_and_scores(relevant: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """``relevant`` (n, K) binary and ``scores`` (n, K) float, checked; every row needs a relevant word."""
    rel = _as_binary(relevant, "relevant", 2)
    s = _as_array(scores, "scores", 2, dtype=float)
    _same_shape(rel, s, "relevant", "scores")
    empty = np.flatnonzero(~rel.any(axis=1))
    if empty.size:
        raise ValueError(f"relevant has rows with no relevant word (rows {empty[:5].tolist()}...): "
                         f"drop them first (a zero click truth)")
    return rel, s


def word_average_precision(relevant: Any, scores: Any) -> np.ndarray:
    """Per row (an image): the average precision of ranking its K words by ``scores`` against the
    words it was clicked under (``relevant``, e.g. ``v != 0``).

    AP = (1/|A|) sum over relevant words of the precision at the end of their tie group (scikit-learn's
    step rule; its ``average_precision_score`` per row is the oracle, and ``average="samples"`` is the
    mean of this). Shapes (n, K); every row needs at least one relevant word.
    """
    rel, s = _relevant_and_scores(relevant, scores)
    return _average_precision_columns(np.ascontiguousarray(rel.T), np.ascontiguousarray(s.T))


def precision_at_k_rows(relevant: Any, scores: Any, k: Any) -> np.ndarray:
    """Per row: the share of its ``k`` top-scored words that are relevant (``k`` an int, or one per row).

    Ties at the cut-off are split in expectation, as if the tied words were ordered at random: with
    ``m`` words tied at the k-th score, ``a`` of them needed to fill the k places and ``r`` of them
    relevant, they add ``r * a / m`` hits. Without ties it is the plain precision@k. Shapes (n, K);
    ``1 <= k <= K``.
    """
    rel = _as_binary(relevant, "relevant", 2)
    s = _as_array(scores, "scores", 2, dtype=float)
    _same_shape(rel, s, "relevant", "scores")
    n, n_words = s.shape
    k_arr = np.asarray(k)
    if k_arr.ndim > 1 or (k_arr.ndim == 1 and len(k_arr) != n):
        raise ValueError(f"k must be an integer or one integer per row ({n}), got shape {k_arr.shape}")
    if not np.issubdtype(k_arr.dtype, np.integer) and not (
            np.issubdtype(k_arr.dtype, np.floating) and np.all(k_arr == np.round(k_arr))):
        raise ValueError(f"k must hold integers, got {k!r}")
    k_arr = np.broadcast_to(k_arr.astype(np.int64), (n,))
    if k_arr.min() < 1 or k_arr.max() > n_words:
        raise ValueError(f"k must lie in [1, {n_words}] (the number of words), got {k_arr.min()}..{k_arr.max()}")
    kth = -np.sort(-s, axis=1)[np.arange(n), k_arr - 1][:, None]  # the k-th largest score of each row
    above, tied = s > kth, s == kth
    places = k_arr - above.sum(axis=1)  # filled from the tie group at the cut-off
    hits = (rel & above).sum(axis=1) + (rel & tied).sum(axis=1) * places / tied.sum(axis=1)
    return hits / k_arr


def r_precision(relevant: Any, scores: Any) -> np.ndarray:
    """Per row: precision@|A|, ``k`` = the row's number of relevant words |A| (:func:`precision_at_k_rows`):
    of the |A| top-scored words, the share that are relevant (also its recall there). Every row needs
    a relevant word."""
    rel, s = _relevant_and_scores(relevant, scores)
    return precision_at_k_rows(rel, s, rel.sum(axis=1))


# ---------------------------------------------------------------- paper D: macro mAP, AUC
def _average_precision_columns(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """Average precision of each column, tied scores grouped (scikit-learn's step rule).

    AP = (1/P) sum over positives of the precision at the end of their tie group, which
    equals sum_k (R_k - R_{k-1}) P_k over the distinct score thresholds.

    Computed as the direct version (columns ranked by a stable sort, ``precision_at_end * rel``
    summed down the ranks of an (n, C) C-ordered array, over the positives' count) with the
    same numbers to the bit, but faster: each column is ranked as a contiguous row of the
    transposed scores, and the precisions are evaluated at the positives only (the other
    entries of the summed array are the same zeros).
    """
    n, n_cols = y_score.shape
    keys = np.ascontiguousarray(-y_score.T)  # one row per column, descending score
    order = _argsort_rows_stable(keys)
    s = _take_rows(keys, order)
    rel = _take_rows(y_true.T, order)
    is_group_end = np.ones_like(s, dtype=bool)
    is_group_end[:, :-1] = s[:, :-1] != s[:, 1:]
    end_or_sentinel = np.where(is_group_end, np.arange(n)[None, :], n)
    group_end = np.minimum.accumulate(end_or_sentinel[:, ::-1], axis=1)[:, ::-1]
    col, rank = np.nonzero(rel)  # the positives, column by column, in rank order
    end = group_end[col, rank]
    flat = col * n + rank  # ascending: the positives before the end of a tie group, counted
    tp_at_end = np.searchsorted(flat, col * n + end, side="right") - np.searchsorted(flat, col * n, side="left")
    weighted = np.zeros((n, n_cols))  # precision_at_end * rel, ranks down axis 0 (C order, as summed before)
    weighted[rank, col] = tp_at_end / (end + 1)
    return weighted.sum(axis=0) / y_true.sum(axis=0)


def average_precision_macro(y_true: Any, y_score: Any) -> float:
    """Paper D's mAP (section 4.1.4): (1/N) sum_c AP(c) over classes with >= 1 positive.

    ``y_true`` is a binary (n, C) label matrix, ``y_score`` the (n, C) scores. Classes with
    no positive among the rows given are skipped (as in the authors' code), so bootstrap
    resamples may average over slightly different class sets. Tied scores are grouped as in
    scikit-learn's ``average_precision_score`` (the oracle in the tests).
    """
    y_true = _as_binary(y_true, "y_true", 2)
    y_score = _as_array(y_score, "y_score", 2, dtype=float)
    _same_shape(y_true, y_score, "y_true", "y_score")
    kept = y_true.any(axis=0)
    if not kept.any():
        raise ValueError("y_true has no positive label in any class: mAP is undefined")
    return float(np.mean(_average_precision_columns(y_true[:, kept], y_score[:, kept])))


def auc_binary(y_true: Any, y_score: Any) -> float:
    """ROC AUC = P(score of a positive > score of a negative), ties counting 1/2.

    Computed from midranks (Mann-Whitney U / (P * N)); oracle: scikit-learn's roc_auc_score.
    """
    y_true = _as_binary(y_true, "y_true", 1)
    y_score = _as_array(y_score, "y_score", 1, dtype=float)
    _same_shape(y_true, y_score, "y_true", "y_score")
    n_pos = int(y_true.sum())
    n_neg = y_true.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"y_true needs both classes for an AUC (positives {n_pos}, negatives {n_neg})")
    ranks = rankdata(y_score)
    return float((ranks[y_true].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def interaction_auc(
    scores: Any,
    heldout_mask: Any,
    exclude_mask: Any | None = None,
    ties: Literal["half", "zero"] = "half",
    return_per_user: bool = False,
    block_size: int = 1024,
) -> float | MeanOverQueries:
    """Per-user AUC of held-out interactions, averaged over users (paper D, Table 3).

    For user u, AUC_u = P(score of a held-out item > score of a non-interacted item):
    positives are ``heldout_mask[u]``, negatives every item neither held out nor in
    ``exclude_mask[u]`` (the user's training interactions). Users with no held-out item or
    no negative are skipped (counted in ``n_skipped`` with ``return_per_user=True``).
    ``ties="half"`` counts a tie as 1/2 (Mann-Whitney; equals scikit-learn's roc_auc_score
    per user); ``ties="zero"`` counts it as 0, as Cornac 3.0's ``AUC`` does (its ``>``).
    All arrays are (n_users, n_items).
    """
    scores = _as_array(scores, "scores", 2, dtype=float)
    heldout = _as_binary(heldout_mask, "heldout_mask", 2)
    _same_shape(scores, heldout, "scores", "heldout_mask")
    if exclude_mask is None:
        exclude = np.zeros_like(heldout)
    else:
        exclude = _as_binary(exclude_mask, "exclude_mask", 2)
        _same_shape(scores, exclude, "scores", "exclude_mask")
        if np.any(heldout & exclude):
            raise ValueError("heldout_mask and exclude_mask overlap: an item cannot be both")
    if ties not in ("half", "zero"):
        raise ValueError(f"ties must be 'half' or 'zero', got {ties!r}")
    per_user = np.full(scores.shape[0], np.nan)
    for start in range(0, scores.shape[0], block_size):
        rows = slice(start, start + block_size)
        pos, exc = heldout[rows], exclude[rows]
        n_pos = pos.sum(axis=1)
        n_neg = (~exc & ~pos).sum(axis=1)
        candidates = np.where(exc, np.nan, scores[rows])
        if ties == "half":
            ranks = rankdata(candidates, method="average", axis=1, nan_policy="omit")
            wins = np.where(pos, ranks, 0.0).sum(axis=1) - n_pos * (n_pos + 1) / 2
        else:  # negatives strictly below each positive = (all below) - (positives below)
            below_all = rankdata(candidates, method="min", axis=1, nan_policy="omit") - 1
            only_pos = np.where(pos, scores[rows], np.nan)
            below_pos = rankdata(only_pos, method="min", axis=1, nan_policy="omit") - 1
            wins = np.where(pos, below_all - below_pos, 0.0).sum(axis=1)
        valid = (n_pos > 0) & (n_neg > 0)
        per_user[rows][valid] = wins[valid] / (n_pos[valid] * n_neg[valid])
    return _mean_over_queries(per_user, "users", return_per_user)


def _take_rows(a: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``np.take_along_axis(a, index, axis=1)`` for a 2-D ``a`` by one flat gather (several
    times faster than the broadcast fancy index of ``take_along_axis``; the same elements)."""
    a = np.ascontiguousarray(a)
    return np.take(a.ravel(), index + (np.arange(a.shape[0]) * a.shape[1])[:, None])


def _argsort_rows_stable(keys: np.ndarray) -> np.ndarray:
    """Row-wise ascending order, ties by ascending index (``np.argsort(kind="stable")``).

    A fast unstable sort first; in the rows where it met equal values the ties are put in
    index order: a row of one value is ``0..n-1``, any other by one integer sort of ``group
    number * n + index`` (unique keys, so any sort gives the stable order), cheaper than
    sorting the row's floats again stably.
    """
    order = np.argsort(keys, axis=1)
    ordered = _take_rows(keys, order)
    same = ordered[:, 1:] == ordered[:, :-1]
    tied_rows = np.flatnonzero(same.any(axis=1))
    if tied_rows.size:
        n = keys.shape[1]
        flat = same[tied_rows].all(axis=1)  # every element equal: the stable order is the identity
        order[tied_rows[flat]] = np.arange(n)
        mixed = tied_rows[~flat]
        if mixed.size:
            group = np.zeros((mixed.size, n), dtype=np.int64)
            np.cumsum(~same[mixed], axis=1, out=group[:, 1:])
            order[mixed] = np.sort(group * n + order[mixed], axis=1) % n
    return order


def _mean_over_queries(values: np.ndarray, what: str, keep: bool) -> float | MeanOverQueries:
    valid = ~np.isnan(values)
    if not valid.any():
        raise ValueError(f"no {what} could be scored (every one lacks a relevant item)")
    mean = float(values[valid].mean())
    return MeanOverQueries(mean, values, int((~valid).sum())) if keep else mean


# ---------------------------------------------------------------- paper C: MAP over the whole ranking
def retrieval_map(
    query_emb: Any,
    gallery_emb: Any,
    query_labels: Any,
    gallery_labels: Any,
    exclude_self: bool = False,
    return_per_query: bool = False,
    block_size: int = 512,
) -> float | MeanOverQueries:
    """Mean average precision over the whole ranking, paper C eq. (8).

    Each query ranks the WHOLE gallery by cosine similarity (not @k); an item is relevant
    when its label equals the query's; AP = (1/R) sum_k (R_k / k) rel_k and MAP is the mean
    over queries. Queries with no relevant item are skipped (``return_per_query=True``
    reports how many, with per-query APs, NaN where skipped).

    Ties: items with equal similarity are ordered by gallery index (a stable sort), so the
    result is deterministic but, unlike scikit-learn, does not average over tie orders.
    A zero embedding has similarity 0 to everything. ``exclude_self`` (query and gallery the
    same set, same order) drops each query from its own ranking.
    """
    q = _l2_normalize_rows(_as_array(query_emb, "query_emb", 2, dtype=float))
    g = _l2_normalize_rows(_as_array(gallery_emb, "gallery_emb", 2, dtype=float))
    q_lab = _as_array(query_labels, "query_labels", 1)
    g_lab = _as_array(gallery_labels, "gallery_labels", 1)
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"query_emb has dimension {q.shape[1]} but gallery_emb has {g.shape[1]}")
    if len(q_lab) != len(q):
        raise ValueError(f"query_labels has {len(q_lab)} entries for {len(q)} query_emb rows")
    if len(g_lab) != len(g):
        raise ValueError(f"gallery_labels has {len(g_lab)} entries for {len(g)} gallery_emb rows")
    if exclude_self and len(q) != len(g):
        raise ValueError(f"exclude_self needs as many queries as gallery items ({len(q)} vs {len(g)})")
    ranks = np.arange(1, len(g) + 1)
    per_query = np.full(len(q), np.nan)
    for start in range(0, len(q), block_size):
        rows = np.arange(start, min(start + block_size, len(q)))
        neg_sim = -q[rows] @ g.T  # ascending order of -similarity = descending similarity
        relevant = q_lab[rows, None] == g_lab[None, :]
        if exclude_self:  # last place and never relevant: it cannot change any precision
            neg_sim[np.arange(len(rows)), rows] = np.inf
            relevant[np.arange(len(rows)), rows] = False
        rel = _take_rows(relevant, _argsort_rows_stable(neg_sim))
        n_rel = rel.sum(axis=1)
        precision_sum = (np.cumsum(rel, axis=1) / ranks * rel).sum(axis=1)
        ok = n_rel > 0
        per_query[rows[ok]] = precision_sum[ok] / n_rel[ok]
    return _mean_over_queries(per_query, "queries", return_per_query)


def cross_modal_map(
    image_emb: Any, text_emb: Any, image_labels: Any, text_labels: Any | None = None
) -> dict[str, float]:
    """Paper C's Table 1 row: MAP of Img->Txt, Txt->Img and their average (eq. 8).

    The test set's images query all its texts and vice versa; ``text_labels`` defaults to
    ``image_labels`` (image/text pairs sharing one label).
    """
    text_labels = image_labels if text_labels is None else text_labels
    img2txt = retrieval_map(image_emb, text_emb, image_labels, text_labels)
    txt2img = retrieval_map(text_emb, image_emb, text_labels, image_labels)
    return {"img2txt": img2txt, "txt2img": txt2img, "average": (img2txt + txt2img) / 2}


# ---------------------------------------------------------------- paper B: DCG@25
def dcg_normalizer(k: int = 25, normalizer: str | float = "paper") -> float:
    """The constant Z_k of paper B eq. (4).

    ``"paper"``: the printed Z_25 = 0.01757 (only defined for k = 25); ``"exact"``:
    1 / sum_{i=1..k} (2^3 - 1) / log2(i + 1), so that k Excellent results score exactly 1
    (Z_25 = 0.0175678); a positive float is used as given.
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if normalizer == "paper":
        if k != 25:
            raise ValueError(f"normalizer='paper' is paper B's Z_25, but k={k}: use 'exact'")
        return PAPER_DCG25_NORMALIZER
    if normalizer == "exact":
        ideal = np.sum((2.0 ** RELEVANCE_GRADES["Excellent"] - 1) / np.log2(np.arange(2, k + 2)))
        return float(1.0 / ideal)
    if isinstance(normalizer, (int, float)) and not isinstance(normalizer, bool) and normalizer > 0:
        return float(normalizer)
    raise ValueError(f"normalizer must be 'paper', 'exact' or a positive number, got {normalizer!r}")


def dcg_at_k(relevances: Any, k: int = 25, normalizer: str | float = "paper") -> float:
    """DCG@k of one query, paper B eq. (4): Z_k sum_{i=1..k} (2^rel_i - 1) / log2(i + 1).

    ``relevances`` are the graded relevances (Excellent 3, Good 2, Bad 0) in ranked order.
    A list shorter than k is not padded and Z stays the one for k (the MM'15 challenge
    scorer, docs/READING-NOTES.md#paper-b-click-collaborative-filtering). scikit-learn's ``dcg_score`` uses linear gain: it is not
    this metric.
    """
    z = dcg_normalizer(k, normalizer)
    rel = _as_array(relevances, "relevances", 1, dtype=float)[:k]
    if np.any(rel < 0):
        raise ValueError("relevances must be non-negative grades (Excellent 3, Good 2, Bad 0)")
    discounts = np.log2(np.arange(2, rel.size + 2))
    return float(z * np.sum((2.0**rel - 1) / discounts))


def dcg_at_k_from_scores(
    scores: Any, relevances: Any, k: int = 25, normalizer: str | float = "paper"
) -> float:
    """DCG@k of one query's candidates ranked by descending score (ties: by index)."""
    scores = _as_array(scores, "scores", 1, dtype=float)
    rel = _as_array(relevances, "relevances", 1, dtype=float)
    _same_shape(scores, rel, "scores", "relevances")
    return dcg_at_k(rel[np.argsort(-scores, kind="stable")], k, normalizer)


def mean_dcg_at_k(
    relevance_lists: Sequence[Any], k: int = 25, normalizer: str | float = "paper"
) -> float:
    """Paper B's reported DCG@25: the mean over queries of :func:`dcg_at_k`."""
    if len(relevance_lists) == 0:
        raise ValueError("relevance_lists is empty: no query to average over")
    return float(np.mean([dcg_at_k(r, k, normalizer) for r in relevance_lists]))
