"""Paper A click features: query formation, word click matrix C', eq. (1) and the code variant."""
from __future__ import annotations

import math
import re
from collections import defaultdict

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

from clickvision.click.features import (QueryFormer, WordClickMatrix, click_tfidf, reselect_vocabulary, top_words,
                                        word_click_matrix)
from clickvision.click.log import write_click_log
from clickvision.data.base import DataError

LEMMAS = {"dogs": "dog", "puppies": "puppy", "cats": "cat", "geese": "goose"}
STOP = {"a", "the", "of", "and"}


class DictLemmatizer:
    """A stand-in for WordNet (hand-checked lemmas), so most tests need no corpus."""

    def __init__(self) -> None:
        self.calls = 0

    def lemmatize(self, word: str) -> str:
        self.calls += 1
        return LEMMAS.get(word, word)


# A hand-made log: (query, key, clicks). Image e has clicks only on words outside the vocabulary
# (a zero row); x is not in the key list (skipped); "dog dogs" repeats a word in one query.
LOG = [
    ("Dogs and puppies", "a", 3),
    ("dog", "a", 2),
    ("the cat", "b", 4),
    ("cats of geese!", "b", 1),   # "geese!" is not [a-zA-Z0-9]+: dropped
    ("goose", "c", 5),
    ("dog dogs", "c", 1),
    ("puppy", "d", 2),
    ("zebra", "e", 1),
    ("dog", "x", 7),
    ("cat", "d", 1),
]
KEYS = ["a", "b", "c", "d", "e"]
TRAIN = ["a", "b", "c", "e"]


def independent_words(query: str) -> list[str]:
    out = []
    for tok in query.lower().split():
        if re.fullmatch(r"[a-z0-9]+", tok):
            w = LEMMAS.get(tok, tok)
            if w not in STOP and w not in out:
                out.append(w)
    return out


def independent_counts(k: int):
    """Dense C' over all words, the top-k training vocabulary, by plain loops."""
    counts = defaultdict(lambda: defaultdict(float))
    for q, key, c in LOG:
        if key in KEYS:
            for w in independent_words(q):
                counts[key][w] += c
    totals = defaultdict(float)
    for key in TRAIN:
        for w, c in counts[key].items():
            totals[w] += c
    vocab = sorted((w for w in totals if totals[w] > 0), key=lambda w: (-totals[w], w))[:k]
    dense = np.array([[counts[key][w] for w in vocab] for key in KEYS])
    return dense, vocab, [totals[w] for w in vocab]


def independent_eq1(dense: np.ndarray, train_mask: np.ndarray) -> np.ndarray:
    n = train_mask.sum()
    out = np.zeros_like(dense)
    for j in range(dense.shape[1]):
        rho = sum(1 for i in range(len(dense)) if train_mask[i] and dense[i, j] != 0) / n
        for i in range(len(dense)):
            total = dense[i].sum()
            if total > 0:
                out[i, j] = dense[i, j] / total * math.log(1 / rho)
    return out


@pytest.fixture()
def former() -> QueryFormer:
    return QueryFormer(lemmatizer=DictLemmatizer(), stop_words=STOP)


def test_query_formation_hand_checked(former):
    assert former.tokens("Dogs and puppies") == ["dogs", "and", "puppies"]
    assert former.words("Dogs and puppies") == ("dog", "puppy")
    assert former.words("cats of geese!") == ("cat",)  # punctuation-bearing token dropped, stop word dropped
    assert former.words("dog dogs") == ("dog",)  # a word counts once per query
    assert former.words("") == ()


def test_query_memo_counts_and_bounded_cache():
    lem = DictLemmatizer()
    f = QueryFormer(lemmatizer=lem, stop_words=STOP, max_cached_queries=2, max_cached_tokens=2)
    for q in ["dogs", "dogs", "cats", "geese", "dogs"]:
        f.words(q)
    assert f.query_hits == 1 and f.query_misses == 4
    assert len(f._queries) <= 2 and len(f._tokens) <= 2
    assert f.words("dogs") == ("dog",)


