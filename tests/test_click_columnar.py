"""The columnar click pipeline (clickvision.click.columnar) equals the streaming one exactly.

Same keys (order), vocabulary (order), counts, word clicks, train mask, statistics and click
TF-IDF (eq. 1 and the code variant) as ``word_click_matrix`` + ``click_tfidf`` on: the
hand-made log of the paper-A tests, a log of odd-but-valid lines (Unicode, white space, CRLF,
blank lines, leading zeros...), the MSR fixture, a text-simulated log lemmatised by WordNet, and a
prefix of the Clickture-sized simulated log; in one block and in many (out-of-core) blocks.
Bad files raise the streaming reader's DataError. The 1 M-row comparison runs in
bench/bench_click_columnar.py.
"""
from __future__ import annotations

import gzip
import itertools

import numpy as np
import pandas as pd
import pytest

from clickvision.click import columnar
from clickvision.click.columnar import (columnar_click_tfidf, columnar_word_click_matrix, iter_click_batches)
from clickvision.click.features import QueryFormer, click_tfidf, word_click_matrix
from clickvision.click.log import MSR_TRAIN_COLUMNS, iter_click_log, write_click_log
from clickvision.click.simulator import ClickSimConfig, simulate_click_log, synthetic_scale_log
from clickvision import paths
from clickvision.data.base import DataError

pl = pytest.importorskip("polars")

LEMMAS = {"dogs": "dog", "puppies": "puppy", "cats": "cat", "geese": "goose", "thes": "the"}
STOP = {"a", "the", "of", "and"}


class DictLemmatizer:
    """A stand-in for WordNet (hand-checked lemmas) for the tests that need no corpus."""

    def lemmatize(self, word: str) -> str:
        return LEMMAS.get(word, word)


def dict_former() -> QueryFormer:
    return QueryFormer(lemmatizer=DictLemmatizer(), stop_words=STOP)


# The paper-A tests' hand-made log: image e has clicks only outside a small vocabulary, x is not
# among KEYS, "dog dogs" repeats a word in one query.
LOG = [
    ("Dogs and puppies", "a", 3), ("dog", "a", 2), ("the cat", "b", 4), ("cats of geese!", "b", 1),
    ("goose", "c", 5), ("dog dogs", "c", 1), ("puppy", "d", 2), ("zebra", "e", 1), ("dog", "x", 7),
    ("cat", "d", 1),
]
KEYS = ["a", "b", "c", "d", "e"]
TRAIN = ["a", "b", "c", "e"]

# Valid but odd queries: non-ASCII letters and white space (Unicode lower-casing: the Kelvin sign
# lower-cases to ASCII "k"), ASCII separators \x0b \x0c \x1c-\x1f, runs of spaces, numbers with
# leading zeros, a lemma that is a stop word ("thes" -> "the"), punctuation, quotes.
ODD = [
    ("Café  DOGS\u00a0puppies", "k1", 2), ("\u212aelvin dogs", "k2", 1), ("İstanbul cats 2024", "k1", 4),
    ("dog\x0bcat\x0cgoose", "k3", 3), ("a\x1cb\x1dc\x1ed\x1fe", "k2", 1), ("  leading and trailing  ", "k4", 5),
    ("007 bond 7", "k4", 2), ("thes cats", "k5", 1), ('say "cheese"', "k5", 2), ("dogs,cats dogs", "k3", 1),
    ("ÀÉÎ ÕÜ", "k6", 1), ("naïve café", "k6", 2), ("Ωmega omega ω", "k1", 1), ("x\u2003y z", "k2", 6),
    ("dog", "k7", 1), ("DOG Dog dOg", "k7", 2),
]


