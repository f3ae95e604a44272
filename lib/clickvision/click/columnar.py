"""A columnar click pipeline: the word click matrix C' of paper A (section III-A) at Clickture scale.

Same result as :func:`clickvision.click.features.word_click_matrix` (identical keys, vocabulary,
counts, word clicks, train mask and the shared statistics), computed column-wise with
`polars <https://pola.rs>`_ instead of one Python tuple per triad:

1. **Reading** (:func:`iter_click_batches`): the TSV is read in byte blocks of about
   ``batch_bytes`` (cut at a line end; ``.gz`` is decompressed on the fly), each parsed by
   polars' CSV reader (no quoting) into ``query, key, clicks`` columns. A block with anything
   unusual (a blank line, a carriage return left after ``\\r\\n`` -> ``\\n``, a missing or extra
   field, bytes that are not UTF-8, a white-space-only query or key, clicks that are not
   1..999999999 written without leading zeros) is re-parsed line by line with the rules of
   :func:`clickvision.click.log.iter_click_log`, so valid oddities are accepted exactly as the
   streaming reader accepts them and bad input raises the same :class:`DataError`
   naming ``path:line``.
2. **Query formation, once per distinct query of a block and once per distinct token**:
   runs of equal adjacent queries (a log grouped by query, as Clickture's) are found by one
   vectorised comparison and only each run's first query is hashed; the distinct queries of the
   block are then a hash-table factorisation (``pandas.factorize`` on polars' 64-bit hashes:
   less CPU than sorting them), every grouping checked string by string.
   A pure-ASCII query is lower-cased and split on ASCII white space vectorised (for ASCII text
   ``str.lower().split()`` is exactly that), tokens matching ``[a-z0-9]+`` are kept; a
   query with any non-ASCII character goes through :meth:`QueryFormer.tokens` itself (Unicode
   lower-casing and white space). Purely numeric tokens are their own lemma; every other
   distinct token is lemmatised once by the :class:`QueryFormer` (WordNet, memoised across
   blocks); stop words are dropped after lemmatising and each word counted once per query.
3. **Word click matrix, vocabulary columns only**: a block's rows are kept as (key code, block
   query id, clicks) with the block's binary (distinct query x word) incidence; per-word clicks on
   training images are summed as they come (each query's training clicks, spread over its
   words: two ``bincount`` calls), which is all the vocabulary needs. The (image x word)
   product is formed only once the vocabulary is known and only for its ``k`` columns, block by
   block (:class:`_Blocks`): the full (image x every word) partial counts of every block, their
   merges and their spills, the old matrix stage, are never made. Keys and words are coded by
   compact string dictionaries (64-bit hashes kept sorted, every look-up checked against the
   stored string, so a hash collision cannot merge two strings). Blocks beyond
   ``memory_entries`` stored entries are spilled to a temporary folder (out of core) and read
   back one at a time. Memory: one block, the dictionaries (about 30 bytes a string), the
   per-word totals and ``memory_entries``; not the number of rows.
4. The vocabulary (top ``k`` training words by clicks, ties alphabetical) is picked with a
   partial sort, its columns multiplied out (3.), and :func:`clickvision.click.features.click_tfidf`
   applies unchanged.

:func:`columnar_click_tfidf` chains 1-4. Counts are float64 sums of integer clicks, exact
below 2**53, so the order of summation does not change a single value.
"""
from __future__ import annotations

import gzip
import os
import queue
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from ..data.base import DataError
from .features import ClickTfidf, QueryFormer, WordClickMatrix, click_tfidf, record_columns
from .log import CLICKTURE_COLUMNS, GZIP_ERRORS, ClickRecord, _column_order, iter_click_log, parse_clicks

_clock = time.perf_counter  # stage timers (stats["seconds"])
DEFAULT_BATCH_BYTES = 64 << 20
"""Bytes of TSV per block (about 1.8 M simulated Clickture triads)."""
DEFAULT_BATCH_ROWS = 2_000_000
"""Triads per block when the log is an iterable of records rather than a file."""
DEFAULT_MEMORY_ENTRIES = 10_000_000
"""Stored row and incidence entries (4-8 bytes each: about 100 MB) held in memory before blocks
are spilled to disk; a 23.1 M-row Clickture-Lite-sized log needs about 58 M. Spilled blocks are
written once and read back once, in order: on the 23.1 M-row benchmark spilling every block took
no measurable time (18.9 s against 18.8 s with 20 M held) and saved 170 MB of peak memory."""

# ASCII white space of str.split(): \t \n \v \f \r, \x1c-\x1f and the space.
_ASCII_TOKEN = r"[^\t\n\x0b\x0c\r\x1c-\x1f ]+"
_ASCII_SPACE_NOT_BLANK = r"[\t\n\x0b\x0c\r\x1c-\x1f]"
_KEEP_TOKEN = r"^[a-z0-9]+$"
_DIGITS = r"^[0-9]+$"
_FAST_CLICKS = r"^[1-9][0-9]{0,8}$"  # the fast path of iter_click_log: 1..999999999, no leading zero
# A query or key starting with Unicode white space or \x1c-\x1f (Python's str.isspace() set is
# inside that union) is checked exactly, in Python: it might be white space only.
_SPACE_FIRST = r"^[\s\x1c-\x1f]"


def _polars():
    try:
        import polars as pl
    except ImportError as exc:  # pragma: no cover - polars is a main dependency
        raise ImportError("clickvision.click.columnar needs polars: pip install polars") from exc
    return pl


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