def test_numeric_tokens_skip_the_lemmatizer():
    lem = DictLemmatizer()
    f = QueryFormer(lemmatizer=lem, stop_words=STOP)
    assert f.words("2024 12 dogs") == ("2024", "12", "dog")
    assert lem.calls == 1


def test_word_click_matrix_matches_independent_counts(former):
    wc = word_click_matrix(LOG, keys=KEYS, train_keys=TRAIN, k=3, former=former)
    dense, vocab, totals = independent_counts(3)
    assert wc.vocabulary == vocab == ["dog", "cat", "goose"]
    np.testing.assert_allclose(wc.counts.toarray(), dense)
    np.testing.assert_allclose(wc.word_clicks, totals)
    assert wc.stats["rows_unknown_key"] == 1 and wc.stats["rows"] == len(LOG)
    assert wc.stats["distinct_words"] == 5  # dog puppy cat goose zebra
    assert list(wc.train) == [True, True, True, False, True]


def test_chunked_streaming_gives_the_same_matrix(former):
    big = word_click_matrix(LOG, keys=KEYS, train_keys=TRAIN, k=10, former=former)
    small = word_click_matrix(LOG, keys=KEYS, train_keys=TRAIN, k=10, chunk_rows=2,
                              former=QueryFormer(lemmatizer=DictLemmatizer(), stop_words=STOP))
    assert big.vocabulary == small.vocabulary
    assert (big.counts != small.counts).nnz == 0


@pytest.mark.parametrize("subset", [["a", "c", "d"], ["b", "d", "e"], ["c"], ["a", "b", "c", "d", "e"]])
@pytest.mark.parametrize("k", [1, 2, 10])
def test_reselect_vocabulary_equals_a_rebuild_on_the_subset(former, subset, k):
    full = word_click_matrix(LOG, keys=KEYS, train_keys=TRAIN, k=100, former=former)
    rows = [KEYS.index(x) for x in subset]
    got = reselect_vocabulary(full, rows, k)
    want = word_click_matrix(LOG, keys=subset, train_keys=[x for x in subset if x in TRAIN], k=k,
                             former=QueryFormer(lemmatizer=DictLemmatizer(), stop_words=STOP))
    assert got.vocabulary == want.vocabulary
    np.testing.assert_allclose(got.counts.toarray(), want.counts.toarray())
    np.testing.assert_allclose(got.word_clicks, want.word_clicks)
    assert list(got.keys) == subset and list(got.train) == list(want.train)


def test_reselect_vocabulary_refuses_a_truncated_matrix(former):
    truncated = word_click_matrix(LOG, keys=KEYS, train_keys=TRAIN, k=2, former=former)
    with pytest.raises(ValueError, match="build it with k >= 5"):
        reselect_vocabulary(truncated, [0, 1], 2)
    full = word_click_matrix(LOG, keys=KEYS, train_keys=TRAIN, k=100, former=former)
    with pytest.raises(ValueError, match="rows must be"):
        reselect_vocabulary(full, [0, 9], 2)


def test_keys_default_to_first_appearance_and_file_input(tmp_path, former):
    path = tmp_path / "log.tsv"
    write_click_log(LOG, path)
    wc = word_click_matrix(path, k=10, former=former)
    assert list(wc.keys) == ["a", "b", "c", "d", "e", "x"]
    assert wc.counts[list(wc.keys).index("x"), wc.vocabulary.index("dog")] == 7


def test_click_tfidf_matches_independent_eq1(former):
    wc = word_click_matrix(LOG, keys=KEYS, train_keys=TRAIN, k=3, former=former)
    tf = click_tfidf(wc)
    dense, _, _ = independent_counts(3)
    expected = independent_eq1(dense, wc.train)
    np.testing.assert_allclose(tf.features.toarray(), expected, rtol=1e-12, atol=1e-15)
    # image e clicked only "zebra" (not in the 3-word vocabulary): a zero row, masked and counted
    assert list(tf.valid) == [True, True, True, True, False]
    assert tf.n_zero_rows == 1 and tf.n_zero_train_rows == 1
    # hand check: rho_dog = 2/4 (a, c of the four training images)
    assert tf.idf[0] == pytest.approx(math.log(2))