def assert_same(a, b) -> None:
    """Identical word click matrices (the columnar extras in stats aside) and click TF-IDF."""
    assert list(a.keys) == list(b.keys)
    assert a.vocabulary == b.vocabulary
    assert a.counts.shape == b.counts.shape
    assert np.array_equal(a.counts.indptr, b.counts.indptr)
    assert np.array_equal(a.counts.indices, b.counts.indices)
    assert np.array_equal(a.counts.data, b.counts.data)
    assert np.array_equal(a.word_clicks, b.word_clicks)
    assert np.array_equal(a.train, b.train)
    shared = set(a.stats) & set(b.stats) - {"seconds"}  # timings differ run to run
    assert shared >= {"rows", "clicks", "rows_unknown_key", "rows_without_words", "distinct_words",
                      "vocabulary", "images", "train_images", "train_words", "train_word_clicks",
                      "train_word_clicks_in_vocabulary"}
    assert {s: a.stats[s] for s in shared} == {s: b.stats[s] for s in shared}
    if a.k and a.train.any() and a.counts[a.train].getnnz(axis=0).all():
        for variant in ("paper", "code"):
            fa, fb = click_tfidf(a, variant=variant), click_tfidf(b, variant=variant)
            assert fa.features.shape == fb.features.shape
            assert abs(fa.features - fb.features).max() <= 1e-12 if fa.features.nnz else fb.features.nnz == 0
            assert np.array_equal(fa.valid, fb.valid)
            assert np.allclose(fa.idf, fb.idf, rtol=0, atol=1e-12)


