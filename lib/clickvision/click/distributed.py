"""Paper A's click features (word click matrix C' and eq. (1) TF-IDF) as a Dask job over partitions of the log.

Same arguments and the same result as :func:`clickvision.click.columnar.columnar_word_click_matrix`
/ :func:`~clickvision.click.columnar.columnar_click_tfidf` (and so as the streaming reference
:func:`clickvision.click.features.word_click_matrix`): identical keys and their order, vocabulary
and its order, counts, word clicks, train mask and shared statistics.

**Engine: Dask distributed** (``pip install 'clickvision[distributed]'``). The job is a map over
partitions and a merge by key: Dask's futures API does it with plain Python functions, the same
code runs on a ``LocalCluster`` and on an SSH / Kubernetes / HPC cluster (``dask-jobqueue`` for
Slurm), and dask and distributed are pure-Python wheels (``py3-none-any``) with no runtime of
their own to start. Ray would do the same job through its own object store and a native runtime
per platform; we made no measurement that favours it, so we chose the lighter engine.

How it runs:

1. **Partitions.** An uncompressed TSV is cut into byte ranges (``partitions`` of them, default
   about ``partition_bytes`` each and at least one per worker thread). Each worker opens the file
   itself (**a file system shared by the client and the workers is assumed**, at the same path)
   and owns the lines that *start* in its range (the usual rule: skip to the first line start at
   or after the range's first byte, read on past its last byte to the end of the line), so no line
   is lost or read twice. A ``.gz`` log cannot be cut by bytes: the client decompresses it in the
   columnar path's own blocks (``batch_bytes``) and sends each block as a partition; an iterable
   of ``(query, key, clicks)`` is sent in blocks of ``batch_rows`` triads the same way.
2. **Map (one task per partition, on a worker).** The partition's lines are parsed and validated
   by the columnar reader (``_parse_block``: the rules and DataErrors of
   :func:`clickvision.click.log.iter_click_log`), queries are formed once per distinct query and
   tokens lemmatised once per distinct token by the columnar code (``_block_queries``,
   ``_QueryWords``: the same :class:`~clickvision.click.features.QueryFormer` semantics, no second
   implementation), giving a sparse (partition key x partition word) click matrix kept **on the
   worker**. Only a summary comes back: the partition's keys (strings) with their row counts, its
   words (strings) with their clicks on training images, its row / click / line counts.
3. **Vocabulary (client).** Summaries are merged **by key and word string**, not by position:
   word clicks on training images are summed per word, and the top ``k`` (more clicks first, ties
   alphabetical, the columnar path's ``_top_k``) form the vocabulary. Keys are numbered in order of
   first appearance over the partitions in file order, which is their order in the log.
4. **Columns (one task per partition).** Each worker returns its matrix restricted to the
   vocabulary's words (in vocabulary order, only its rows with a click), tagged with its key
   strings; the client adds them into the (image x K) matrix by key. Counts are float64 sums of
   integer clicks, exact below 2**53, so the order of the additions changes no value, and
   :func:`~clickvision.click.features.click_tfidf` applies unchanged.

Errors: a bad line raises the single-machine :class:`DataError` naming ``path:line``. A worker
counts lines from the start of its range; the client adds the lines of the partitions before it
(each partition reports its count), and, when several partitions hold a bad line, raises the
first one in the file, as the single-machine reader would.

Memory: a worker holds its partitions' (key x word) matrices until the job ends (choose more
partitions for a bigger log); the client holds the keys, the words seen and the (image x K) result.
"""
from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..data.base import DataError
from . import columnar as col
from .features import (
    ClickTfidf,
    QueryFormer,
    WordClickMatrix,
    click_tfidf,
    record_columns,
)
from .log import (
    CLICKTURE_COLUMNS,
    GZIP_ERRORS,
    ClickRecord,
    _column_order,
    iter_click_log,
)

DEFAULT_PARTITION_BYTES = 256 << 20
"""Bytes of TSV per partition of an uncompressed log when ``partitions`` is not given."""


def _distributed():
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - an optional extra
        raise ImportError("clickvision.click.distributed needs Dask distributed: "
                          "pip install 'clickvision[distributed]' (or: pip install dask distributed)") from exc
    return distributed


# --------------------------------------------------------------------------------------------
# Partitions
# --------------------------------------------------------------------------------------------