def _iter_blocks(path: Path, batch_bytes: int) -> Iterator[tuple[int, bytes]]:
    """Yield ``(first_line_number, block)``: whole lines of the file, about ``batch_bytes`` each."""
    opened = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
    lineno = 1
    rest = b""
    with opened as fh:
        while True:
            data = fh.read(batch_bytes)
            if not data:
                break
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


def _python_block(block: bytes, path: Path, lineno: int, order: tuple[int, int, int]) -> tuple[list, list, list]:
    """The triads of ``block`` by the exact rules of :func:`iter_click_log` (same DataErrors)."""
    iq, ik, ic = order
    names = [""] * 3
    names[iq], names[ik], names[ic] = "query", "key", "clicks"
    queries, keys, clicks = [], [], []
    lines = block.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for i, raw in enumerate(lines):
        n = lineno + i
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}:{n}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        line = line.rstrip("\r\n")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise DataError(f"{path}:{n}: expected 3 tab-separated fields ({' / '.join(names)}), "
                            f"found {len(fields)}")
        query, key, text = fields[iq], fields[ik], fields[ic]
        if not query or not key or query.isspace() or key.isspace():
            raise DataError(f"{path}:{n}: empty {'query' if not query.strip() else 'key'}")
        queries.append(query)
        keys.append(key)
        clicks.append(parse_clicks(text, f"{path}:{n}"))
    return queries, keys, clicks


def _frame(queries: Sequence[str], keys: Sequence[str], clicks: Sequence[int]):
    pl = _polars()
    return pl.DataFrame({"query": pl.Series(queries, dtype=pl.String), "key": pl.Series(keys, dtype=pl.String),
                         "clicks": pl.Series(clicks, dtype=pl.Int64)})


def _parse_block(block: bytes, path: Path, lineno: int, order: tuple[int, int, int]):
    """One block as a polars frame ``query, key, clicks``; odd blocks go through :func:`_python_block`."""
    pl = _polars()
    if b"\r" in block:
        block = block.replace(b"\r\n", b"\n")
    # polars would skip blank lines and drop a leading UTF-8 BOM: such blocks are read line by line
    fast = (b"\r" not in block and b"\n\n" not in block and not block.startswith(b"\n")
            and not block.startswith(b"\xef\xbb\xbf"))
    df = None
    if fast:
        names = ["", "", ""]
        iq, ik, ic = order
        names[iq], names[ik], names[ic] = "query", "key", "clicks"
        try:
            df = pl.read_csv(block, separator="\t", has_header=False, quote_char=None,
                             schema={n: pl.String for n in names})
        except pl.exceptions.PolarsError:  # ragged lines, bad UTF-8...: the exact reader names the line
            df = None
        if df is not None and (sum(df.null_count().row(0))  # a missing field, an empty query, key or clicks
                               or df.select((~pl.col("clicks").str.contains(_FAST_CLICKS)).any()).item()):
            df = None
        if df is not None:
            # white-space-only query or key: only a field starting with white space can be one
            odd = df.filter(pl.col("query").str.contains(_SPACE_FIRST) | pl.col("key").str.contains(_SPACE_FIRST))
            if any(q.isspace() or k.isspace() for q, k in odd.select("query", "key").iter_rows()):
                df = None
        if df is not None:
            df = df.select("query", "key", pl.col("clicks").cast(pl.Int64))
    if df is None:
        df = _frame(*_python_block(block, path, lineno, order))
    return df


def iter_click_batches(log: str | os.PathLike | Iterable[ClickRecord], columns: Sequence[str] = CLICKTURE_COLUMNS,
                       batch_bytes: int = DEFAULT_BATCH_BYTES, batch_rows: int = DEFAULT_BATCH_ROWS):
    """Yield the triads of a click log as polars frames ``query (str), key (str), clicks (i64)``.

    A file (``.gz`` allowed) is read in blocks of about ``batch_bytes``; anything else is taken
    as an iterable of ``(query, key, clicks)`` and cut into frames of ``batch_rows`` triads.
    Validation and errors are those of :func:`clickvision.click.log.iter_click_log`
    (DataError naming ``path:line``; an empty log is a DataError naming the file).
    """
    if not isinstance(batch_bytes, int) or batch_bytes < 1:
        raise ValueError(f"iter_click_batches: batch_bytes must be a positive integer, got {batch_bytes!r}")
    if not isinstance(batch_rows, int) or batch_rows < 1:
        raise ValueError(f"iter_click_batches: batch_rows must be a positive integer, got {batch_rows!r}")
    order = _column_order(columns)
    if not isinstance(log, (str, os.PathLike)):
        for queries, keys, clicks in record_columns(log, batch_rows):
            yield _frame(queries, keys, clicks)
        return
    path = Path(log)
    if not path.is_file():
        raise DataError(f"missing file: {path}")
    rows = 0
    try:
        for lineno, block in _iter_blocks(path, batch_bytes):
            df = _parse_block(block, path, lineno, order)
            del block
            if df.height:
                rows += df.height
                yield df
    except GZIP_ERRORS:
        # a damaged or truncated gzip stream: the exact streaming reader names the line reached
        for _ in iter_click_log(path, columns):
            pass
        raise  # pragma: no cover - iter_click_log raised above
    if rows == 0:
        raise DataError(f"{path}: empty click log (no click triads)")