@pytest.mark.parametrize("batch", [1, 3, 1000])
@pytest.mark.parametrize("keys,train,k", [(None, None, 10), (KEYS, TRAIN, 3), (KEYS, TRAIN, 100), (["b", "x"], None, 2)])
def test_hand_made_log_equals_streaming(keys, train, k, batch):
    want = word_click_matrix(LOG, keys=keys, train_keys=train, k=k, former=dict_former())
    got = columnar_word_click_matrix(LOG, keys=keys, train_keys=train, k=k, former=dict_former(), batch_rows=batch)
    assert_same(got, want)
    assert got.stats["batches"] == -(-len(LOG) // batch) and got.stats["spilled_entries"] == 0
    spilled = columnar_word_click_matrix(LOG, keys=keys, train_keys=train, k=k, former=dict_former(),
                                         batch_rows=batch, memory_entries=0)  # every part to disk
    assert_same(spilled, want)
    assert spilled.stats["spilled_entries"] > 0


@pytest.mark.parametrize("batch_bytes", [1, 7, 64, 1 << 20])
def test_odd_lines_file_equals_streaming(tmp_path, batch_bytes):
    path = tmp_path / "odd.tsv"
    write_click_log(ODD + LOG, path)
    want = word_click_matrix(path, k=50, former=dict_former())
    got = columnar_word_click_matrix(path, k=50, former=dict_former(), batch_bytes=batch_bytes)
    assert_same(got, want)
    assert {"kelvin", "dog", "cat", "puppy", "goose", "007", "7", "bond", "b", "x", "y", "z"} <= set(got.vocabulary)
    assert "the" not in got.vocabulary and "café" not in got.vocabulary


def test_valid_oddities_of_the_file_format(tmp_path):
    """CRLF, blank lines, leading zeros and spaces in clicks, a UTF-8 BOM, no final newline: read
    as the streaming reader reads them (those blocks go through the line-by-line reader)."""
    text = ("\ufeffdog\ta\t3\r\n\r\n\ncat puppies\tb\t007\n\n"
            "geese\tc\t 5 \r\r\ndogs\ta\t1\n" + "".join(f"dog {i}\tk{i % 3}\t{i + 1}\n" for i in range(50)) + "cat\tz\t2")
    path = tmp_path / "odd.tsv"
    path.write_bytes(text.encode("utf-8"))
    assert len(list(iter_click_log(path))) == 55
    for batch_bytes in (1, 16, 1 << 20):
        assert_same(columnar_word_click_matrix(path, k=20, former=dict_former(), batch_bytes=batch_bytes),
                    word_click_matrix(path, k=20, former=dict_former()))
    frames = list(iter_click_batches(path, batch_bytes=1 << 20))
    got = pl.concat(frames)
    assert got.rows() == [tuple(r) for r in iter_click_log(path)]


def test_gzip_and_msr_column_order(tmp_path):
    msr = paths.PROJ_ROOT / "tests" / "fixtures" / "originals" / "clickture" / "TrainClickLog.tsv"
    want = word_click_matrix(msr, k=100, former=dict_former(), columns=MSR_TRAIN_COLUMNS)
    assert_same(columnar_word_click_matrix(msr, k=100, former=dict_former(), columns=MSR_TRAIN_COLUMNS), want)
    gz = tmp_path / "log.tsv.gz"
    write_click_log(ODD * 30, gz)
    assert_same(columnar_word_click_matrix(gz, k=30, former=dict_former(), batch_bytes=100),
                word_click_matrix(gz, k=30, former=dict_former()))


def test_text_simulated_log_with_wordnet(tmp_path):
    """A text-simulated log (real English words and keywords) lemmatised by WordNet itself."""
    rng = np.random.default_rng(0)
    words = ["dogs", "puppies", "geese", "cats", "running", "leaves", "mice", "churches", "buses", "women",
             "icons", "symbols", "faces", "happy", "the", "of", "was", "boxes", "knives", "2019"]
    rows = [dict(key=f"img{i}", path="", label=f"class{i % 5}", group="g", split=["train", "val"][i % 2],
                 text=" ".join(rng.choice(words, 4)) + " | " + ", ".join(rng.choice(words, 3)))
            for i in range(80)]
    images = pd.DataFrame(rows)
    path = tmp_path / "sim.tsv"
    write_click_log(simulate_click_log(images, ClickSimConfig(), seed=0), path)
    train = [r["key"] for r in rows if r["split"] == "train"]
    former = QueryFormer()  # WordNet + scikit-learn stop words
    want = word_click_matrix(path, keys=[r["key"] for r in rows], train_keys=train, k=25, former=former)
    got = columnar_word_click_matrix(path, keys=[r["key"] for r in rows], train_keys=train, k=25,
                                     former=QueryFormer(), batch_bytes=4096)
    assert_same(got, want)
    assert got.stats["batches"] > 1 and {"dog", "goose", "mouse"} & set(got.vocabulary)


def test_scale_simulated_prefix_equals_streaming(tmp_path):
    """A 100 k-row prefix of the Clickture-sized simulated log (~50 k distinct numeric words), in one
    block and in blocks of ~1 MB; the 1 M-row comparison is in bench/bench_click_columnar.py."""
    path = tmp_path / "scale.tsv"
    write_click_log(synthetic_scale_log(n_rows=100_000, n_images=20_000, seed=0), path)
    want = word_click_matrix(path, k=1000, former=dict_former())
    for batch_bytes in (1 << 20, 64 << 20):
        got = columnar_word_click_matrix(path, k=1000, former=dict_former(), batch_bytes=batch_bytes)
        assert_same(got, want)
    assert got.stats["distinct_words"] > 10_000 and got.stats["batches"] == 1
    train = [f"img{i:07d}" for i in range(0, 20_000, 3)]
    spilled = columnar_word_click_matrix(path, train_keys=train, k=300, former=dict_former(), batch_bytes=1 << 20,
                                         memory_entries=50_000, spill_dir=tmp_path)
    assert_same(spilled, word_click_matrix(path, train_keys=train, k=300, former=dict_former()))
    assert spilled.stats["spilled_entries"] > 0 and not list(tmp_path.glob("clickvision-columnar-*"))
    wc, tf = columnar_click_tfidf(path, k=1000, former=dict_former(), variant="code")
    assert abs(tf.features - click_tfidf(want, variant="code").features).max() <= 1e-12


def test_hash_collisions_keep_strings_apart(monkeypatch):
    """With a deliberately poor hash (every string of a length shares one), results are unchanged:
    every look-up is checked against the code's string."""
    real = columnar._hash
    monkeypatch.setattr(columnar, "_hash", lambda s: s.str.len_bytes().cast(pl.UInt64).to_numpy())
    log = LOG + ODD + [(f"w{i} v{i % 7}", f"k{i % 11}", 1 + i % 4) for i in range(300)]
    for batch in (7, 1000):
        assert_same(columnar_word_click_matrix(log, k=40, former=dict_former(), batch_rows=batch),
                    word_click_matrix(log, k=40, former=dict_former()))
        assert_same(columnar_word_click_matrix(log, keys=KEYS + ["k1", "k3"], train_keys=TRAIN, k=40,
                                               former=dict_former(), batch_rows=batch),
                    word_click_matrix(log, keys=KEYS + ["k1", "k3"], train_keys=TRAIN, k=40, former=dict_former()))
    monkeypatch.setattr(columnar, "_hash", real)
    d = columnar._Dictionary()
    s = pl.Series(["b", "a", "b", "c", "a"])
    assert d.encode(s).tolist() == [0, 1, 0, 2, 1] and d.decode([2, 0]).to_list() == ["c", "b"]
    assert d.encode(pl.Series(["c", "zz"]), add=False).tolist() == [2, -1] and d.size == 3


BAD = {
    "fields.tsv": (b"dog\ta\t3\ncat\tb\n", "bad/fields.tsv:2: expected 3"),
    "extra.tsv": (b"dog\ta\t3\ncat\tb\t1\t2\n", "extra.tsv:2: expected 3"),
    "key.tsv": (b"dog\ta\t3\ncat\t\t1\n", "key.tsv:2: empty key"),
    "space.tsv": (b"dog\ta\t3\n \t b\t1\n", "space.tsv:2: empty query"),
    "clicks.tsv": (b"dog\ta\t3\ncat\tb\tzero\n", "clicks.tsv:2: clicks must be a positive integer"),
    "zero.tsv": (b"dog\ta\t3\ncat\tb\t0\n", "zero.tsv:2: clicks must be >= 1"),
    "huge.tsv": (b"dog\ta\t3\ncat\tb\t99999999999\n", "huge.tsv:2: implausible"),
    "utf8.tsv": (b"dog\ta\t3\nca\xfft\tb\t1\n", "utf8.tsv:2: not UTF-8"),
    "empty.tsv": (b"\n\n", "empty.tsv: empty click log"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_raise_the_streaming_readers_error(tmp_path, name):
    content, match = BAD[name]
    path = tmp_path / "bad" / name
    path.parent.mkdir()
    path.write_bytes(b"".join([b"x\ty\t1\n"] * 40) + content if name != "empty.tsv" else content)
    with pytest.raises(DataError) as streaming:
        list(iter_click_log(path))
    with pytest.raises(DataError) as ours:
        columnar_word_click_matrix(path, former=dict_former(), batch_bytes=64)
    assert str(ours.value) == str(streaming.value)
    assert match.split(":")[-1].strip() in str(ours.value)


def test_missing_damaged_and_argument_errors(tmp_path):
    with pytest.raises(DataError, match="missing file"):
        columnar_word_click_matrix(tmp_path / "nope.tsv", former=dict_former())
    gz = tmp_path / "cut.tsv.gz"
    write_click_log(itertools.islice(itertools.cycle(LOG), 20_000), gz)
    gz.write_bytes(gz.read_bytes()[:-200])
    with pytest.raises(DataError) as streaming:
        list(iter_click_log(gz))
    with pytest.raises(DataError) as ours:
        columnar_word_click_matrix(gz, former=dict_former(), batch_bytes=1000)
    assert str(ours.value) == str(streaming.value)
    with pytest.raises(ValueError, match="k must be"):
        columnar_word_click_matrix(LOG, k=0, former=dict_former())
    with pytest.raises(ValueError, match="duplicates"):
        columnar_word_click_matrix(LOG, keys=["a", "a"], former=dict_former())
    with pytest.raises(ValueError, match="not in keys"):
        columnar_word_click_matrix(LOG, keys=KEYS, train_keys=["zz"], former=dict_former())
    with pytest.raises(DataError, match="none of the"):
        columnar_word_click_matrix(LOG, keys=["nope"], former=dict_former())
    with pytest.raises(ValueError, match="batch_bytes"):
        columnar_word_click_matrix(LOG, batch_bytes=0, former=dict_former())
    with gzip.open(gz, "rb") as fh:  # the readable part parses like the streaming reader's
        assert fh.read(10)


def test_runs_of_queries_spills_and_missing_keys_equal_streaming():
    """A log grouped by query (runs of equal adjacent queries, some queries again in later runs),
    queries of stop words only or no kept token, lemmas, given keys of which some never appear
    in the log and some log keys are not given, a training subset, clicks beyond int32 (records):
    the run detection, the per-word totals and the vocabulary-only product (held or spilled)."""
    queries = ["Dogs and puppies", "the of", "!!!", "geese", "cats of geese!", "dog dogs", "thes", "007 bond"]
    log = [(q, f"k{(i * 7 + j) % 13}", 1 + (i + j) % 5) for i, q in enumerate(queries) for j in range(4)]
    log += [(q, f"k{j % 5}", 2) for q in queries[:3] for j in range(3)]  # the same queries again, later
    log += [("dog", "k2", 3_000_000_000), ("dog", "k3", 1)]
    keys = [f"k{i}" for i in range(0, 16, 2)]  # k14: never in the log; odd log keys: not given
    train = ["k0", "k2", "k4", "k10", "k14"]
    for kwargs in ({}, {"keys": keys}, {"keys": keys, "train_keys": train}, {"train_keys": train}):
        want = word_click_matrix(log, k=6, former=dict_former(), **kwargs)
        for batch, memory_entries in ((5, 0), (11, 12), (1000, columnar.DEFAULT_MEMORY_ENTRIES)):
            got = columnar_word_click_matrix(log, k=6, former=dict_former(), batch_rows=batch,
                                             memory_entries=memory_entries, **kwargs)
            assert_same(got, want)
            assert (got.stats["spilled_entries"] > 0) == (memory_entries < 1000)
        assert want.stats["rows_without_words"] > 0 and (want.stats["rows_unknown_key"] > 0) == ("keys" in kwargs)
    qid, distinct = columnar._block_queries(pl.Series(["b", "b", "a", "a", "b", "c", "c"]))
    assert distinct.gather(qid).to_list() == ["b", "b", "a", "a", "b", "c", "c"] and len(distinct) == 3


@pytest.mark.parametrize("name", ["fields.tsv", "utf8.tsv", "empty.tsv"])
def test_pipeline_and_sequential_runs_agree(tmp_path, name):
    """The two-thread pipeline (the default) and the one-thread run give the same matrix, block by
    block, and the same DataError for a bad line; no reader thread outlives the call."""
    import threading

    path = tmp_path / "log.tsv"
    write_click_log(ODD + LOG * 5, path)
    for batch_bytes in (64, 1 << 20):
        runs = [columnar_word_click_matrix(path, k=50, former=dict_former(), batch_bytes=batch_bytes, pipeline=p)
                for p in (True, False)]
        assert_same(*runs)
        assert runs[0].stats["batches"] == runs[1].stats["batches"]
    content, _ = BAD[name]
    bad = tmp_path / name
    bad.write_bytes(b"".join([b"x\ty\t1\n"] * 40) + content if name != "empty.tsv" else content)
    errors = []
    for p in (True, False):
        with pytest.raises(DataError) as err:
            columnar_word_click_matrix(bad, former=dict_former(), batch_bytes=64, pipeline=p)
        errors.append(str(err.value))
    assert errors[0] == errors[1]
    assert not [t.name for t in threading.enumerate() if t.name.startswith("clickvision-columnar")]


def test_in_thread_stops_early_and_raises_in_the_consumer():
    """``_in_thread``: items in order; an exception of the source reaches the consumer; a consumer that
    stops early stops the thread and the source is closed (its ``finally`` runs)."""
    import threading

    closed = []

    def source(n, fail_at=None):
        try:
            for i in range(n):
                if i == fail_at:
                    raise ValueError(f"bad item {i}")
                yield i
        finally:
            closed.append(n)

    assert list(columnar._in_thread(source(5), "clickvision-columnar-test")) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="bad item 3"):
        list(columnar._in_thread(source(9, fail_at=3), "clickvision-columnar-test"))
    stream = columnar._in_thread(source(10**9), "clickvision-columnar-test")
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()  # the consumer stops: the thread ends, the endless source is closed
    assert 10**9 in closed
    assert not [t.name for t in threading.enumerate() if t.name.startswith("clickvision-columnar")]