def byte_ranges(size: int, partitions: int) -> list[tuple[int, int]]:
    """``partitions`` nominal byte ranges ``[start, stop)`` covering ``[0, size)`` (the workers
    align them to line starts)."""
    if not isinstance(partitions, (int, np.integer)) or partitions < 1:
        raise ValueError(f"byte_ranges: partitions must be a positive integer, got {partitions!r}")
    cuts = [size * i // partitions for i in range(partitions + 1)]
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a] or [(0, size)]


def _line_start(fh, pos: int, size: int) -> int:
    """The first line start at or after byte ``pos`` (``size`` when none): a line starts at 0 and
    after each ``\\n``."""
    if pos <= 0:
        return 0
    if pos >= size:
        return size
    fh.seek(pos - 1)
    at = pos - 1
    while chunk := fh.read(1 << 16):
        nl = chunk.find(b"\n")
        if nl >= 0:
            return at + nl + 1
        at += len(chunk)
    return size


def _range_blocks(path: Path, start: int, stop: int, batch_bytes: int) -> Iterator[tuple[int, bytes]]:
    """``(first line, counted from 1 at the range's first line, block)``: the whole lines that start
    in ``[start, stop)`` of ``path``, in blocks of about ``batch_bytes`` cut at line ends (the
    columnar reader's blocks). Neighbouring ranges share their boundary, so every line is read once."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        first, last = _line_start(fh, start, size), _line_start(fh, stop, size)
        fh.seek(first)
        left = last - first
        lineno = 1
        rest = b""
        while left > 0:
            data = fh.read(min(batch_bytes, left))
            if not data:  # the file shrank under us: what is left is read as it is
                break
            left -= len(data)
            data = rest + data if rest else data
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            block, rest = data[:cut + 1], data[cut + 1:]
            yield lineno, block
            lineno += block.count(b"\n")
        if rest:
            yield lineno, rest


@dataclass
class _Source:
    """What one partition reads: a byte range of a file, a block of lines, or records."""

    kind: str  # "range" | "block" | "records"
    path: str = ""
    start: int = 0
    stop: int = 0
    lineno: int = 1
    data: Any = None


def _frames(source: _Source, order: tuple[int, int, int], batch_bytes: int, counter: dict) -> Iterator:
    """The partition's triads as polars frames (the columnar reader's parsing and errors)."""
    if source.kind == "records":
        yield col._frame(*source.data)
        return
    path = Path(source.path)
    blocks = ([(source.lineno, source.data)] if source.kind == "block"
              else _range_blocks(path, source.start, source.stop, batch_bytes))
    for lineno, block in blocks:
        counter["lines"] += block.count(b"\n") + (not block.endswith(b"\n"))
        yield col._parse_block(block, path, lineno, order)


# --------------------------------------------------------------------------------------------
# Map: one partition on a worker
# --------------------------------------------------------------------------------------------

_FORMERS: dict[str, QueryFormer] = {}  # the default QueryFormer of a worker process (WordNet loaded once)


@dataclass
class _Partial:
    """One partition's counts, kept on the worker: (partition key x word code) clicks."""

    counts: sp.csr_matrix
    keys: Any  # polars String Series, the partition's keys in order of first appearance
    words: col._Dictionary  # token and word codes of the partition (columns of ``counts``)
    summary: dict = field(default_factory=dict)


