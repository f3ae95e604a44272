"""Paper B's ranking step: image-image similarity over predicted clicks (eq. 3) and the CF score.

Given predicted click counts ``R[n, u]`` of queries ``n`` for images ``u`` (paper B eq. 1,
``R = V_q . V_i``), paper B compares two images by how their predicted clicks move together
over the queries (eq. 3, an adjusted cosine: each query's row is centred by its mean over
the images, then the cosine of two image columns is taken)::

    S_uv = sum_n (R_nu - Rbar_n)(R_nv - Rbar_n) / (||R_.u - Rbar|| ||R_.v - Rbar||)

and ranks images for a query with the similarities. The paper leaves the step from S to a
ranking unstated; pinned in docs/READING-NOTES.md as the item-based CF prediction

    score(q, i) = m_q + sum_{j in N_k(i)} S_ij (R_qj - m_q) / sum_{j in N_k(i)} |S_ij|,

``m_q`` the mean predicted click of q over the image pool and ``N_k(i)`` the k images most
similar to i (i itself excluded); the plain ``R_qi`` is the ablation.

Scaling: nothing here is an n^2 Python loop. :func:`top_k_neighbours` walks the images in
blocks (one block x all matrix product, then top-k), so memory is ``block x n``, never
``n x n``; when ``R = Q V^T`` has rank D, :func:`low_rank_profiles` gives D-dimensional image
profiles whose cosines are exactly eq. (3) over all the training queries, without forming R
(``S_uv = (v_u - vbar)^T G (v_v - vbar) / ...`` with ``G = Q^T Q``). The CF score is a sparse
(k non-zeros per row) matrix product (:func:`neighbour_weights`, :func:`cf_scores`).
:func:`naive_rank_gallery` is the literal per-image / per-query reference the benchmark
(``bench/bench_retrieval.py``) and the tests compare with.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from . import metrics


def _matrix(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-d array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


# --- eq. (3) -------------------------------------------------------------------------------------

def centred_profiles(clicks: Any) -> np.ndarray:
    """Image profiles ``(n_images, n_queries)`` whose row cosines are eq. (3) of ``clicks``.

    ``clicks`` is ``(n_queries, n_images)``; each query row is centred by its mean over the
    images (``Rbar_n``), then transposed. Memory grows with queries x images: for explicit
    (small) click matrices; use :func:`low_rank_profiles` for ``R = Q V^T``.
    """
    r = _matrix(clicks, "clicks")
    return (r - r.mean(axis=1, keepdims=True)).T


def low_rank_profiles(query_vectors: Any, image_vectors: Any) -> np.ndarray:
    """D-dimensional image profiles whose cosines equal eq. (3) for ``R = Q V^T`` (eq. 1).

    ``query_vectors`` Q ``(n_queries, D)`` (the training queries), ``image_vectors`` V
    ``(n_images, D)``. Centring each query row by its mean over the images is
    ``R - Q vbar 1^T = Q (V - vbar)^T``, so the eq. (3) numerator is
    ``(v_u - vbar)^T G (v_v - vbar)`` with ``G = Q^T Q``; the rows of
    ``(V - vbar) G^{1/2}`` have exactly these inner products. Cost O((n_queries + n_images) D^2).
    """
    q = _matrix(query_vectors, "query_vectors")
    v = _matrix(image_vectors, "image_vectors")
    if q.shape[1] != v.shape[1]:
        raise ValueError(f"query_vectors have dimension {q.shape[1]} but image_vectors {v.shape[1]}")
    w, u = np.linalg.eigh(q.T @ q)
    root = (u * np.sqrt(np.clip(w, 0.0, None))) @ u.T  # G^{1/2}, G positive semi-definite
    return (v - v.mean(axis=0)) @ root


def adjusted_cosine_similarity(clicks: Any) -> np.ndarray:
    """Dense eq. (3) for every image pair of a ``(n_queries, n_images)`` click matrix.

    ``(n_images, n_images)`` memory: for small sets and checks. An image whose centred column
    is zero has similarity 0 to every image (eq. 3 divides by zero there).
    """
    z = _unit_rows(centred_profiles(clicks))
    return z @ z.T


# --- neighbours, blocked ----------------------------------------------------------------------

@dataclass
class Neighbours:
    """The ``k`` most similar images of every image: ``index`` and ``similarity``, ``(n, k)``.

    Rows are sorted by decreasing similarity, ties by increasing image index.
    """

    index: np.ndarray
    similarity: np.ndarray

    @property
    def k(self) -> int:
        return int(self.index.shape[1])

    def truncate(self, k: int) -> "Neighbours":
        """The ``k`` first neighbours (the top-k of a smaller k)."""
        if not 1 <= k <= self.k:
            raise ValueError(f"k must lie in [1, {self.k}], got {k!r}")
        return Neighbours(self.index[:, :k], self.similarity[:, :k])


def top_k_neighbours(profiles: Any, k: int, block_size: int = 2048, exclude_self: bool = True,
                     margin: int = 8, chunk_elements: int = 1 << 22) -> Neighbours:
    """Top-``k`` cosine neighbours of every row of ``profiles`` (eq. 3 with eq.-3 profiles).

    Blocked: ``block_size`` rows against all rows per matrix product, then a top-k selection;
    memory ``block_size x n``, never ``n x n``. The product and the selection run in float32
    for speed, keeping ``k + margin`` candidates; their similarities are then recomputed in
    float64 and the exact top k kept (ties by index), so the result is the float64 one unless
    float32 rounding (~1e-7) moves a neighbour past ``margin`` others. ``exclude_self`` leaves
    an image out of its own list. ``chunk_elements`` bounds the memory of the float64 step.
    """
    z64 = _unit_rows(_matrix(profiles, "profiles"))
    z = torch.from_numpy(z64.astype(np.float32))
    n = z.shape[0]
    limit = n - 1 if exclude_self else n
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= limit:
        raise ValueError(f"k must be an integer in [1, {limit}] for {n} images, got {k!r}")
    if not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    keep = min(k + max(int(margin), 0) + int(exclude_self), n)
    index = np.empty((n, k), dtype=np.int64)
    sim = np.empty((n, k), dtype=np.float64)
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        cand = torch.topk(z[start:stop] @ z.T, keep, dim=1).indices.numpy()
        exact = np.empty(cand.shape)  # float64 cosines of the candidates, in chunks of bounded memory
        step = max(1, int(chunk_elements) // (keep * z64.shape[1]))
        for a in range(0, len(cand), step):
            b = min(a + step, len(cand))
            exact[a:b] = np.einsum("bd,bkd->bk", z64[start + a:start + b], z64[cand[a:b]])
        if exclude_self:
            exact[cand == np.arange(start, stop)[:, None]] = -np.inf
        order = np.lexsort((cand, -exact), axis=1)[:, :k]
        index[start:stop] = np.take_along_axis(cand, order, axis=1)
        sim[start:stop] = np.take_along_axis(exact, order, axis=1)
    return Neighbours(index, sim)


def neighbour_weights(neighbours: Neighbours, n_images: int | None = None) -> sp.csr_matrix:
    """Sparse ``W`` with ``W_ij = S_ij / sum_{j in N_k(i)} |S_ij|`` (zero row if all S_ij = 0)."""
    n = len(neighbours.index) if n_images is None else int(n_images)
    s = neighbours.similarity
    denom = np.abs(s).sum(axis=1, keepdims=True)
    w = np.divide(s, denom, out=np.zeros_like(s), where=denom > 0)
    rows = np.repeat(np.arange(len(s)), s.shape[1])
    return sp.csr_matrix((w.ravel(), (rows, neighbours.index.ravel())), shape=(len(s), n))


def cf_scores(predicted: Any, weights: sp.csr_matrix) -> np.ndarray:
    """The CF score of every (query, image), ``(n_queries, n_images)`` (docs/READING-NOTES.md, paper B).

    ``predicted``: ``R_qj`` (eq. 1) of the queries for the image pool, ``(n_queries, n_pool)``;
    ``weights`` from :func:`neighbour_weights` over the same pool. With ``m_q`` the row mean,
    ``score = m_q + W (R_q - m_q)``, i.e. ``m_q (1 - rowsum W) + R W^T``.
    """
    r = _matrix(predicted, "predicted")
    if weights.shape != (r.shape[1], r.shape[1]):
        raise ValueError(f"weights have shape {weights.shape}, predicted has {r.shape[1]} images")
    m = r.mean(axis=1, keepdims=True)
    rowsum = np.asarray(weights.sum(axis=1)).ravel()
    return m * (1.0 - rowsum)[None, :] + np.asarray(r @ weights.T)


def top_items(scores: np.ndarray, top: int) -> np.ndarray:
    """Indices of the ``top`` best images per row, best first (ties within the selected by index;
    which of several images tied at the last place is selected is not specified)."""
    top = min(int(top), scores.shape[1])
    part = np.argpartition(-scores, top - 1, axis=1)[:, :top]
    vals = np.take_along_axis(scores, part, axis=1)
    return np.take_along_axis(part, np.lexsort((part, -vals), axis=1), axis=1)


def rank_gallery(query_vectors: Any, image_vectors: Any, train_query_vectors: Any, k: int = 20,
                 top: int = 25, block_size: int = 2048, query_block: int = 256) -> np.ndarray:
    """The ``top`` images of a gallery for each query by the CF score (eq. 1 -> eq. 3 -> score).

    Image similarities come from the training queries' predicted clicks via
    :func:`low_rank_profiles` and blocked :func:`top_k_neighbours`; queries are scored
    ``query_block`` at a time. Returns ``(n_queries, top)`` gallery indices, best first.
    """
    v = _matrix(image_vectors, "image_vectors")
    nb = top_k_neighbours(low_rank_profiles(train_query_vectors, v), k, block_size)
    weights = neighbour_weights(nb, len(v))
    q = _matrix(query_vectors, "query_vectors")
    out = np.empty((len(q), min(top, len(v))), dtype=np.int64)
    for start in range(0, len(q), query_block):
        out[start:start + query_block] = top_items(cf_scores(q[start:start + query_block] @ v.T, weights), top)
    return out


def naive_neighbours(image_vectors: Any, train_query_vectors: Any, k: int = 20, images: Any = None) -> Neighbours:
    """Reference for the neighbour step: eq. (3) image by image on the explicit click matrix.

    Forms ``R = Q_train V^T`` (queries x images), then for each image in ``images`` (default
    all) its whole similarity row (eq. 3, query means over all images) and a full sort.
    O(n^2 n_queries) time and queries x images memory: the benchmark times a slice of rows.
    """
    v = _matrix(image_vectors, "image_vectors")
    r = _matrix(train_query_vectors, "train_query_vectors") @ v.T
    rc = r - r.mean(axis=1, keepdims=True)
    norms = np.sqrt((rc ** 2).sum(axis=0))
    n = len(v)
    rows = list(range(n)) if images is None else [int(i) for i in images]
    index, sim = np.empty((len(rows), k), dtype=np.int64), np.empty((len(rows), k))
    for a, u in enumerate(rows):
        denom = norms[u] * norms
        s = np.divide(rc[:, u] @ rc, denom, out=np.zeros(n), where=denom > 0)
        s[u] = -np.inf
        order = np.lexsort((np.arange(n), -s))[:k]
        index[a], sim[a] = order, s[order]
    return Neighbours(index, sim)


def naive_cf_rank(query_vectors: Any, image_vectors: Any, neighbours: Neighbours, top: int = 25) -> np.ndarray:
    """Reference for the scoring step: per query, a Python loop over the images, a full sort."""
    v, q = _matrix(image_vectors, "image_vectors"), _matrix(query_vectors, "query_vectors")
    n = len(v)
    out = np.empty((len(q), min(top, n)), dtype=np.int64)
    for a in range(len(q)):
        pred = v @ q[a]
        m = pred.mean()
        score = np.empty(n)
        for i in range(n):
            j, s = neighbours.index[i], neighbours.similarity[i]
            denom = np.abs(s).sum()
            score[i] = m + (s @ (pred[j] - m) / denom if denom > 0 else 0.0)
        out[a] = np.lexsort((np.arange(n), -score))[:top]
    return out


def naive_rank_gallery(query_vectors: Any, image_vectors: Any, train_query_vectors: Any, k: int = 20,
                       top: int = 25) -> np.ndarray:
    """The literal reference of :func:`rank_gallery`: :func:`naive_neighbours` then :func:`naive_cf_rank`."""
    nb = naive_neighbours(image_vectors, train_query_vectors, k)
    return naive_cf_rank(query_vectors, image_vectors, nb, top)


# --- ranking judged candidates, DCG@25 ----------------------------------------------------------

def dcg_per_query(frame: pd.DataFrame, score: str = "score", k: int = 25, seed: int = 0) -> pd.Series:
    """DCG@k (paper B eq. 4, ``cv.metrics.dcg_at_k``) of each query's judged candidates.

    ``frame`` has ``query``, ``relevance`` (3/2/0) and the ``score`` column; every query's
    candidates are ranked by decreasing score. Ties are broken in a seeded random order, never
    by the order of the file (the simulated Dev file lists the engine's ranking). Returns a
    Series indexed by the sorted queries.
    """
    missing = {"query", "relevance", score} - set(frame.columns)
    if missing:
        raise ValueError(f"frame lacks columns {sorted(missing)}")
    values = frame[score].to_numpy(dtype=float)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"column {score!r} has NaN or infinite scores")
    codes, names = pd.factorize(frame["query"], sort=True)
    tiebreak = np.random.default_rng(seed).permutation(len(frame))
    order = np.lexsort((tiebreak, -values, codes))
    rel = frame["relevance"].to_numpy(dtype=float)[order]
    if np.any(rel < 0):
        raise ValueError("relevances must be non-negative grades (Excellent 3, Good 2, Bad 0)")
    group = codes[order]
    rank = np.arange(len(order)) - np.searchsorted(group, group)  # 0-based rank within its query
    top = rank < k
    # eq. (4) for every query at once (metrics.dcg_at_k per query is the reference, tests/test_retrieval.py)
    gains = (2.0 ** rel[top] - 1) / np.log2(rank[top] + 2)
    dcg = metrics.dcg_normalizer(k, "paper") * np.bincount(group[top], weights=gains, minlength=len(names))
    return pd.Series(dcg, index=pd.Index(names, name="query"), name="dcg")


def dcg_by_method(scored: pd.DataFrame, methods: list[str] | None = None, seed: int = 0,
                  scale: float = 100.0) -> pd.DataFrame:
    """Tidy ``method, query, [part,] dcg`` for score columns of ``scored`` (default: every column
    but ``query, key, relevance, judgment, part``), DCG@25 times ``scale`` (paper B prints x100)."""
    fixed = {"query", "key", "relevance", "judgment", "part"}
    methods = methods or [c for c in scored.columns if c not in fixed]
    part = scored.groupby("query")["part"].first() if "part" in scored.columns else None
    frames = []
    for m in methods:
        d = dcg_per_query(scored, m, seed=seed) * scale
        frame = pd.DataFrame({"method": m, "query": d.index.to_numpy(), "dcg": d.to_numpy()})
        if part is not None:
            frame.insert(2, "part", part.loc[d.index].to_numpy())
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
