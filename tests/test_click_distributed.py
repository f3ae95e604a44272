"""The click features as a Dask job (clickvision.click.distributed) equal the single-machine ones exactly.

On a LocalCluster of 2 worker processes: same keys (order), vocabulary (order), counts, word
clicks, train mask, shared statistics and click TF-IDF (eq. 1 and the code variant) as the
columnar path and the streaming reference, on the fixture logs of tests/test_click_columnar.py
(hand-made, odd-but-valid lines, the MSR fixture, gzip), a text-simulated log lemmatised by
WordNet on the workers, and a small Clickture-shaped simulated log, cut into 1 to 60 byte-range
partitions. A bad line in one partition raises the single-machine DataError naming file and line.
"""
from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
from clickvision import paths
from clickvision.click.columnar import columnar_word_click_matrix
from clickvision.click.features import QueryFormer, click_tfidf, word_click_matrix
from clickvision.click.log import MSR_TRAIN_COLUMNS, iter_click_log, write_click_log
from clickvision.click.simulator import (
    ClickSimConfig,
    simulate_click_log,
    synthetic_scale_log,
)
from clickvision.data.base import DataError

distributed = pytest.importorskip("distributed")
pytest.importorskip("polars")

from clickvision.click import distributed as dcv
from clickvision.click.distributed import (
    distributed_click_tfidf,
    distributed_word_click_matrix,
)
from test_click_columnar import KEYS, LOG, ODD, TRAIN, assert_same, dict_former


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as c:
        assert len(c.nthreads()) == 2
        yield c


def _both(log, **kw):
    """The streaming reference and the columnar result (which must agree with each other too)."""
    want = word_click_matrix(log, **kw)
    assert_same(columnar_word_click_matrix(log, **kw), want)
    return want


# --- partitions: every line read once, whatever the cut ----------------------------------------

def test_byte_ranges_read_every_line_once(tmp_path):
    rng = random.Random(0)
    lines = [("x" * rng.randrange(0, 40)).encode() + b"\n" for _ in range(300)]
    lines[5] = b"\n"  # a blank line and a last line without a newline
    data = b"".join(lines) + b"tail"
    path = tmp_path / "lines.tsv"
    path.write_bytes(data)
    for partitions in (1, 2, 3, 17, 300, len(data) + 5):
        for batch in (1, 5, 1 << 20):
            got, first_lines = [], []
            for start, stop in dcv.byte_ranges(len(data), partitions):
                blocks = list(dcv._range_blocks(path, start, stop, batch))
                got += [b for _, b in blocks]
                first_lines += [n for n, _ in blocks][:1]
            assert b"".join(got) == data, (partitions, batch)
            assert all(n == 1 for n in first_lines)
    assert dcv.byte_ranges(10, 3) == [(0, 3), (3, 6), (6, 10)]
    with pytest.raises(ValueError, match="partitions"):
        dcv.byte_ranges(10, 0)


# --- equality with the single-machine paths ----------------------------------------------------

@pytest.mark.parametrize("keys,train,k", [(None, None, 10), (KEYS, TRAIN, 3), (KEYS, TRAIN, 100),
                                          (["b", "x"], None, 2)])