# --------------------------------------------------------------------------------------------
# Query formation
# --------------------------------------------------------------------------------------------

def _hash(strings) -> np.ndarray:
    """64-bit hashes (uint64) of a polars String Series (polars' own, fixed seeds)."""
    return strings.hash().to_numpy()


def _group(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(inverse, first)`` of 64-bit hashes: ``inverse[i]`` numbers the distinct values of ``h`` in
    order of first appearance, ``first[g]`` is the first row holding value ``g``.

    A hash table (``pandas.factorize``, C), not a sort: 2-6x less CPU than ``np.argsort`` on
    a block's hashes, most of all on many repeats (tokens). Codes come in order of first
    appearance, so row ``i`` is a first occurrence exactly when its code exceeds every earlier one.
    """
    import pandas as pd

    n = len(h)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    inverse, _ = pd.factorize(h, sort=False)
    inverse = inverse.astype(np.int64, copy=False)
    seen = np.maximum.accumulate(inverse)
    first = np.flatnonzero(np.concatenate([[True], inverse[1:] > seen[:-1]]))
    return inverse, first


class _Grouping(NamedTuple):
    """The distinct strings of a polars String Series by their 64-bit hashes (:func:`_grouping`)."""

    hashes: np.ndarray  # each group's hash (uint64)
    inverse: np.ndarray  # each row's group (int32 where it fits), groups in order of first appearance
    distinct: Any  # each group's string (polars String Series)
    exact: bool  # every row equals its group's string (no two strings of the Series share a hash)


def _grouping(strings) -> _Grouping:
    """Group a polars String Series by hash, every row checked against its group's first string.

    Depends on the strings alone (no dictionary), so it can run ahead of the dictionary, in
    another thread (the pipeline of :func:`columnar_word_click_matrix`); it keeps what the
    dictionary needs only (per group, not per row, but the groups' indices), so a block waiting
    in the pipeline holds little."""
    h = _hash(strings)
    inverse, first = _group(h)
    distinct = strings.gather(first)
    exact = bool((distinct.gather(inverse) == strings).all())
    if len(inverse) and inverse[-1] < np.iinfo(np.int32).max and len(first) < np.iinfo(np.int32).max:
        inverse = inverse.astype(np.int32)
    return _Grouping(h[first], inverse, distinct, exact)


class _Dictionary:
    """A string -> code dictionary (codes 0, 1, ... in order of first appearance), global across
    blocks and compact (about 30 bytes a string; a polars ``Categorical`` takes about 100).

    It holds the sorted 64-bit hashes of its strings with their codes, and each code's string (a
    polars String Series, in code order). Every look-up is checked against the code's string, so
    two strings with the same hash never share a code: the later ones get their own codes through
    a small Python table (``collisions``).
    """

    def __init__(self) -> None:
        pl = _polars()
        self.hashes = np.zeros(0, dtype=np.uint64)  # sorted
        self.codes = np.zeros(0, dtype=np.int64)  # code of each sorted hash
        self.strings = pl.Series("strings", [], dtype=pl.String)  # string of each code
        self.collisions: dict[str, int] = {}

    @property
    def size(self) -> int:
        return len(self.strings)

    def encode(self, strings, add: bool = True, grouping: _Grouping | None = None) -> np.ndarray:
        """Codes (int64) of a polars String Series; strings not seen yet are added (``add``, codes
        in order of first appearance) or get ``-1``. ``grouping``: :func:`_grouping` of ``strings``
        when already made (it is computed otherwise)."""
        pl = _polars()
        if len(strings) == 0:
            return np.zeros(0, dtype=np.int64)
        g = grouping if grouping is not None else _grouping(strings)
        uh, inverse, distinct = g.hashes, g.inverse, g.distinct
        if not g.exact:  # two strings of the Series share a hash
            return self._encode_exactly(strings, _hash(strings), add)
        # the distinct hashes looked up in sorted order (numpy's binary search is faster on sorted keys)
        by_hash = np.argsort(uh)
        pos = np.empty(len(uh), dtype=np.int64)
        pos[by_hash] = np.searchsorted(self.hashes, uh[by_hash])
        found = pos < len(self.hashes)
        found[found] = self.hashes[pos[found]] == uh[found]
        ucodes = np.full(len(uh), -1, dtype=np.int64)
        ucodes[found] = self.codes[pos[found]]
        # exact: every row equals its hash group's first row (g.exact), which equals its code's string
        if not (self.strings.gather(ucodes[found]) == distinct.filter(found)).all():
            return self._encode_exactly(strings, _hash(strings), add)
        new = np.flatnonzero(~found)  # in order of first appearance
        if add and len(new):
            ucodes[new] = np.arange(self.size, self.size + len(new))
            self.strings = pl.concat([self.strings, distinct.gather(new)], rechunk=False)
            new = new[np.argsort(uh[new])]  # inserted in ascending hash order: self.hashes stays sorted
            self.hashes = np.insert(self.hashes, pos[new], uh[new])
            self.codes = np.insert(self.codes, pos[new], ucodes[new])
            if self.strings.n_chunks() > 16:
                self.strings = self.strings.rechunk()
        return ucodes[inverse]

    def _encode_exactly(self, strings, h: np.ndarray, add: bool) -> np.ndarray:
        """Row by row (a block with a 64-bit hash shared by two different strings: all but never)."""
        pl = _polars()
        known = dict(zip(self.strings.to_list(), range(self.size)))
        index = dict(zip(self.hashes.tolist(), self.codes.tolist()))
        out = np.empty(len(strings), dtype=np.int64)
        added: list[str] = []
        for i, (text, hv) in enumerate(zip(strings.to_list(), h.tolist())):
            code = known.get(text)
            if code is None:
                if not add:
                    out[i] = -1
                    continue
                code = known[text] = self.size + len(added)
                added.append(text)
                if hv in index:
                    self.collisions[text] = code
                else:
                    index[hv] = code
            out[i] = code
        if added:
            self.strings = pl.concat([self.strings, pl.Series(added, dtype=pl.String)], rechunk=True)
            hashes = np.fromiter(index.keys(), dtype=np.uint64, count=len(index))
            codes = np.fromiter(index.values(), dtype=np.int64, count=len(index))
            order = np.argsort(hashes)
            self.hashes, self.codes = hashes[order], codes[order]
        return out

    def decode(self, codes: np.ndarray):
        """The strings (a polars String Series) of ``codes``."""
        return self.strings.gather(np.asarray(codes, dtype=np.int64))

    def close(self) -> None:
        pass


class _QueryWords:
    """Query formation (:class:`QueryFormer` semantics), vectorised over distinct queries and
    distinct tokens.

    Tokens and their lemmas share one :class:`_Dictionary`, so a word's column is the code of
    its string. ``tok2word[c]``: the word column of token ``c`` (``-1``: a stop word); each code
    is lemmatised once, when it first appears (numeric tokens are their own lemma).
    """

    def __init__(self, former: QueryFormer) -> None:
        self.former = former
        self.strings = _Dictionary()
        self.tok2word = np.zeros(0, dtype=np.int64)
        self.is_word = np.zeros(0, dtype=bool)  # codes that are the word of a token seen in a query
        self.stop = sorted(former.stop_words)
        self.queries_formed = 0
        self.tokens_lemmatised = 0

    @property
    def size(self) -> int:
        return self.strings.size

    def _tokens(self, queries):
        """``(qid, tok)``: each kept token of each query (``qid`` = position in ``queries``)."""
        pl = _polars()
        frame = pl.DataFrame({"query": queries}).with_row_index("qid")
        is_ascii = pl.col("query").str.len_bytes() == pl.col("query").str.len_chars()
        ascii_ = frame.filter(is_ascii)
        # for ASCII text, str.lower().split() is ASCII lower-casing and a split on ASCII white space
        lower = ascii_.select("qid", pl.col("query").str.to_lowercase())
        if lower.select(pl.col("query").str.contains(_ASCII_SPACE_NOT_BLANK).any()).item():
            split = pl.col("query").str.extract_all(_ASCII_TOKEN)
        else:  # the only white space is " ": splitting on it leaves empty strings, dropped below
            split = pl.col("query").str.split(" ")
        qt = lower.select("qid", split.alias("tok")).explode("tok").filter(pl.col("tok").str.contains(_KEEP_TOKEN))
        del lower
        if ascii_.height < frame.height:  # Unicode lower-casing and white space: QueryFormer.tokens itself
            qids, toks = [], []
            tokens = self.former.tokens
            for qid, query in frame.filter(~is_ascii).iter_rows():
                for t in tokens(query):
                    qids.append(qid)
                    toks.append(t)
            qt = pl.concat([qt, pl.DataFrame({"qid": pl.Series(qids, dtype=pl.UInt32),
                                              "tok": pl.Series(toks, dtype=pl.String)})])
        return qt

    def _extend(self) -> None:
        """Lemmatise the codes added since the last call (lemmas may add codes in turn)."""
        pl = _polars()
        lemma = self.former._lemma  # the QueryFormer's memoised WordNet lemma of one token
        while len(self.tok2word) < self.size:
            start, stop = len(self.tok2word), self.size
            strings = self.strings.decode(np.arange(start, stop))
            frame = pl.DataFrame({"s": strings}).with_columns(
                pl.col("s").str.contains(_DIGITS).alias("numeric"), pl.col("s").is_in(self.stop).alias("stop"))
            out = np.arange(start, stop, dtype=np.int64)
            other = np.flatnonzero(~frame["numeric"].to_numpy())
            if len(other):
                lemmas = [lemma(t) for t in strings.gather(other).to_list()]
                self.tokens_lemmatised += len(lemmas)
                lemmas = pl.Series(lemmas, dtype=pl.String)
                out[other] = self.strings.encode(lemmas)  # may add codes: lemmatised on the next turn
                is_stop = np.zeros(stop - start, dtype=bool)
                is_stop[other] = lemmas.is_in(self.stop).to_numpy()
            else:
                is_stop = np.zeros(stop - start, dtype=bool)
            is_stop |= frame["numeric"].to_numpy() & frame["stop"].to_numpy()
            out[is_stop] = -1
            self.tok2word = np.concatenate([self.tok2word, out])

    def prepare(self, queries) -> tuple[np.ndarray, Any, _Grouping]:
        """The half of :meth:`__call__` that needs no dictionary (so it may run in another thread):
        ``(qid, tokens, grouping)``, each kept token of each query with its query's position and the
        tokens' :func:`_grouping`."""
        qt = self._tokens(queries)
        tokens = qt["tok"]
        return qt["qid"].to_numpy(), tokens, _grouping(tokens)

    def incidence(self, n_queries: int, qid: np.ndarray, tokens, grouping: _Grouping) -> sp.csr_matrix:
        """The dictionary half of :meth:`__call__`, from :meth:`prepare`'s output for ``n_queries`` queries."""
        self.queries_formed += n_queries
        tid = self.strings.encode(tokens, grouping=grouping)
        self._extend()
        wid = self.tok2word[tid]
        keep = wid >= 0
        qid, wid = qid[keep], wid[keep]
        if len(self.is_word) < self.size:
            self.is_word = np.concatenate([self.is_word, np.zeros(self.size - len(self.is_word), dtype=bool)])
        self.is_word[wid] = True
        b = sp.csr_matrix((np.ones(len(wid)), (qid, wid)), shape=(n_queries, self.size))
        b.sum_duplicates()
        b.data[:] = 1.0  # a word counts once per query
        return b

    def __call__(self, queries) -> sp.csr_matrix:
        """Binary ``(len(queries), size)`` CSR: row ``q`` has a 1 at each word column of query ``q``."""
        return self.incidence(len(queries), *self.prepare(queries))

    def close(self) -> None:
        self.strings.close()


def _block_queries(queries) -> tuple[np.ndarray, Any]:
    """``(qid, distinct)``: each row's index into ``distinct``, the distinct queries of a block.

    A log is usually grouped by query (Clickture's is; so is the simulated one): runs of equal
    adjacent queries are found by one vectorised comparison, and only each run's first query is
    hashed. Runs are grouped by a 64-bit hash of their query, then every run's query is compared
    with its group's first one: when no two different queries of the block share a hash (all but
    certain) the grouping is exact; otherwise the block's queries go through a string dictionary.
    """
    n = len(queries)
    if n > 1:
        change = (queries.slice(1) != queries.slice(0, n - 1)).fill_null(True).to_numpy()
        heads = np.flatnonzero(np.concatenate([[True], change]))
    else:
        heads = np.arange(n)
    if len(heads) < n:
        run = np.repeat(np.arange(len(heads)), np.diff(np.append(heads, n)))  # each row's run
        firsts = queries.gather(heads)
    else:
        run, firsts = None, queries
    g = _grouping(firsts)
    if g.exact:
        return (g.inverse if run is None else g.inverse[run]), g.distinct
    d = _Dictionary()  # pragma: no cover - a 64-bit hash collision inside a block
    qid = d.encode(queries)
    return qid, d.strings


class _Blocks:
    """Each block's rows and (distinct query x word) incidence, kept until the vocabulary is known.

    A block is stored as its rows' key codes, block query ids and clicks (int32 where they fit)
    and its binary incidence (CSR index arrays), so the per-block (image x word) product of every
    word is never formed: at the end only the vocabulary's columns are multiplied out
    (:meth:`vocabulary_counts`). Blocks beyond ``memory_entries`` stored entries (a row or an
    incidence entry, 4-8 bytes each) are written to a temporary folder under ``spill_dir`` and
    read back one at a time.
    """

    def __init__(self, memory_entries: int, spill_dir: str | os.PathLike | None) -> None:
        self.memory_entries = memory_entries
        self.spill_dir = spill_dir
        self.held: list[dict[str, np.ndarray] | Path] = []
        self.entries = 0  # held in memory
        self.spilled_entries = 0
        self._tmp: tempfile.TemporaryDirectory | None = None

    def add(self, kid: np.ndarray, qid: np.ndarray, clicks: np.ndarray, incidence: sp.csr_matrix) -> None:
        small = len(clicks) == 0 or (clicks.min() >= 0 and clicks.max() <= np.iinfo(np.int32).max)
        block = {"kid": kid.astype(np.int32), "qid": qid.astype(np.int32),
                 "clicks": clicks.astype(np.int32 if small else np.int64),
                 "indptr": incidence.indptr.astype(np.int64), "indices": incidence.indices.astype(np.int32)}
        size = len(kid) + incidence.nnz
        if self.entries + size > self.memory_entries:
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="clickvision-columnar-", dir=self.spill_dir)
            path = Path(self._tmp.name) / f"block{len(self.held):05d}.npz"
            np.savez(path, **block)
            self.held.append(path)
            self.spilled_entries += size
        else:
            self.held.append(block)
            self.entries += size

    def vocabulary_counts(self, vocab_ids: np.ndarray, shape: tuple[int, int], threads: int = 1) -> sp.csr_matrix:
        """``(n_keys, len(vocab_ids))`` CSR: the clicks of every key on every vocabulary word
        (column ``j`` is word code ``vocab_ids[j]``); ``shape`` is ``(n_keys, n_codes)``. ``threads``:
        blocks read back and multiplied side by side (summed in block order all the same)."""
        n_keys, n_codes = shape
        where = np.full(n_codes, -1, dtype=np.int64)
        where[vocab_ids] = np.arange(len(vocab_ids))

        def product(item) -> sp.csr_matrix:
            if isinstance(item, Path):
                with np.load(item) as z:
                    block = {name: z[name] for name in z.files}
            else:
                block = item
            indptr, indices = block["indptr"], block["indices"]
            n_queries = len(indptr) - 1
            j = where[indices]
            keep = j >= 0
            # the incidence restricted to the vocabulary, (distinct query x K)
            per_query = np.bincount(np.repeat(np.arange(n_queries), np.diff(indptr))[keep], minlength=n_queries)
            b = sp.csr_matrix((np.ones(int(keep.sum())), j[keep], np.concatenate([[0], np.cumsum(per_query)])),
                              shape=(n_queries, len(vocab_ids)))
            rows = per_query[block["qid"]] > 0  # rows whose query has a vocabulary word
            a = sp.csr_matrix((block["clicks"][rows].astype(np.float64), (block["kid"][rows], block["qid"][rows])),
                              shape=(n_keys, n_queries))
            return (a @ b).tocsr()

        out: list[sp.csr_matrix] = []
        if threads > 1 and len(self.held) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="clickvision-columnar-vocabulary") as pool:
                for part in pool.map(product, self.held):
                    _push(out, part)
        else:
            for item in self.held:
                _push(out, product(item))
        return _total(out, (n_keys, len(vocab_ids)))

    def close(self) -> None:
        self.held = []
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _push(stack: list[sp.csr_matrix], m: sp.csr_matrix) -> None:
    """Add ``m`` to a stack of partial sums, merged like a binary counter (a part is added to the
    one before it once it is at least half its size), so each entry is copied O(log blocks) times.
    Parts may differ in shape (keys and words seen so far): a merge pads both to the larger one."""
    stack.append(m)
    while len(stack) > 1 and 2 * stack[-1].nnz >= stack[-2].nnz:
        top, below = stack.pop(), stack[-1]
        shape = (max(below.shape[0], top.shape[0]), max(below.shape[1], top.shape[1]))
        below.resize(shape)
        top.resize(shape)
        stack[-1] = (below + top).tocsr()