def _partition(source: _Source, columns: Sequence[str], former: QueryFormer | None, train: Any,
               batch_bytes: int) -> _Partial:
    """Partial counts of one partition (runs on a worker). ``train``: a polars String Series of
    the training keys, or None when every key is a training key. A bad line is not raised here:
    the summary's ``error`` holds it with the line counted from the partition's start."""
    if former is None:
        former = _FORMERS.setdefault("default", QueryFormer())
    order = _column_order(columns)
    words = col._QueryWords(former)
    key_dict = col._Dictionary()
    parts: list[sp.csr_matrix] = []  # partial counts, col._push / col._total
    rows_per_key = np.zeros(0, dtype=np.int64)
    no_words_per_key = np.zeros(0, dtype=np.int64)
    counter = {"lines": 0}
    summary: dict[str, Any] = {"rows": 0, "clicks": 0, "error": None}
    try:
        for df in _frames(source, order, batch_bytes, counter):
            if not df.height:
                continue
            qid, distinct = col._block_queries(df["query"])
            incidence = words(distinct)
            del distinct
            kid = key_dict.encode(df["key"])
            clicks = df["clicks"].to_numpy()
            n_keys = key_dict.size
            has_words = np.diff(incidence.indptr) > 0
            rows_per_key = np.concatenate([rows_per_key, np.zeros(n_keys - len(rows_per_key), dtype=np.int64)])
            no_words_per_key = np.concatenate([no_words_per_key,
                                               np.zeros(n_keys - len(no_words_per_key), dtype=np.int64)])
            rows_per_key += np.bincount(kid, minlength=n_keys)
            no_words_per_key += np.bincount(kid[~has_words[qid]], minlength=n_keys)
            summary["rows"] += df.height
            summary["clicks"] += int(clicks.sum())
            a = sp.csr_matrix((clicks.astype(np.float64), (kid, qid)), shape=(n_keys, incidence.shape[0]))
            col._push(parts, (a @ incidence).tocsr())
            del a, incidence, kid, qid, clicks, df
    except DataError as exc:
        summary["error"] = str(exc)
    summary["lines"] = counter["lines"]
    n_codes, n_keys = words.size, key_dict.size
    counts = col._total(parts, (n_keys, n_codes)) if summary["error"] is None else sp.csr_matrix((n_keys, n_codes))
    counts.sum_duplicates()
    keys = key_dict.strings.rechunk()
    is_train = (np.ones(n_keys, dtype=bool) if train is None
                else keys.is_in(train.implode()).to_numpy().astype(bool))
    totals = np.bincount(counts.indices, weights=counts.data * np.repeat(is_train, np.diff(counts.indptr)),
                         minlength=n_codes) if n_codes else np.zeros(0)
    is_word = np.concatenate([words.is_word, np.zeros(n_codes - len(words.is_word), dtype=bool)])
    word_codes = np.flatnonzero(is_word)
    summary.update(keys=keys, key_rows=rows_per_key, key_rows_without_words=no_words_per_key,
                   words=words.strings.decode(word_codes), word_train_clicks=totals[word_codes],
                   queries_formed=words.queries_formed, tokens_lemmatised=words.tokens_lemmatised)
    return _Partial(counts, keys, words.strings, summary)


def _summary(partial: _Partial) -> dict:
    return partial.summary


def _vocabulary_columns(partial: _Partial, vocabulary: list[str]) -> tuple[Any, sp.csr_matrix]:
    """``(keys, counts)``: the partition's rows with a click on the vocabulary, its columns in
    vocabulary order (a word the partition lacks is a zero column)."""
    pl = col._polars()
    n_codes = partial.counts.shape[1]
    codes = (partial.words.encode(pl.Series(vocabulary, dtype=pl.String), add=False) if vocabulary
             else np.zeros(0, dtype=np.int64))
    here = np.flatnonzero((codes >= 0) & (codes < n_codes))
    # a 0/1 selection matrix: column j of the result is the partition's column of vocabulary word j
    select = sp.csr_matrix((np.ones(len(here)), (codes[here], here)), shape=(n_codes, len(vocabulary)))
    full = (partial.counts @ select).tocsr()
    rows = np.flatnonzero(np.diff(full.indptr) > 0)
    return partial.keys.gather(rows), full[rows]


# --------------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------------

def _client(client: Any, n_workers: int | None):
    """``(client, owned)``: the given client, or a new LocalCluster's (closed by the caller)."""
    if client is not None:
        return client, False
    distributed = _distributed()
    n = n_workers or max(1, min(os.cpu_count() or 1, 4))
    cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
    return distributed.Client(cluster), True


