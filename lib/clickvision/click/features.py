"""Click features of images from a click log: paper A section III-A, eq. (1), Fig. 5.

From a log of triads ``(query, image key, clicks)`` (Clickture's format, streamed with
:func:`clickvision.click.log.iter_click_log`) to the ground-truth click feature ``v``:

1. **Query formation** (:class:`QueryFormer`): each query is lower-cased and split on white
   space; only tokens made entirely of ``[a-zA-Z0-9]`` are kept, lemmatised with WordNet
   (nltk's ``WordNetLemmatizer``, noun reading) and stop words are dropped; a word is counted
   once per query. The result is memoised per distinct query (and per token), in caches
   that are cleared when they fill, so memory stays bounded on a 23.1 M-row log.
2. **Word click matrix** (:func:`word_click_matrix`): ``c'_ij = sum of the clicks of image i
   over the queries containing word j``, over the vocabulary ``V_s`` of the ``K`` words
   with the most clicks on *training* images (ties broken alphabetically). One pass over the
   log in chunks: per chunk the image x query click matrix ``C_s`` times the query x word
   incidence, summed into a sparse image x word matrix.
3. **Click TF-IDF** (:func:`click_tfidf`): eq. (1),
   ``v_ij = c'_ij / sum_j c'_ij * log(1 / rho_j)``, ``rho_j`` = share of the ``n`` training
   images with a nonzero count on word ``j`` (vocabulary, ``rho`` and ``n`` come from the
   training split only; ``n`` counts every training row, clicked or not). An image with no
   click on any vocabulary word has a zero row (0/0 in eq. 1, and N'(0) is undefined): it is
   returned as a zero row, marked ``valid = False`` and counted, so click losses can mask it.
   ``variant="code"`` is the authors' code instead: each image a document repeating every
   vocabulary word of each clicked query once per click, then scikit-learn's
   ``CountVectorizer`` + ``TfidfTransformer`` semantics (raw counts, smoothed idf
   ``ln((1 + n) / (1 + df)) + 1``, l2-normalised rows).

Everything is sparse (``scipy.sparse`` CSR, float64).
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..data.base import DataError
from .log import CLICKTURE_COLUMNS, ClickRecord, iter_click_log

TOKEN_PATTERN = re.compile(r"[A-Za-z0-9]+")
TFIDF_VARIANTS = ("paper", "code")


class QueryFormer:
    """Query formation of paper A (Fig. 5; authors' code): query -> tuple of distinct words.

    ``lemmatizer``: an object with ``lemmatize(word) -> str`` (default: WordNet via
    :func:`clickvision.data.wordnet.get_lemmatizer`, loaded on first use); ``stop_words``
    (default: :func:`clickvision.data.wordnet.english_stop_words`). Purely numeric tokens skip
    the lemmatiser (WordNet returns them unchanged). ``max_cached_queries`` /
    ``max_cached_tokens`` bound the memo tables: a full table is cleared, not grown.
    """

    def __init__(self, lemmatizer: Any = None, stop_words: Iterable[str] | None = None,
                 max_cached_queries: int = 1_000_000, max_cached_tokens: int = 1_000_000) -> None:
        if max_cached_queries < 1 or max_cached_tokens < 1:
            raise ValueError("QueryFormer: max_cached_queries and max_cached_tokens must be >= 1")
        self._lemmatizer = lemmatizer
        if stop_words is None:
            from ..data.wordnet import english_stop_words

            stop_words = english_stop_words()
        self.stop_words = frozenset(w.lower() for w in stop_words)
        self.max_cached_queries, self.max_cached_tokens = max_cached_queries, max_cached_tokens
        self._queries: dict[str, tuple[str, ...]] = {}
        self._tokens: dict[str, str] = {}
        self.query_hits = self.query_misses = 0

    @property
    def lemmatizer(self) -> Any:
        if self._lemmatizer is None:
            from ..data.wordnet import get_lemmatizer

            self._lemmatizer = get_lemmatizer()
        return self._lemmatizer

    def tokens(self, query: str) -> list[str]:
        """Lower-cased white-space tokens made only of ``[a-zA-Z0-9]`` (others are dropped)."""
        # str.isascii() and str.isalnum() together accept exactly [a-zA-Z0-9]+ (faster than the regex)
        return [t for t in query.lower().split() if t.isascii() and t.isalnum()]

    def _lemma(self, token: str) -> str:
        lemma = self._tokens.get(token)
        if lemma is None:
            lemma = token if token.isdigit() else self.lemmatizer.lemmatize(token)
            if len(self._tokens) >= self.max_cached_tokens:
                self._tokens.clear()
            self._tokens[token] = lemma
        return lemma

    def words(self, query: str) -> tuple[str, ...]:
        """Distinct words of ``query`` in order of first occurrence (memoised per query)."""
        out = self._queries.get(query)
        if out is not None:
            self.query_hits += 1
            return out
        self.query_misses += 1
        stop = self.stop_words
        out = tuple(dict.fromkeys([w for w in [self._lemma(t) for t in self.tokens(query)] if w not in stop]))
        if len(self._queries) >= self.max_cached_queries:
            self._queries.clear()
        self._queries[query] = out
        return out


@dataclass
class WordClickMatrix:
    """The word click matrix C' (paper A Table I) over a vocabulary of the K top-clicked words.

    ``counts``: CSR ``(n_images, K)`` float64, ``c'_ij``; row ``i`` is image ``keys[i]``.
    ``word_clicks``: clicks of each vocabulary word over the training images (its rank);
    ``train``: which rows are training images (the vocabulary, ``rho`` and ``n`` of eq. 1
    come from them). ``stats``: rows read, clicks, words seen (K'), rows of unknown keys...
    """

    counts: sp.csr_matrix
    keys: np.ndarray
    vocabulary: list[str]
    word_clicks: np.ndarray
    train: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, k = self.counts.shape
        if len(self.keys) != n or len(self.train) != n or len(self.vocabulary) != k or len(self.word_clicks) != k:
            raise ValueError(f"WordClickMatrix: counts {self.counts.shape} do not fit keys ({len(self.keys)}), "
                             f"train ({len(self.train)}), vocabulary ({len(self.vocabulary)}) "
                             f"and word_clicks ({len(self.word_clicks)})")

    @property
    def n_images(self) -> int:
        return self.counts.shape[0]

    @property
    def k(self) -> int:
        return self.counts.shape[1]

    def rows_of(self, keys: Sequence[str]) -> np.ndarray:
        """Row indices of ``keys`` (KeyError naming the first unknown key)."""
        index = {k: i for i, k in enumerate(self.keys.tolist())}
        try:
            return np.array([index[k] for k in keys], dtype=np.int64)
        except KeyError as exc:
            raise KeyError(f"key {exc.args[0]!r} is not a row of this word click matrix") from None


def _records(log: str | os.PathLike | Iterable[ClickRecord], columns: Sequence[str]) -> Iterable:
    if isinstance(log, (str, os.PathLike)):
        return iter_click_log(Path(log), columns)
    return log


def _incidence(q_words: list[tuple[int, ...]], n_words: int) -> sp.csr_matrix:
    """Binary (queries x words) matrix: row q has a 1 at each word of query q."""
    lengths = np.fromiter((len(w) for w in q_words), dtype=np.int64, count=len(q_words))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.fromiter((j for w in q_words for j in w), dtype=np.int64, count=int(indptr[-1]))
    return sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(q_words), n_words))



def record_columns(records: Iterable[ClickRecord], rows: int):
    """``(queries, keys, clicks)`` tuples of up to ``rows`` click records at a time."""
    it = iter(records)
    while chunk := list(islice(it, rows)):
        yield tuple(zip(*chunk))


def _full_word_clicks(records: Iterable, key_index: dict[str, int], grow_keys: bool, former: QueryFormer,
                      chunk_rows: int) -> tuple[sp.csr_matrix, list[str], dict[str, Any]]:
    """One streaming pass: (images x all words) click matrix, the words, and counters.

    Per chunk of ``chunk_rows`` triads, queries and keys are factorised (a C hash table),
    query formation runs once per distinct query, and the chunk's image x query click matrix
    times the query x word incidence is added to the running sparse total.
    """
    import pandas as pd

    word_index: dict[str, int] = {}
    words: list[str] = []
    total: sp.csr_matrix | None = None
    stats = {"rows": 0, "clicks": 0, "rows_unknown_key": 0, "rows_without_words": 0}
    for queries, keys, clicks in record_columns(records, chunk_rows):
        clicks = np.asarray(clicks, dtype=np.float64)
        kcodes, kuniq = pd.factorize(np.asarray(keys, dtype=object))
        qcodes, quniq = pd.factorize(np.asarray(queries, dtype=object))
        del keys, queries
        kmap = np.empty(len(kuniq), dtype=np.int64)
        for i, key in enumerate(kuniq.tolist()):
            kid = key_index.get(key)
            if kid is None:
                if grow_keys:
                    kid = key_index[key] = len(key_index)
                else:
                    kid = -1
            kmap[i] = kid
        q_words = []
        for query in quniq.tolist():
            ids = []
            for w in former.words(query):
                j = word_index.get(w)
                if j is None:
                    j = word_index[w] = len(words)
                    words.append(w)
                ids.append(j)
            q_words.append(tuple(ids))
        rows = kmap[kcodes]
        known = rows >= 0
        empty = np.fromiter((not w for w in q_words), dtype=bool, count=len(q_words))
        stats["rows"] += len(rows)
        stats["clicks"] += int(clicks.sum())
        stats["rows_unknown_key"] += int((~known).sum())
        stats["rows_without_words"] += int((empty[qcodes] & known).sum())
        a = sp.csr_matrix((clicks[known], (rows[known], qcodes[known])), shape=(len(key_index), len(q_words)))
        part = (a @ _incidence(q_words, len(words))).tocsr()
        if total is None:
            total = part
        else:
            total.resize(part.shape)
            total = (total + part).tocsr()
    if total is None:
        total = sp.csr_matrix((len(key_index), len(words)))
    total.resize((len(key_index), len(words)))
    total.sum_duplicates()
    return total, words, stats


def word_click_matrix(log: str | os.PathLike | Iterable[ClickRecord], keys: Sequence[str] | None = None,
                      train_keys: Iterable[str] | None = None, k: int = 1000, former: QueryFormer | None = None,
                      columns: Sequence[str] = CLICKTURE_COLUMNS, chunk_rows: int = 2_000_000) -> WordClickMatrix:
    """The word click matrix C' of a click log over its K top-clicked training words (paper A III-A).

    ``log``: a click-log file (streamed with :func:`iter_click_log`, ``columns`` its field
    order) or any iterable of ``(query, key, clicks)``. ``keys``: the rows, in order (e.g. an
    ImageSet's keys; rows of other keys in the log are skipped and counted); default: every
    key of the log in order of first appearance. ``train_keys``: the training images (the
    vocabulary is ranked by clicks on them); default: every row. ``k``: vocabulary size
    (fewer when fewer words were clicked on training images). Memory: one chunk of
    ``chunk_rows`` triads plus the sparse image x word matrix.
    """
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"word_click_matrix: k must be a positive integer, got {k!r}")
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ValueError(f"word_click_matrix: chunk_rows must be a positive integer, got {chunk_rows!r}")
    former = former or QueryFormer()
    if keys is not None:
        key_list = [str(x) for x in keys]
        key_index = {x: i for i, x in enumerate(key_list)}
        if len(key_index) != len(key_list):
            raise ValueError("word_click_matrix: keys contain duplicates")
    else:
        key_index = {}
    full, words, stats = _full_word_clicks(_records(log, columns), key_index, keys is None, former, chunk_rows)
    all_keys = np.array(list(key_index), dtype=object)
    if train_keys is None:
        train = np.ones(len(all_keys), dtype=bool)
    else:
        wanted = {str(x) for x in train_keys}
        train = np.array([x in wanted for x in all_keys.tolist()], dtype=bool)
        if keys is not None and not (wanted <= set(key_index)):
            missing = sorted(wanted - set(key_index))[:3]
            raise ValueError(f"word_click_matrix: train_keys {missing} are not in keys")
    totals = np.asarray(full[train].sum(axis=0)).ravel() if len(words) else np.zeros(0)
    clicked = np.flatnonzero(totals > 0)
    order = sorted(clicked.tolist(), key=lambda j: (-totals[j], words[j]))[:k]
    vocab_ids = np.array(order, dtype=np.int64)
    stats["train_word_clicks"] = float(totals.sum())
    stats["train_word_clicks_in_vocabulary"] = float(totals[vocab_ids].sum()) if len(vocab_ids) else 0.0
    stats["train_words"] = int(len(clicked))
    counts = full[:, vocab_ids].tocsr() if len(vocab_ids) else sp.csr_matrix((len(all_keys), 0))
    counts.sort_indices()
    stats.update(distinct_words=len(words), vocabulary=len(vocab_ids), images=len(all_keys),
                 train_images=int(train.sum()), queries_memo_hits=former.query_hits,
                 queries_memo_misses=former.query_misses)
    if stats["rows"] and keys is not None and stats["rows_unknown_key"] == stats["rows"]:
        raise DataError(f"word_click_matrix: none of the {stats['rows']} log rows has a key among the "
                        f"{len(key_index)} given keys (first given: {next(iter(key_index), None)!r})")
    return WordClickMatrix(counts, all_keys, [words[j] for j in order], totals[vocab_ids].astype(np.float64),
                           train, stats)


def reselect_vocabulary(wc: WordClickMatrix, rows: Sequence[int] | np.ndarray, k: int) -> WordClickMatrix:
    """Rows ``rows`` of ``wc`` with the vocabulary re-ranked on *their* training rows (top ``k``).

    Equals :func:`word_click_matrix` rebuilt from the log on those rows' keys when ``wc``
    holds every word clicked on a training image (build it with ``k`` >= its ``train_words``), so
    a class subset gets its own vocabulary (paper A Fig. 13, Table IX) without re-reading and
    re-lemmatising the log. Ties keep the log build's order (more clicks first, then the word).
    """
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"reselect_vocabulary: k must be a positive integer, got {k!r}")
    rows = np.asarray(rows, dtype=np.int64)
    if rows.ndim != 1 or (len(rows) and (rows.min() < 0 or rows.max() >= wc.n_images)):
        raise ValueError(f"reselect_vocabulary: rows must be a 1-D list of indices in [0, {wc.n_images})")
    n_words = wc.stats.get("train_words", len(wc.vocabulary))
    if n_words > len(wc.vocabulary):
        raise ValueError(f"reselect_vocabulary: the matrix keeps {len(wc.vocabulary)} of the {n_words} words "
                         f"clicked on training images; build it with k >= {n_words} so a subset can re-rank "
                         "every word")
    counts = wc.counts[rows].tocsr()
    train = wc.train[rows]
    totals = np.asarray(counts[train].sum(axis=0)).ravel()
    clicked = np.flatnonzero(totals > 0)
    order = np.array(sorted(clicked.tolist(), key=lambda j: (-totals[j], wc.vocabulary[j]))[:k], dtype=np.int64)
    sub = counts[:, order].tocsr() if len(order) else sp.csr_matrix((len(rows), 0))
    sub.sort_indices()
    stats = {**wc.stats, "images": len(rows), "train_images": int(train.sum()), "vocabulary": len(order),
             "train_words": int(len(clicked)), "train_word_clicks": float(totals.sum()),
             "train_word_clicks_in_vocabulary": float(totals[order].sum()) if len(order) else 0.0,
             "reselected_from": len(wc.vocabulary)}
    return WordClickMatrix(sub, wc.keys[rows], [wc.vocabulary[j] for j in order],
                           totals[order].astype(np.float64), train, stats)


@dataclass
class ClickTfidf:
    """Click features: ``features`` CSR ``(n_images, K)``; ``valid`` rows are non-zero.

    ``idf``: the per-word factor (eq. 1: ``log(1 / rho_j)``; code: smoothed idf);
    ``variant``: ``"paper"`` (eq. 1) or ``"code"`` (the authors' code).
    """

    features: sp.csr_matrix
    valid: np.ndarray
    idf: np.ndarray
    variant: str
    train: np.ndarray

    @property
    def n_zero_rows(self) -> int:
        """Images with no click on any vocabulary word (masked from click losses)."""
        return int((~self.valid).sum())

    @property
    def n_zero_train_rows(self) -> int:
        return int((~self.valid & self.train).sum())

    def dense(self, rows: np.ndarray | None = None, dtype: Any = np.float32) -> np.ndarray:
        m = self.features if rows is None else self.features[rows]
        return m.toarray().astype(dtype, copy=False)


def click_tfidf(word_clicks: WordClickMatrix | sp.spmatrix | np.ndarray, train: np.ndarray | None = None,
                variant: str = "paper") -> ClickTfidf:
    """Ground-truth click features from a word click matrix: paper A eq. (1) (default).

    ``variant="paper"``: ``v_ij = c'_ij / sum_j c'_ij * ln(1 / rho_j)``, ``rho_j`` = (training
    rows with ``c'_ij != 0``) / (training rows). ``variant="code"``: the authors' code, i.e.
    scikit-learn ``TfidfTransformer(smooth_idf=True, norm="l2")`` fitted on the training rows
    of the per-image word counts. ``train``: training rows (default: the matrix's own
    ``train`` mask, or every row for a bare matrix). Zero rows stay zero and ``valid=False``.
    """
    if variant not in TFIDF_VARIANTS:
        raise ValueError(f"click_tfidf: variant must be one of {TFIDF_VARIANTS}, got {variant!r}")
    if isinstance(word_clicks, WordClickMatrix):
        counts = word_clicks.counts
        train = word_clicks.train if train is None else train
    else:
        counts = word_clicks
    counts = sp.csr_matrix(counts, dtype=np.float64)
    n_rows, k = counts.shape
    train = np.ones(n_rows, dtype=bool) if train is None else np.asarray(train, dtype=bool)
    if train.shape != (n_rows,):
        raise ValueError(f"click_tfidf: train mask has shape {train.shape}, expected ({n_rows},)")
    if counts.nnz and (not np.all(np.isfinite(counts.data)) or counts.data.min() < 0):
        raise ValueError("click_tfidf: word clicks must be finite and non-negative")
    n = int(train.sum())
    if n == 0:
        raise ValueError("click_tfidf: no training rows (rho_j and n of eq. 1 come from them)")
    counts.eliminate_zeros()
    df = np.bincount(counts[train].indices, minlength=k).astype(np.float64)
    row_sums = np.asarray(counts.sum(axis=1)).ravel()
    valid = row_sums > 0
    out = counts.copy()
    if variant == "paper":
        if (df == 0).any():
            raise ValueError(f"click_tfidf: word column {int(np.flatnonzero(df == 0)[0])} has no click on a "
                             "training image (rho_j = 0, log(1/rho_j) is infinite); build the vocabulary "
                             "from the training split")
        idf = np.log(n / df)
        scale = np.divide(1.0, row_sums, out=np.zeros_like(row_sums), where=valid)
        out.data *= np.repeat(scale, np.diff(out.indptr)) * idf[out.indices]
    else:
        idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
        out.data *= idf[out.indices]
        norms = np.sqrt(np.asarray(out.multiply(out).sum(axis=1)).ravel())
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        out.data *= np.repeat(scale, np.diff(out.indptr))
    return ClickTfidf(out.tocsr(), valid, idf, variant, train)


def top_words(features: sp.spmatrix | np.ndarray, vocabulary: Sequence[str], row: int,
              n: int = 5) -> list[tuple[str, float]]:
    """The ``n`` words with the largest click feature in ``row`` (paper A Fig. 1), largest first."""
    values = np.asarray(features[row].toarray()).ravel() if sp.issparse(features) else np.asarray(features[row])
    order = np.lexsort((np.arange(len(values)), -values))
    return [(vocabulary[j], float(values[j])) for j in order[:n] if values[j] > 0]