def _total(stack: list[sp.csr_matrix], shape: tuple[int, int]) -> sp.csr_matrix:
    """The sum of a :func:`_push` stack as one CSR matrix of ``shape`` (every part padded to it)."""
    out = sp.csr_matrix(shape)
    for part in stack:
        part.resize(shape)
        out = (out + part).tocsr()
    return out


# --------------------------------------------------------------------------------------------
# The two-thread pipeline: blocks read and prepared ahead of the dictionaries
# --------------------------------------------------------------------------------------------

class _Prepared(NamedTuple):
    """One block after everything that needs no dictionary (:func:`_prepare`)."""

    n_rows: int
    qid: np.ndarray  # each row's query, an index into the block's distinct queries
    n_queries: int  # distinct queries of the block
    tok_qid: np.ndarray  # each kept token's query (:meth:`_QueryWords.prepare`)
    tokens: Any  # the kept tokens (polars String Series)
    tok_grouping: _Grouping
    keys: Any  # each row's key (polars String Series)
    key_grouping: _Grouping
    clicks: np.ndarray
    seconds: dict[str, float]  # time spent on it per stage (read, queries, keys)


def _prepare(df, words: _QueryWords, read_seconds: float) -> _Prepared:
    """The dictionary-free work of one block: its distinct queries, their tokens and the hash
    groupings of its tokens and keys (pure functions of the block: safe in another thread)."""
    t0 = _clock()
    qid, distinct = _block_queries(df["query"])
    tok_qid, tokens, tok_grouping = words.prepare(distinct)
    t1 = _clock()
    keys = df["key"]
    key_grouping = _grouping(keys)
    return _Prepared(df.height, qid, len(distinct), tok_qid, tokens, tok_grouping, keys, key_grouping,
                     df["clicks"].to_numpy(), {"read": read_seconds, "queries": t1 - t0, "keys": _clock() - t1})