def test_hand_made_log_equals_single_machine(client, tmp_path, keys, train, k):
    want = _both(LOG, keys=keys, train_keys=train, k=k, former=dict_former())
    for batch in (1, 3, 1000):  # an iterable log: blocks of triads sent from the client
        got = distributed_word_click_matrix(LOG, keys=keys, train_keys=train, k=k, former=dict_former(),
                                            client=client, batch_rows=batch)
        assert_same(got, want)
        assert got.stats["partitions"] == -(-len(LOG) // batch)
    path = tmp_path / "log.tsv"
    write_click_log(LOG, path)
    for partitions in (1, 2, 4, 50):  # a file: byte ranges read by the workers
        got = distributed_word_click_matrix(path, keys=keys, train_keys=train, k=k, former=dict_former(),
                                            client=client, partitions=partitions)
        assert_same(got, want)


def test_odd_lines_file_equals_single_machine(client, tmp_path):
    """Unicode, separators, CRLF, blank lines, a BOM, leading zeros, no final newline."""
    text = ("\ufeffdog\ta\t3\r\n\r\n\ncat puppies\tb\t007\n\n"
            "geese\tc\t 5 \r\r\ndogs\ta\t1\n" + "".join(f"dog {i}\tk{i % 3}\t{i + 1}\n" for i in range(50))
            + "cat\tz\t2")
    odd = tmp_path / "oddities.tsv"
    odd.write_bytes(text.encode("utf-8"))
    path = tmp_path / "odd.tsv"
    write_click_log(ODD + LOG, path)
    for log, k in ((path, 50), (odd, 20)):
        want = _both(log, k=k, former=dict_former())
        for partitions, batch_bytes in ((1, 1 << 20), (2, 7), (5, 64), (60, 1)):
            wc, tf = distributed_click_tfidf(log, k=k, former=dict_former(), client=client,
                                             partitions=partitions, batch_bytes=batch_bytes)
            assert_same(wc, want)
            if want.counts[want.train].getnnz(axis=0).all():
                assert abs(tf.features - click_tfidf(want).features).max() <= 1e-12


def test_msr_column_order_and_gzip(client, tmp_path):
    msr = paths.PROJ_ROOT / "tests" / "fixtures" / "originals" / "clickture" / "TrainClickLog.tsv"
    want = _both(msr, k=100, former=dict_former(), columns=MSR_TRAIN_COLUMNS)
    assert_same(distributed_word_click_matrix(msr, k=100, former=dict_former(), columns=MSR_TRAIN_COLUMNS,
                                              client=client, partitions=3), want)
    gz = tmp_path / "log.tsv.gz"  # no byte ranges in a gzip stream: the client sends blocks
    write_click_log(ODD * 30, gz)
    got = distributed_word_click_matrix(gz, k=30, former=dict_former(), client=client, batch_bytes=500)
    assert_same(got, _both(gz, k=30, former=dict_former()))
    assert got.stats["partitions"] > 2


def test_text_simulated_log_with_wordnet_on_the_workers(client, tmp_path):
    """A SIMULATED log of English words; each worker builds the default WordNet QueryFormer."""
    rng = np.random.default_rng(0)
    words = ["dogs", "puppies", "geese", "cats", "running", "leaves", "mice", "churches", "buses", "women",
             "icons", "symbols", "faces", "happy", "the", "of", "was", "boxes", "knives", "2019"]
    rows = [{"key": f"img{i}", "path": "", "label": f"class{i % 5}", "group": "g", "split": ["train", "val"][i % 2],
             "text": " ".join(rng.choice(words, 4)) + " | " + ", ".join(rng.choice(words, 3))}
            for i in range(80)]
    path = tmp_path / "sim.tsv"
    write_click_log(simulate_click_log(pd.DataFrame(rows), ClickSimConfig(), seed=0), path)
    keys = [r["key"] for r in rows]
    train = [r["key"] for r in rows if r["split"] == "train"]
    want = word_click_matrix(path, keys=keys, train_keys=train, k=25, former=QueryFormer())
    assert_same(columnar_word_click_matrix(path, keys=keys, train_keys=train, k=25, former=QueryFormer()), want)
    got = distributed_word_click_matrix(path, keys=keys, train_keys=train, k=25, client=client, partitions=4)
    assert_same(got, want)
    assert {"dog", "goose", "mouse"} & set(got.vocabulary)


def test_scale_simulated_log_equals_single_machine(client, tmp_path):
    """A 20 k-row SIMULATED Clickture-shaped log (numeric words, many keys), with a train split."""
    path = tmp_path / "scale.tsv"
    write_click_log(synthetic_scale_log(n_rows=20_000, n_images=4_000, seed=0), path)
    train = [f"img{i:07d}" for i in range(0, 4_000, 3)]
    want = _both(path, train_keys=train, k=300, former=dict_former())
    for partitions in (2, 7):
        got = distributed_word_click_matrix(path, train_keys=train, k=300, former=dict_former(), client=client,
                                            partitions=partitions, batch_bytes=50_000)
        assert_same(got, want)
        assert got.stats["partitions"] == partitions
    assert got.stats["distinct_words"] > 1000 and got.k == 300


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad,match", [(b"cat\tb\n", "expected 3"), (b"cat\tb\tzero\n", "positive integer"),
                                       (b"ca\xfft\tb\t1\n", "not UTF-8"), (b" \t b\t1\n", "empty query")])