def test_click_tfidf_code_variant_matches_sklearn(former):
    wc = word_click_matrix(LOG, keys=KEYS, train_keys=TRAIN, k=4, former=former)
    tf = click_tfidf(wc, variant="code")
    # the authors' code: per-image documents repeating each vocabulary word once per click
    docs = []
    for key in KEYS:
        words = []
        for q, k_, c in LOG:
            if k_ == key:
                words += [w for w in independent_words(q) if w in wc.vocabulary] * c
        docs.append(" ".join(words))
    cv = CountVectorizer(vocabulary=wc.vocabulary, analyzer=str.split)
    counts = cv.transform(docs)
    train = np.array([k in TRAIN for k in KEYS])
    ref = TfidfTransformer(smooth_idf=True, norm="l2").fit(counts[train]).transform(counts)
    np.testing.assert_allclose(tf.features.toarray(), ref.toarray(), rtol=1e-12, atol=1e-15)


def test_click_tfidf_bare_matrix_and_errors():
    m = sp.csr_matrix(np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 0.0]]))
    tf = click_tfidf(m)
    # n = 3 rows; word 0 on rows 0-1 (rho 2/3), word 1 on row 1 (rho 1/3)
    np.testing.assert_allclose(tf.features.toarray(),
                               [[math.log(1.5), 0], [0.5 * math.log(1.5), 0.5 * math.log(3)], [0, 0]])
    with pytest.raises(ValueError, match="variant"):
        click_tfidf(m, variant="bm25")
    with pytest.raises(ValueError, match="rho_j = 0"):
        click_tfidf(m, train=np.array([True, False, True]))
    with pytest.raises(ValueError, match="non-negative"):
        click_tfidf(sp.csr_matrix(np.array([[-1.0]])))
    with pytest.raises(ValueError, match="no training rows"):
        click_tfidf(m, train=np.zeros(3, bool))


def test_bad_input_is_named(tmp_path, former):
    bad = tmp_path / "bad.tsv"
    bad.write_text("dog\ta\t3\ncat\tb\tzero\n")
    with pytest.raises(DataError, match=r"bad.tsv:2"):
        word_click_matrix(bad, former=former)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        word_click_matrix(LOG, k=0, former=former)
    with pytest.raises(DataError, match="none of the"):
        word_click_matrix(LOG, keys=["nope"], former=former)
    with pytest.raises(ValueError, match="not in keys"):
        word_click_matrix(LOG, keys=KEYS, train_keys=["zz"], former=former)


def test_top_words_and_wordclickmatrix_checks(former):
    wc = word_click_matrix(LOG, keys=KEYS, train_keys=TRAIN, k=3, former=former)
    tf = click_tfidf(wc)
    words = top_words(tf.features, wc.vocabulary, 1, n=2)
    assert [w for w, _ in words] == ["cat"]  # image b: only "cat" is nonzero
    assert list(wc.rows_of(["c", "a"])) == [2, 0]
    with pytest.raises(ValueError, match="do not fit"):
        WordClickMatrix(wc.counts, wc.keys[:2], wc.vocabulary, wc.word_clicks, wc.train)


def test_default_former_uses_wordnet_lazily_and_english_stop_words(monkeypatch):
    """The defaults: scikit-learn's English stop words, and the WordNet lemmatizer of
    ``clickvision.data.wordnet`` loaded on first use (tested against the real corpus in
    tests/test_wordnet.py; a stub here keeps this test fast)."""
    from clickvision.data import wordnet

    loads = []

    def fake_get_lemmatizer():
        loads.append(1)
        return DictLemmatizer()

    monkeypatch.setattr(wordnet, "get_lemmatizer", fake_get_lemmatizer)
    f = QueryFormer()
    assert {"the", "and", "of"} <= f.stop_words and not loads  # nothing loaded yet
    assert f.words("The geese and the Dogs") == ("goose", "dog")
    assert f.words("cats") == ("cat",) and loads == [1]  # loaded once