def _prepared_blocks(batches: Iterator, words: _QueryWords, pipeline: bool) -> Iterator[_Prepared]:
    """:func:`_prepare` of every frame of ``batches``, in order.

    With ``pipeline`` the reading and the preparing each run in a thread of their own, while the
    caller codes the previous block against the dictionaries: polars, pandas and NumPy release the
    GIL in their loops, so the stages share the cores. At most three blocks are alive at once (one
    per stage: the reader waits for a free slot before reading the next). An error in a thread (a
    DataError naming the line...) is raised here, in the caller; when the caller stops early each
    thread stops after the block in hand."""
    stop = threading.Event()
    slots = threading.Semaphore(3) if pipeline else None

    def timed() -> Iterator[tuple[Any, float]]:
        while True:
            if slots is not None:
                while not slots.acquire(timeout=0.05):
                    if stop.is_set():
                        return
            t0 = _clock()
            df = next(batches, None)
            if df is None:
                return
            yield df, _clock() - t0

    if not pipeline:
        for df, seconds in timed():
            yield _prepare(df, words, seconds)
        return
    frames = _in_thread(timed(), "clickvision-columnar-reader", close=batches)
    prepared = _in_thread((_prepare(df, words, seconds) for df, seconds in frames), "clickvision-columnar-prepare",
                          close=frames)
    try:
        for item in prepared:
            yield item
            del item
            slots.release()  # the caller is done with this block: the reader may read one more
    finally:
        stop.set()  # a reader waiting for a slot gives up
        prepared.close()  # joins the threads (each stops after the block in hand) and closes the file