def test_bad_line_in_one_partition_names_file_and_line(client, tmp_path, bad, match):
    good = b"".join(f"dog {i}\tk{i % 5}\t{1 + i % 3}\n".encode() for i in range(200))
    path = tmp_path / "bad.tsv"
    path.write_bytes(good + good + bad + good)  # line 401, in the 3rd of 4 partitions
    with pytest.raises(DataError) as streaming:
        list(iter_click_log(path))
    assert f"{path}:401:" in str(streaming.value)
    for partitions, batch_bytes in ((4, 1 << 20), (4, 100), (1, 1 << 20)):
        with pytest.raises(DataError) as ours:
            distributed_word_click_matrix(path, former=dict_former(), client=client, partitions=partitions,
                                          batch_bytes=batch_bytes)
        assert str(ours.value) == str(streaming.value)
        assert match in str(ours.value)


def test_first_bad_line_of_the_file_is_named(client, tmp_path):
    """Two bad lines in different partitions: the first in the file is raised, as by the single-machine reader."""
    good = b"".join(f"dog {i}\tk{i}\t1\n".encode() for i in range(100))
    path = tmp_path / "two.tsv"
    path.write_bytes(good + b"dog\ta\t0\n" + good + b"dog\t\t1\n" + good)
    with pytest.raises(DataError, match=r"two.tsv:101: clicks must be >= 1"):
        distributed_word_click_matrix(path, former=dict_former(), client=client, partitions=6)
    gz = tmp_path / "two.tsv.gz"
    write_click_log([("dog", "a", 1)] * 300, gz)
    gz.write_bytes(gz.read_bytes()[:-30])
    with pytest.raises(DataError) as streaming:
        list(iter_click_log(gz))
    with pytest.raises(DataError) as ours:
        distributed_word_click_matrix(gz, former=dict_former(), client=client, batch_bytes=100)
    assert str(ours.value) == str(streaming.value)


def test_missing_empty_and_argument_errors(client, tmp_path):
    with pytest.raises(DataError, match="missing file"):
        distributed_word_click_matrix(tmp_path / "nope.tsv", former=dict_former(), client=client)
    empty = tmp_path / "empty.tsv"
    empty.write_bytes(b"\n\n\n")
    with pytest.raises(DataError, match="empty.tsv: empty click log"):
        distributed_word_click_matrix(empty, former=dict_former(), client=client, partitions=2)
    with pytest.raises(ValueError, match="k must be"):
        distributed_word_click_matrix(LOG, k=0, client=client)
    with pytest.raises(ValueError, match="partitions must be"):
        distributed_word_click_matrix(LOG, partitions=0, client=client)
    with pytest.raises(ValueError, match="duplicates"):
        distributed_word_click_matrix(LOG, keys=["a", "a"], client=client)
    with pytest.raises(ValueError, match="not in keys"):
        distributed_word_click_matrix(LOG, keys=KEYS, train_keys=["zz"], client=client)
    with pytest.raises(DataError, match="none of the"):
        distributed_word_click_matrix(LOG, keys=["nope"], former=dict_former(), client=client)


def test_default_local_cluster(tmp_path):
    """No client given: a LocalCluster is started for the job and closed after it."""
    got = distributed_word_click_matrix(LOG, keys=KEYS, train_keys=TRAIN, k=3, former=dict_former(), n_workers=1)
    assert_same(got, word_click_matrix(LOG, keys=KEYS, train_keys=TRAIN, k=3, former=dict_former()))
    assert got.stats["engine"].startswith("dask distributed")
