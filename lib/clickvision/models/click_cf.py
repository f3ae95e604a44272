"""Paper B's content-based click model (sections 3.1-3.3) and its click-trained comparators.

* :class:`WordVocabulary` -- the word lookup table of section 3.1: the words of the training
  queries; a query is the list of its word ids, unknown words dropped, so a query never seen
  in training still gets a vector from the words it shares with the training queries.
* :class:`ClickCF` -- ``V_q = sum_w E_w`` (sum of the query's word vectors, 3.1) and
  ``V_i = P ((f_i - mu) B) + b`` (the CNN's pooled penultimate features ``f_i``, centred and
  PCA-whitened by a fixed ``mu, B``, through a learned projection to D dims, 3.1), predicted
  clicks ``R = V_q . V_i`` (eq. 1-2).
* :func:`fit_click_cf` -- learning from the click graph with click counts as implicit ratings
  (3.2): regression of ``log(1 + clicks)`` (docs/READING-NOTES.md default; raw counts an option) on the
  clicked pairs, plus sampled zero-click pairs as negatives, through the one Trainer.
* :func:`fit_cross_view_pls` -- a click-through cross-view linear embedding *in the spirit of*
  CCL (Pan et al. 2014): query bag-of-words and image features projected to a common space
  by orthonormal maps that maximise the click-weighted agreement of the pairs (the cross term
  of CCL's distance objective; closed form by SVD). CCL's structure-preserving term is left out.
* :func:`knn_word_profiles` -- a bag-of-words similarity ranking *in the spirit of* BoWDNN-R:
  an unseen image's bag of words is borrowed from its visual (DNN-feature) nearest training
  images, whose words come from their clicked queries or from their annotations
  (:func:`word_bags`, :func:`visual_neighbour_mix`, :func:`bag_cosines`).
* :func:`annotation_pseudo_log` -- the training images' own text phrases as pseudo-triads, to
  train the same eq.-(1) model without any click (a content-only comparator).
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn

from ..train import Trainer, TrainConfig

QUERY_TOKEN = re.compile(r"[^\W_]+")
"""A word: a run of letters or digits (the click simulator's tokeniser), lower-cased."""
TARGETS = ("log1p", "raw")
LOSSES = ("mse", "ranking")
"""How :func:`fit_click_cf` learns from the click graph: ``mse`` regresses the implicit ratings
(3.2, the paper's reading); ``ranking`` is the pairwise alternative (a BPR-style logistic loss:
a clicked image above a sampled zero-click one for the same query, weighted by the rating)."""


def query_words(query: str) -> list[str]:
    """The lower-cased words of a query, in order (``"Red Apple!"`` -> ``["red", "apple"]``)."""
    return QUERY_TOKEN.findall(str(query).lower())


@dataclass
class WordVocabulary:
    """The word lookup table of paper B section 3.1; id 0 is padding / unknown (a zero vector)."""

    words: list[str]
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(set(self.words)) != len(self.words):
            raise ValueError("WordVocabulary: duplicate words")
        self.index = {w: i + 1 for i, w in enumerate(self.words)}

    @classmethod
    def from_queries(cls, queries: Iterable[str], min_count: int = 1) -> "WordVocabulary":
        """Every word occurring in at least ``min_count`` of ``queries``, sorted."""
        counts = Counter(w for q in queries for w in set(query_words(q)))
        return cls(sorted(w for w, c in counts.items() if c >= min_count))

    def __len__(self) -> int:
        return len(self.words) + 1  # with the padding id

    def encode(self, queries: Sequence[str]) -> torch.Tensor:
        """Word ids ``(n, L)`` padded with 0; unknown words are dropped (they have no vector)."""
        index = self.index
        ids = [[index[w] for w in query_words(q) if w in index] for q in queries]
        width = max([1, *map(len, ids)])
        out = np.zeros((len(ids), width), dtype=np.int64)
        for r, row in enumerate(ids):
            out[r, :len(row)] = row
        return torch.from_numpy(out)

    def coverage(self, queries: Sequence[str]) -> np.ndarray:
        """Share of each query's words that are in the table (0 for a query of unseen words)."""
        return np.array([np.mean([w in self.index for w in query_words(q)] or [0.0]) for q in queries])

    def bag_of_words(self, queries: Sequence[str]) -> sp.csr_matrix:
        """Word counts ``(n, len(words))`` of known words (column j is word ``words[j]``)."""
        ids = self.encode(queries).numpy()
        rows, cols = np.nonzero(ids)
        return sp.csr_matrix((np.ones(len(rows)), (rows, ids[rows, cols] - 1)), shape=(len(ids), len(self.words)))


class ClickCF(nn.Module):
    """Content-based factors of paper B: ``R = V_q . V_i`` (eq. 1) with ``V_q = sum_w E_w`` (3.1)
    and ``V_i = P ((f_i - mu) B) + b`` (3.1): ``f_i`` the cached CNN pooled features, ``mu, B``
    a fixed centring and (optionally whitening PCA) basis, ``P, b`` the learned projection."""

    def __init__(self, n_words: int, image_dim: int, dim: int = 64, feature_mean: np.ndarray | None = None,
                 feature_basis: np.ndarray | None = None) -> None:
        super().__init__()
        basis = np.eye(image_dim) if feature_basis is None else np.asarray(feature_basis)
        if min(n_words, image_dim, dim) < 1 or basis.shape[0] != image_dim:
            raise ValueError(f"ClickCF: need n_words, image_dim, dim >= 1 and a basis with image_dim rows; got "
                             f"{n_words}, {image_dim}, {dim}, basis {basis.shape}")
        self.dim = int(dim)
        self.words = nn.Embedding(n_words, dim, padding_idx=0)
        nn.init.normal_(self.words.weight, std=dim ** -0.5)
        with torch.no_grad():
            self.words.weight[0].zero_()
        self.project = nn.Linear(basis.shape[1], dim)
        mean = np.zeros(image_dim) if feature_mean is None else feature_mean
        self.register_buffer("feature_mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("feature_basis", torch.as_tensor(basis, dtype=torch.float32))

    def query_vectors(self, word_ids: torch.Tensor) -> torch.Tensor:
        """``V_q``: the sum of the query's word vectors, ``(n, D)``; padding adds zero."""
        return self.words(word_ids).sum(dim=1)

    def image_inputs(self, features: torch.Tensor) -> torch.Tensor:
        """The fixed preprocessing of CNN features (centring, basis), ``(n, basis columns)``."""
        return (features - self.feature_mean) @ self.feature_basis

    def image_vectors(self, features: torch.Tensor, preprocessed: bool = False) -> torch.Tensor:
        """``V_i``: the learned projection of the (preprocessed) CNN features, ``(n, D)``."""
        return self.project(features if preprocessed else self.image_inputs(features))

    def forward(self, word_ids: torch.Tensor, features: torch.Tensor, preprocessed: bool = False) -> torch.Tensor:
        """Predicted clicks ``R = V_q^T V_i`` (eq. 1-2) of aligned query/image rows, ``(n,)``."""
        return (self.query_vectors(word_ids) * self.image_vectors(features, preprocessed)).sum(dim=1)


def whitening_basis(features: np.ndarray, components: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and basis that centre and standardise features: per-dimension (``components=None``)
    or onto the top ``components`` principal axes, whitened (unit variance each).

    The axes come from the eigen-decomposition of the smaller Gram matrix (rows x rows when
    there are fewer rows than dimensions), which gives the same axes at a fraction of the cost.
    """
    x = np.asarray(features, dtype=np.float64)
    mean = x.mean(axis=0)
    if components is None:
        return mean, np.diag(1.0 / (x.std(axis=0) + 1e-6))
    if not 1 <= components <= min(x.shape):
        raise ValueError(f"feature_pcs must lie in [1, {min(x.shape)}], got {components!r}")
    xc = x - mean
    if len(x) < x.shape[1]:
        w, u = np.linalg.eigh(xc @ xc.T)
        w, u = w[::-1][:components], u[:, ::-1][:, :components]
        axes = (xc.T @ u) / np.sqrt(np.clip(w, 1e-12, None))  # unit-length principal axes
    else:
        w, axes = np.linalg.eigh(xc.T @ xc)
        w, axes = w[::-1][:components], axes[:, ::-1][:, :components]
    return mean, axes / (np.sqrt(np.clip(w, 0.0, None) / len(x)) + 1e-6)


def click_targets(clicks: np.ndarray, target: str = "log1p") -> np.ndarray:
    """Regression targets from click counts: ``log(1 + clicks)`` (default) or the raw counts."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    clicks = np.asarray(clicks, dtype=np.float64)
    return np.log1p(clicks) if target == "log1p" else clicks


def click_regression_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error of predicted clicks (eq. 1) against the implicit ratings (3.2), averaged."""
    if predicted.shape != target.shape:
        raise ValueError(f"predicted has shape {tuple(predicted.shape)} but target {tuple(target.shape)}")
    return torch.mean((predicted - target) ** 2)


def click_ranking_loss(positive: torch.Tensor, negative: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Pairwise logistic (BPR-style) loss: ``mean_p w_p log(1 + exp(-(R_pos,p - R_neg,p)))`` over
    aligned pairs of predicted clicks, a clicked image's ``positive`` against a zero-click image's
    ``negative`` for the same query; ``weight`` (default 1) e.g. the clicked pair's implicit rating.
    A weighted mean: ``sum w l / sum w``."""
    if positive.shape != negative.shape or positive.ndim != 1:
        raise ValueError(f"positive {tuple(positive.shape)} and negative {tuple(negative.shape)} must be equal 1-D shapes")
    loss = torch.nn.functional.softplus(negative - positive)
    if weight is None:
        return loss.mean()
    if weight.shape != loss.shape:
        raise ValueError(f"weight has shape {tuple(weight.shape)}, the pairs {tuple(loss.shape)}")
    return (weight * loss).sum() / weight.sum().clamp_min(1e-12)


@dataclass
class ClickPairs:
    """The training click graph as index arrays: pair ``p`` joins query row ``query[p]`` and
    image row ``image[p]`` with target ``target[p]``; ``negatives_from`` lists the image rows
    zero-click negatives are drawn from."""

    word_ids: torch.Tensor
    inputs: torch.Tensor  # preprocessed image features (ClickCF.image_inputs)
    query: np.ndarray
    image: np.ndarray
    target: np.ndarray
    negatives_from: np.ndarray

    def epoch_batches(self, negatives: int, batch_size: int, rng: np.random.Generator) -> Iterator[tuple]:
        """One epoch: every clicked pair plus ``negatives`` random zero-target pairs per pair, shuffled."""
        n = len(self.query)
        q = np.concatenate([self.query, np.repeat(self.query, negatives)])
        drawn = self.negatives_from[rng.integers(len(self.negatives_from), size=n * negatives)]
        i = np.concatenate([self.image, drawn])
        y = np.concatenate([self.target, np.zeros(n * negatives)])
        order = rng.permutation(len(q))
        for s in range(0, len(q), batch_size):
            b = order[s:s + batch_size]
            yield (self.word_ids[q[b]], self.inputs[i[b]], torch.as_tensor(y[b], dtype=torch.float32))

    def ranking_batches(self, negatives: int, batch_size: int, rng: np.random.Generator) -> Iterator[tuple]:
        """One epoch of ranking triples: every clicked pair ``negatives`` times (at least once), each
        against a random image from ``negatives_from`` (a zero-click pair for that query, up to the
        rare draw of an image the query also clicked), shuffled: ``(word_ids, positive inputs,
        negative inputs, rating)``."""
        reps = max(negatives, 1)
        n = len(self.query)
        p = np.tile(np.arange(n), reps)
        drawn = self.negatives_from[rng.integers(len(self.negatives_from), size=len(p))]
        order = rng.permutation(len(p))
        for s in range(0, len(p), batch_size):
            b = order[s:s + batch_size]
            pb = p[b]
            yield (self.word_ids[self.query[pb]], self.inputs[self.image[pb]], self.inputs[drawn[b]],
                   torch.as_tensor(self.target[pb], dtype=torch.float32))


@dataclass
class ClickCFFit:
    """A trained :class:`ClickCF` with its vocabulary and the Trainer's history."""

    model: ClickCF
    vocab: WordVocabulary
    history: pd.DataFrame
    train_queries: list[str]

    @torch.no_grad()
    def query_vectors(self, queries: Sequence[str]) -> np.ndarray:
        """``V_q`` of any queries (unseen ones from their known words), float64 ``(n, D)``."""
        self.model.eval()
        return self.model.query_vectors(self.vocab.encode(queries)).double().numpy()

    @torch.no_grad()
    def image_vectors(self, features: np.ndarray) -> np.ndarray:
        """``V_i`` of images from their CNN features, float64 ``(n, D)``."""
        self.model.eval()
        return self.model.image_vectors(torch.as_tensor(np.asarray(features), dtype=torch.float32)).double().numpy()


def fit_click_cf(log: pd.DataFrame, features: np.ndarray, keys: Sequence[str], dim: int = 64, epochs: int = 8,
                 lr: float = 0.005, batch_size: int = 2048, negatives: int = 4, target: str = "log1p",
                 feature_pcs: int | None = 128, weight_decay: float = 1e-3, grad_clip: float | None = 5.0,
                 min_count: int = 1, seed: int = 0, val_fn: Callable[[ClickCFFit], dict] | None = None,
                 monitor: str | None = None, threads: int | None = 1,
                 whitening: tuple[np.ndarray, np.ndarray] | None = None, loss: str = "mse") -> ClickCFFit:
    """Learn paper B's content-based factors from a click graph (3.2) with the one Trainer.

    ``log``: triads ``query, key, clicks`` (the training click graph); ``features[r]`` is the
    CNN feature of image ``keys[r]`` (every log key must be among ``keys``). Image features are
    centred and whitened on the log's images (``feature_pcs`` principal axes; None: all
    dimensions standardised) unless a fixed ``whitening = (mean, basis)`` is given, then
    projected by the learned map. Negatives are drawn uniformly
    from the log's images (``negatives`` zero-click pairs per clicked pair, fresh each epoch).
    ``loss`` (:data:`LOSSES`): ``"mse"`` regresses the ratings ``target`` of the clicked pairs and 0 on
    the negatives (3.2); ``"ranking"`` ranks each clicked pair above ``negatives`` sampled images
    (:func:`click_ranking_loss`, weighted by the pair's rating).
    Adam; ``val_fn(fit) -> {metric: value}`` with ``monitor`` keeps the best epoch (higher is better).
    ``threads``: torch threads while training (restored after): the batches are small, and one
    thread avoids OpenMP synchronisation that costs more than it saves (measured 4-9x per step
    on 2 busy cores); None leaves the setting alone.
    """
    missing = {"query", "key", "clicks"} - set(log.columns)
    if missing:
        raise ValueError(f"log lacks columns {sorted(missing)}")
    if len(log) == 0:
        raise ValueError("log is empty: no click to learn from")
    image = pd.Index(keys).get_indexer(log["key"])
    if (image < 0).any():
        raise ValueError(f"log key {log['key'].iloc[int(np.flatnonzero(image < 0)[0])]!r} has no feature row")
    if loss not in LOSSES:
        raise ValueError(f"fit_click_cf: loss must be one of {LOSSES}, got {loss!r}")
    if negatives < 0 or batch_size < 1 or dim < 1:
        raise ValueError(f"need negatives >= 0, batch_size >= 1, dim >= 1; got {negatives}, {batch_size}, {dim}")
    queries = pd.unique(log["query"]).tolist()
    vocab = WordVocabulary.from_queries(queries, min_count)
    used = np.unique(image)
    mean, basis = whitening if whitening is not None else whitening_basis(np.asarray(features)[used], feature_pcs)
    torch.manual_seed(seed)
    model = ClickCF(len(vocab), np.asarray(features).shape[1], dim, mean, basis)
    with torch.no_grad():
        inputs = model.image_inputs(torch.as_tensor(np.asarray(features), dtype=torch.float32))
    pairs = ClickPairs(vocab.encode(queries), inputs, pd.Index(queries).get_indexer(log["query"]), image,
                       click_targets(log["clicks"].to_numpy(), target), used)
    rng = np.random.default_rng(seed)

    def loss_fn(m: ClickCF, batch: tuple) -> torch.Tensor:
        if loss == "ranking":
            word_ids, x_pos, x_neg, w = batch
            vq = m.query_vectors(word_ids)
            pos = (vq * m.image_vectors(x_pos, preprocessed=True)).sum(dim=1)
            neg = (vq * m.image_vectors(x_neg, preprocessed=True)).sum(dim=1)
            return click_ranking_loss(pos, neg, w)
        word_ids, x, y = batch
        return click_regression_loss(m(word_ids, x, preprocessed=True), y)

    batches = pairs.ranking_batches if loss == "ranking" else pairs.epoch_batches

    cfg = TrainConfig(epochs=epochs, optimizer="adam", lr=lr, weight_decay=weight_decay, grad_clip=grad_clip,
                      seed=seed, device="cpu", monitor=monitor, mode="max", log_every=10, progress=False)
    wrapped = None if val_fn is None else (lambda m: val_fn(ClickCFFit(m, vocab, pd.DataFrame(), queries)))
    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        history = Trainer(model, loss_fn, cfg).fit(lambda: batches(negatives, batch_size, rng),
                                                   val_fn=wrapped)
    finally:
        torch.set_num_threads(before)
    return ClickCFFit(model.eval(), vocab, history, queries)


# --- comparators ---------------------------------------------------------------------------------

def _standardise(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    mean, std = x[rows].mean(0), x[rows].std(0) + 1e-6
    return (x - mean) / std


def _unit(m: np.ndarray | sp.spmatrix) -> np.ndarray | sp.csr_matrix:
    if sp.issparse(m):
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        return sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ m.tocsr()
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.divide(m, norms, out=np.zeros_like(m, dtype=float), where=norms > 0)


def idf_weights(bags: sp.csr_matrix) -> np.ndarray:
    """Smoothed inverse document frequency ``log((1 + n) / (1 + df)) + 1`` of each column."""
    df = np.asarray((bags > 0).sum(axis=0)).ravel()
    return np.log((1 + bags.shape[0]) / (1 + df)) + 1


@dataclass
class CrossViewEmbedding:
    """Query and image maps to a common D-space (CCL in spirit); scores are cosines."""

    vocab: WordVocabulary
    idf: np.ndarray
    query_map: np.ndarray  # (words, D)
    image_map: np.ndarray  # (feature axes, D)
    feature_mean: np.ndarray
    feature_basis: np.ndarray  # centring + whitening, as ClickCF's

    def query_vectors(self, queries: Sequence[str]) -> np.ndarray:
        bags = _unit(self.vocab.bag_of_words(queries) @ sp.diags(self.idf))
        return _unit(np.asarray(bags @ self.query_map))

    def image_vectors(self, features: np.ndarray) -> np.ndarray:
        x = (np.asarray(features, dtype=np.float64) - self.feature_mean) @ self.feature_basis
        return _unit(x @ self.image_map)


def fit_cross_view_pls(log: pd.DataFrame, features: np.ndarray, keys: Sequence[str], dim: int = 64,
                       target: str = "log1p", whitening: tuple[np.ndarray, np.ndarray] | None = None,
                       feature_pcs: int | None = 128) -> CrossViewEmbedding:
    """Click-weighted cross-view embedding (CCL in spirit): top-D SVD of ``X^T C F``.

    ``X`` the queries' unit tf-idf bags of words, ``F`` the image features centred and whitened
    as for :class:`ClickCF` (``whitening`` or ``feature_pcs`` axes fitted on the log's images),
    ``C`` the click weights (``target`` of the counts). Maximising
    ``sum_clicks w (U^T x)^T (W^T f)`` over orthonormal ``U, W`` (CCL's cross term) is solved by
    the singular vectors, exactly.
    """
    queries = pd.unique(log["query"]).tolist()
    vocab = WordVocabulary.from_queries(queries)
    bags = vocab.bag_of_words(queries)
    idf = idf_weights(bags)
    x = _unit(bags @ sp.diags(idf))
    image = pd.Index(keys).get_indexer(log["key"])
    if (image < 0).any():
        raise ValueError(f"log key {log['key'].iloc[int(np.flatnonzero(image < 0)[0])]!r} has no feature row")
    feats = np.asarray(features, dtype=np.float64)
    mean, basis = whitening if whitening is not None else whitening_basis(feats[np.unique(image)], feature_pcs)
    f = (feats - mean) @ basis
    c = sp.csr_matrix((click_targets(log["clicks"].to_numpy(), target),
                       (pd.Index(queries).get_indexer(log["query"]), image)), shape=(len(queries), len(feats)))
    cross = np.asarray(x.T @ (c @ f))  # (words, feature axes)
    u, _, vt = np.linalg.svd(cross, full_matrices=False)
    dim = min(dim, len(vt))
    return CrossViewEmbedding(vocab, idf, u[:, :dim], vt[:dim].T, mean, basis)


def annotation_pseudo_log(keys: Sequence[str], texts: Sequence[str],
                          phrases: Callable[[str], list[str]]) -> pd.DataFrame:
    """Pseudo-triads ``(phrase, key, 1)``: every image with the ``phrases`` of its own text; the
    eq.-(1) model trained on them is a content model that never sees a click."""
    rows = [(q, k, 1) for k, t in zip(keys, texts) for q in phrases(str(t))]
    return pd.DataFrame(rows, columns=["query", "key", "clicks"])


def word_bags(vocab: WordVocabulary, keys: Sequence[str], log: pd.DataFrame | None = None,
              texts: Sequence[str] | None = None) -> sp.csr_matrix:
    """tf-idf bags of words of images ``keys``: from their clicked queries (``log``, each query's
    words weighted log(1 + clicks)) or from their own ``texts`` (aligned with ``keys``)."""
    if (log is None) == (texts is None):
        raise ValueError("word_bags: give exactly one of log and texts")
    if log is not None:
        rows = pd.Index(keys).get_indexer(log["key"])
        if (rows < 0).any():
            raise ValueError(f"word_bags: log key {log['key'].iloc[int(np.flatnonzero(rows < 0)[0])]!r} not in keys")
        weights = sp.csr_matrix((click_targets(log["clicks"].to_numpy()), (rows, np.arange(len(log)))),
                                shape=(len(keys), len(log)))
        bags = weights @ vocab.bag_of_words(log["query"].tolist())
    else:
        bags = vocab.bag_of_words(list(texts))
    return sp.csr_matrix(bags @ sp.diags(idf_weights(bags)))


def bag_cosines(vocab: WordVocabulary, queries: Sequence[str], bags: sp.csr_matrix, q_idx: np.ndarray,
                i_idx: np.ndarray) -> np.ndarray:
    """Cosine of each query's bag of words with an image's (unit) bag, for the pairs ``(q_idx, i_idx)``."""
    qbags = _unit(vocab.bag_of_words(queries))
    return np.asarray(qbags[q_idx].multiply(bags[i_idx]).sum(axis=1)).ravel()


def visual_neighbour_mix(train_features: np.ndarray, features: np.ndarray, k: int = 10) -> sp.csr_matrix:
    """Sparse ``(n, n_train)`` weights: each image's ``k`` nearest training images by the cosine of
    standardised CNN features, weighted by that (non-negative) cosine."""
    tf = np.asarray(train_features, dtype=np.float64)
    mean, std = tf.mean(0), tf.std(0) + 1e-6
    a = _unit((tf - mean) / std).astype(np.float32)
    b = _unit((np.asarray(features, dtype=np.float64) - mean) / std).astype(np.float32)
    k = min(k, len(a))
    sim = b @ a.T
    idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    w = np.clip(np.take_along_axis(sim, idx, axis=1), 0, None).astype(np.float64)
    return sp.csr_matrix((w.ravel(), (np.repeat(np.arange(len(b)), k), idx.ravel())), shape=(len(b), len(a)))


def knn_word_profiles(train_bags: sp.csr_matrix, mix: sp.csr_matrix) -> sp.csr_matrix:
    """Bags of words of images borrowed from their visual nearest training images (BoWDNN-R in
    spirit): ``mix`` from :func:`visual_neighbour_mix`, each neighbour's bag unit-length; the
    result is unit-length, so a query's unit bag scores it by cosine."""
    if train_bags.shape[0] != mix.shape[1]:
        raise ValueError(f"train_bags has {train_bags.shape[0]} rows for {mix.shape[1]} training images in mix")
    return _unit(mix @ _unit(train_bags))