_DONE = object()


def _in_thread(items: Iterator, name: str, close=None) -> Iterator:
    """The items of ``items``, produced by a thread of their own one item ahead (a queue of one).

    An exception raised by ``items`` is raised to the consumer; when the consumer stops early (or
    fails), the thread stops after the item in hand and ``close`` (a generator: ``items``' source)
    is closed in the consumer's thread."""
    handoff: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(exc)
            return
        put(_DONE)

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()
        for source in (items, close):
            if source is not None and hasattr(source, "close"):
                source.close()  # generators left suspended by an early stop are closed now, in this thread


def _warm_lemmatizer(former: QueryFormer) -> threading.Thread | None:
    """Load the default WordNet lemmatiser (seconds of pure Python) in a thread while the first
    block is read; ``None`` when ``former`` was given its own lemmatiser (left untouched)."""
    if getattr(former, "_lemmatizer", True) is not None:
        return None
    def load() -> None:
        try:
            former.lemmatizer.lemmatize("clicks")
        except Exception:  # noqa: BLE001 - the first real lemma raises it again, in the caller, with its message
            pass

    thread = threading.Thread(target=load, name="clickvision-wordnet", daemon=True)
    thread.start()
    return thread


# --------------------------------------------------------------------------------------------
# The word click matrix
# --------------------------------------------------------------------------------------------