def _sources(log: Any, columns: Sequence[str], client: Any, partitions: int | None, partition_bytes: int,
             batch_bytes: int, batch_rows: int) -> Iterator[_Source]:
    """The partitions of ``log`` (lazily: a gzip log is decompressed block by block)."""
    if not isinstance(log, (str, os.PathLike)):
        for queries, keys, clicks in record_columns(log, batch_rows):
            yield _Source("records", data=(list(queries), list(keys), list(clicks)))
        return
    path = Path(log)
    if not path.is_file():
        raise DataError(f"missing file: {path}")
    if path.suffix == ".gz":
        try:
            for lineno, block in col._iter_blocks(path, batch_bytes):
                yield _Source("block", path=str(path), lineno=lineno, data=block)
        except GZIP_ERRORS:
            # a damaged or truncated gzip stream: the exact streaming reader names the line reached
            for _ in iter_click_log(path, columns):
                pass
            raise  # pragma: no cover - iter_click_log raised above
        return
    size = path.stat().st_size
    if partitions is None:
        threads = sum(client.nthreads().values()) or 1
        partitions = max(threads, -(-size // partition_bytes))
    for start, stop in byte_ranges(size, partitions):
        yield _Source("range", path=str(path), start=start, stop=stop)


def _raise_first_error(path: str, summaries: list[dict], sources: list[_Source]) -> None:
    """The first partition's bad line as the single-machine DataError (lines counted from the file start)."""
    for i, s in enumerate(summaries):
        if s["error"] is None:
            continue
        message = s["error"]
        if sources[i].kind == "range":
            offset = sum(summaries[j]["lines"] for j in range(i))
            m = re.match(re.escape(path) + r":(\d+):", message)
            if m:
                message = f"{path}:{int(m.group(1)) + offset}:{message[m.end():]}"
        raise DataError(message)


def distributed_word_click_matrix(log: str | os.PathLike | Iterable[ClickRecord],
                                  keys: Sequence[str] | None = None, train_keys: Iterable[str] | None = None,
                                  k: int = 1000, former: QueryFormer | None = None,
                                  columns: Sequence[str] = CLICKTURE_COLUMNS, client: Any = None,
                                  n_workers: int | None = None, partitions: int | None = None,
                                  partition_bytes: int = DEFAULT_PARTITION_BYTES,
                                  batch_bytes: int = col.DEFAULT_BATCH_BYTES,
                                  batch_rows: int = col.DEFAULT_BATCH_ROWS) -> WordClickMatrix:
    """:func:`clickvision.click.columnar.columnar_word_click_matrix` as a Dask job (same result).

    ``log``, ``keys``, ``train_keys``, ``k``, ``former`` (None: each worker process builds the
    default WordNet :class:`QueryFormer` once; a given one is shipped to the workers, so it must
    pickle), ``columns``: as in the single-machine path. ``client``: a
    ``distributed.Client`` (e.g. ``Client("tcp://scheduler:8786")``); default a ``LocalCluster``
    of ``n_workers`` processes (one thread each), closed at the end. ``partitions``: byte-range
    partitions of an uncompressed file (default: at least one per worker thread, about
    ``partition_bytes`` each); ``batch_bytes``: a worker parses its range in blocks of that size
    (and a ``.gz`` log is sent in blocks of that size); ``batch_rows``: triads per partition of an
    iterable log. ``stats`` holds the shared statistics plus ``partitions``, ``queries_formed``,
    ``tokens_lemmatised`` (summed over partitions) and ``engine``.
    """
    pl = col._polars()
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"distributed_word_click_matrix: k must be a positive integer, got {k!r}")
    for name, value in (("batch_bytes", batch_bytes), ("batch_rows", batch_rows), ("partition_bytes", partition_bytes)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"distributed_word_click_matrix: {name} must be a positive integer, got {value!r}")
    if partitions is not None and (not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1):
        raise ValueError(f"distributed_word_click_matrix: partitions must be a positive integer, got {partitions!r}")
    _column_order(columns)
    wanted = None if train_keys is None else {str(x) for x in train_keys}
    key_dict = col._Dictionary()
    key_list = None
    if keys is not None:
        key_list = [str(x) for x in keys]
        key_dict.encode(pl.Series(key_list, dtype=pl.String))
        if key_dict.size != len(key_list):
            raise ValueError("distributed_word_click_matrix: keys contain duplicates")
        if wanted is not None and not wanted <= set(key_list):
            missing = sorted(wanted - set(key_list))[:3]
            raise ValueError(f"distributed_word_click_matrix: train_keys {missing} are not in keys")
    # the training keys a worker weighs word clicks by (None: every key of the log)
    train_set = wanted if wanted is not None else (set(key_list) if key_list is not None else None)
    distributed = _distributed()
    client, owned = _client(client, n_workers)
    futures: list = []
    train_arg = None
    try:
        train_arg = None if train_set is None else client.scatter(pl.Series(sorted(train_set), dtype=pl.String),
                                                                 broadcast=True, hash=False)
        sources: list[_Source] = []
        for source in _sources(log, columns, client, partitions, partition_bytes, batch_bytes, batch_rows):
            futures.append(client.submit(_partition, source, tuple(columns), former, train_arg, batch_bytes,
                                         pure=False))
            sources.append(source if source.kind == "range" else _Source(source.kind, source.path))
        summaries = client.gather([client.submit(_summary, f, pure=False) for f in futures])
        if isinstance(log, (str, os.PathLike)):
            _raise_first_error(str(Path(log)), summaries, sources)
        stats: dict[str, Any] = {"rows": 0, "clicks": 0, "rows_unknown_key": 0, "rows_without_words": 0}
        word_frames = []
        for s in summaries:
            stats["rows"] += s["rows"]
            stats["clicks"] += s["clicks"]
            codes = key_dict.encode(s["keys"], add=key_list is None)
            known = codes >= 0
            stats["rows_unknown_key"] += int(s["key_rows"][~known].sum())
            stats["rows_without_words"] += int(s["key_rows_without_words"][known].sum())
            word_frames.append(pl.DataFrame({"w": s["words"], "t": s["word_train_clicks"]}))
        if stats["rows"] == 0 and isinstance(log, (str, os.PathLike)):
            raise DataError(f"{Path(log)}: empty click log (no click triads)")
        n_keys = key_dict.size
        all_keys = np.array(key_list if key_list is not None else key_dict.strings.to_list(), dtype=object)
        train = (np.ones(n_keys, dtype=bool) if train_set is None
                 else np.array([x in train_set for x in all_keys.tolist()], dtype=bool))
        # words merged by string: clicks on training images summed per word
        merged = (pl.concat(word_frames) if word_frames else pl.DataFrame({"w": [], "t": []},
                                                                          schema={"w": pl.String, "t": pl.Float64}))
        merged = merged.group_by("w").agg(pl.col("t").sum())
        word_dict = col._Dictionary()
        word_dict.encode(merged["w"])
        totals = merged["t"].to_numpy().astype(np.float64)  # codes follow the frame's order
        vocab_ids = col._top_k(totals, word_dict, int(k)) if len(totals) else np.zeros(0, dtype=np.int64)
        vocabulary = word_dict.decode(vocab_ids).to_list() if len(vocab_ids) else []
        # columns: each partition's vocabulary columns, added by key
        counts = sp.csr_matrix((n_keys, len(vocabulary)))
        for part_keys, part in client.gather([client.submit(_vocabulary_columns, f, vocabulary, pure=False)
                                              for f in futures]):
            if not part.shape[0]:
                continue
            rows = key_dict.encode(part_keys, add=False)
            keep = rows >= 0
            if not keep.any():
                continue
            coo = part[keep].tocoo()
            counts = (counts + sp.csr_matrix((coo.data, (rows[keep][coo.row], coo.col)),
                                             shape=counts.shape)).tocsr()
        counts.sum_duplicates()
        counts.sort_indices()
        stats["train_word_clicks"] = float(totals.sum())
        stats["train_word_clicks_in_vocabulary"] = float(totals[vocab_ids].sum()) if len(vocab_ids) else 0.0
        stats["train_words"] = int((totals > 0).sum())
        stats.update(distinct_words=len(totals), vocabulary=len(vocab_ids), images=n_keys,
                     train_images=int(train.sum()), partitions=len(futures),
                     queries_formed=sum(s["queries_formed"] for s in summaries),
                     tokens_lemmatised=sum(s["tokens_lemmatised"] for s in summaries),
                     engine=f"dask distributed {distributed.__version__} + polars {pl.__version__}")
    finally:
        for f in futures:
            f.release()
        if train_arg is not None:
            train_arg.release()
        if owned:
            cluster = client.cluster
            client.close()
            cluster.close()
    return col._word_click_result("distributed_word_click_matrix", keys, key_list, counts, all_keys, vocabulary, totals,
                              vocab_ids, train, stats)


def distributed_click_tfidf(log: str | os.PathLike | Iterable[ClickRecord], variant: str = "paper",
                            **kwargs: Any) -> tuple[WordClickMatrix, ClickTfidf]:
    """:func:`distributed_word_click_matrix` (``kwargs``) then :func:`click_tfidf` (eq. 1 or ``"code"``)."""
    wc = distributed_word_click_matrix(log, **kwargs)
    return wc, click_tfidf(wc, variant=variant)