def _top_k(totals: np.ndarray, strings: _Dictionary, k: int) -> np.ndarray:
    """Columns of the ``k`` words with most clicks (> 0), more clicks first, ties alphabetical
    (``sorted(..., key=lambda j: (-totals[j], words[j]))[:k]`` without sorting every word)."""
    pl = _polars()
    clicked = np.flatnonzero(totals > 0)
    if len(clicked) > k:
        kth = np.partition(totals[clicked], len(clicked) - k)[len(clicked) - k]
        clicked = clicked[totals[clicked] >= kth]
    cand = pl.DataFrame({"j": clicked, "t": totals[clicked], "w": strings.decode(clicked)})
    # polars compares strings byte-wise; UTF-8 byte order is code point order, as Python's
    return cand.sort(["t", "w"], descending=[True, False])["j"].head(k).to_numpy().astype(np.int64)


def columnar_word_click_matrix(log: str | os.PathLike | Iterable[ClickRecord], keys: Sequence[str] | None = None,
                               train_keys: Iterable[str] | None = None, k: int = 1000,
                               former: QueryFormer | None = None, columns: Sequence[str] = CLICKTURE_COLUMNS,
                               batch_bytes: int = DEFAULT_BATCH_BYTES,
                               batch_rows: int = DEFAULT_BATCH_ROWS,
                               memory_entries: int = DEFAULT_MEMORY_ENTRIES,
                               spill_dir: str | os.PathLike | None = None, pipeline: bool = True) -> WordClickMatrix:
    """:func:`clickvision.click.features.word_click_matrix`, columnar and out of core.

    Same arguments and result (``keys``: the rows in order, default every key of the log in
    order of first appearance; ``train_keys``: the images the vocabulary is ranked on; ``k``:
    vocabulary size). ``batch_bytes`` (files) / ``batch_rows`` (iterables) bound the block held
    at once; the blocks' rows and query incidences beyond ``memory_entries`` stored entries go to
    a temporary folder (under ``spill_dir``, default the system's) and are read back one block at
    a time for the vocabulary's columns, so memory is bounded by the block, the key and word
    dictionaries (about 30 bytes a string) and ``memory_entries`` (4-8 bytes each). ``stats``
    holds the streaming path's counters, except
    the query memo counters, replaced by ``queries_formed`` (distinct queries per block, summed),
    ``tokens_lemmatised``, ``batches``, ``spilled_entries`` (row and incidence entries written to
    disk), ``engine`` and ``seconds`` (time per stage: read, queries, keys, matrix - the per-word
    totals -, vocabulary - ranking and the vocabulary columns' product).

    ``pipeline`` (default): one thread reads the blocks and another does the work that needs no
    dictionary (distinct queries, their tokens, hashing), each a block ahead, while this one codes
    the previous block (:func:`_prepared_blocks`); WordNet is loaded beside the first block and the
    vocabulary columns are multiplied on two threads. Same result either way; ``stats["seconds"]``
    then sums the threads' time per stage (more than the wall time).
    """
    pl = _polars()
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"columnar_word_click_matrix: k must be a positive integer, got {k!r}")
    if not isinstance(memory_entries, int) or memory_entries < 0:
        raise ValueError(f"columnar_word_click_matrix: memory_entries must be an integer >= 0, got {memory_entries!r}")
    former = former or QueryFormer()
    wanted = None if train_keys is None else {str(x) for x in train_keys}
    key_dict = _Dictionary()
    if keys is not None:
        key_list = [str(x) for x in keys]
        key_dict.encode(pl.Series(key_list, dtype=pl.String))
        if key_dict.size != len(key_list):
            raise ValueError("columnar_word_click_matrix: keys contain duplicates")
        if wanted is not None and not wanted <= set(key_list):
            missing = sorted(wanted - set(key_list))[:3]
            raise ValueError(f"columnar_word_click_matrix: train_keys {missing} are not in keys")
    else:
        key_list = None
    # train[code]: is key ``code`` a training image (grows with the keys when keys is None)
    train = np.array([x in wanted for x in key_list] if wanted is not None and key_list is not None else
                     [True] * key_dict.size, dtype=bool)
    wanted_series = None if wanted is None else pl.Series(sorted(wanted), dtype=pl.String)
    words = _QueryWords(former)
    totals = np.zeros(0)  # clicks of each word code on training images
    stats = {"rows": 0, "clicks": 0, "rows_unknown_key": 0, "rows_without_words": 0, "batches": 0}
    seconds = dict.fromkeys(("read", "queries", "keys", "matrix", "vocabulary"), 0.0)
    warm = _warm_lemmatizer(former) if pipeline else None
    blocks = _Blocks(memory_entries, spill_dir)
    try:
        for item in _prepared_blocks(iter_click_batches(log, columns, batch_bytes, batch_rows), words, pipeline):
            if warm is not None:  # WordNet loaded beside the first block's reading; the dictionary needs it now
                warm.join()
                warm = None
            t1 = _clock()
            for name, value in item.seconds.items():
                seconds[name] += value
            qid = item.qid
            incidence = words.incidence(item.n_queries, item.tok_qid, item.tokens, item.tok_grouping)
            t2 = _clock()
            seconds["queries"] += t2 - t1
            kid = key_dict.encode(item.keys, add=key_list is None, grouping=item.key_grouping)  # codes, in order of appearance
            clicks, n_rows = item.clicks, item.n_rows
            del item
            known = kid >= 0
            n_keys = key_dict.size
            if len(train) < n_keys:
                fresh = key_dict.strings.slice(len(train))
                train = np.concatenate([train, np.ones(len(fresh), dtype=bool) if wanted_series is None
                                        else fresh.is_in(wanted_series.implode()).to_numpy()])
            t3 = _clock()
            seconds["keys"] += t3 - t2
            n_queries, n_codes = incidence.shape
            has_words = np.diff(incidence.indptr) > 0
            stats["rows"] += n_rows
            stats["clicks"] += int(clicks.sum())
            stats["rows_unknown_key"] += int(n_rows - known.sum())
            stats["rows_without_words"] += int((known & ~has_words[qid]).sum())
            stats["batches"] += 1
            if not known.all():
                kid, qid, clicks = kid[known], qid[known], clicks[known]
            # word clicks on training images: each query's training clicks, then each of its words'
            on_train = train[kid] if wanted is not None else None
            query_clicks = np.bincount(qid if on_train is None else qid[on_train], minlength=n_queries,
                                       weights=(clicks if on_train is None else clicks[on_train]).astype(np.float64))
            if len(totals) < n_codes:
                totals = np.concatenate([totals, np.zeros(n_codes - len(totals))])
            totals[:n_codes] += np.bincount(incidence.indices, weights=np.repeat(query_clicks, np.diff(incidence.indptr)),
                                            minlength=n_codes)
            blocks.add(kid, qid, clicks, incidence)
            del kid, qid, clicks, known, incidence, on_train, query_clicks
            seconds["matrix"] += _clock() - t3
        t3 = _clock()
        n_codes, n_keys = words.size, key_dict.size
        totals = np.concatenate([totals, np.zeros(n_codes - len(totals))])
        all_keys = np.array(key_list if key_list is not None else key_dict.strings.to_list(), dtype=object)
        vocab_ids = _top_k(totals, words.strings, int(k)) if n_codes else np.zeros(0, dtype=np.int64)
        vocabulary = words.strings.decode(vocab_ids).to_list() if len(vocab_ids) else []
        counts = blocks.vocabulary_counts(vocab_ids, (n_keys, n_codes), threads=2 if pipeline else 1)
        counts.sum_duplicates()
        counts.sort_indices()
        stats["spilled_entries"] = blocks.spilled_entries
        seconds["vocabulary"] += _clock() - t3
    finally:
        if warm is not None:
            warm.join()
        blocks.close()
        words.close()
        key_dict.close()
    stats["train_word_clicks"] = float(totals.sum())
    stats["train_word_clicks_in_vocabulary"] = float(totals[vocab_ids].sum()) if len(vocab_ids) else 0.0
    stats["train_words"] = int((totals > 0).sum())
    stats.update(distinct_words=int(words.is_word.sum()), vocabulary=len(vocab_ids), images=len(all_keys),
                 train_images=int(train.sum()), queries_formed=words.queries_formed,
                 tokens_lemmatised=words.tokens_lemmatised, engine=f"polars {pl.__version__}",
                 seconds={name: round(v, 3) for name, v in seconds.items()})
    return _word_click_result("columnar_word_click_matrix", keys, key_list, counts, all_keys, vocabulary, totals,
                              vocab_ids, train, stats)


def _word_click_result(who: str, keys, key_list, counts, all_keys, vocabulary, totals: np.ndarray,
                       vocab_ids: np.ndarray, train, stats: dict) -> WordClickMatrix:
    """The finished :class:`WordClickMatrix` of a columnar or distributed count; a DataError
    (named after ``who``) when keys were given and no log row has one of them."""
    if stats["rows"] and keys is not None and stats["rows_unknown_key"] == stats["rows"]:
        raise DataError(f"{who}: none of the {stats['rows']} log rows has a key among the "
                        f"{len(key_list)} given keys (first given: {next(iter(key_list), None)!r})")
    return WordClickMatrix(counts, all_keys, vocabulary, totals[vocab_ids].astype(np.float64), train, stats)


def columnar_click_tfidf(log: str | os.PathLike | Iterable[ClickRecord], variant: str = "paper",
                         **kwargs: Any) -> tuple[WordClickMatrix, ClickTfidf]:
    """:func:`columnar_word_click_matrix` (``kwargs``) then :func:`click_tfidf` (eq. 1 or ``"code"``)."""
    wc = columnar_word_click_matrix(log, **kwargs)
    return wc, click_tfidf(wc, variant=variant)
