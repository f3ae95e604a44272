"""Click logs in Clickture's format, read and written as streams.

A click log is a table of triads ``(query, image key, clicks)``: image ``key`` was clicked
``clicks`` times (an integer >= 1, summed over users) in the results of ``query``. The
project writes one triad per line, tab-separated, in the order ``query \\t key \\t clicks``
(:data:`CLICKTURE_COLUMNS`), with no header. The MSR-Bing 2013 release of Clickture-Lite
puts the key first in ``TrainClickLog.tsv`` (``key \\t query \\t clicks``,
:data:`MSR_TRAIN_COLUMNS`); pass ``columns=MSR_TRAIN_COLUMNS`` to read such a file.

Everything here streams: :func:`iter_click_log` holds one line at a time, so Clickture-Lite
(23.1 million triads) or Clickture-Full (212.3 million) are read in bounded memory, and
:func:`write_click_log` consumes any iterator of records. Files whose name ends in ``.gz``
are gzip-compressed (read and write). Writes are atomic: a failure leaves no file behind.

Bad input raises :class:`~clickvision.data.base.DataError` naming the file and the line
(``path:line: ...``): a wrong number of fields, an empty query or key, clicks that are not
a positive integer (zero, negative, fractional or non-numeric counts are all rejected) or
implausibly large ones (above :data:`MAX_CLICKS` = 10^9), and a damaged or truncated gzip
stream (at the line reached). A log with no triad at all is a DataError naming the file.
"""
from __future__ import annotations

import gzip
import io
import operator
import os
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, TextIO

from ..data.base import DataError
from ..io import atomic_path

CLICKTURE_COLUMNS: tuple[str, str, str] = ("query", "key", "clicks")
"""The project's order of the three fields (the click-log simulator writes this)."""
MSR_TRAIN_COLUMNS: tuple[str, str, str] = ("key", "query", "clicks")
"""The field order of ``TrainClickLog.tsv`` in the MSR-Bing Image Retrieval Challenge release."""

MAX_CLICKS: int = 10**9
"""The largest plausible click count of one triad. Clickture-Full's busiest (query, image)
pairs are clicked thousands of times over a year of Bing logs; a count above a billion is a
corrupt or mis-parsed field (e.g. a key or a timestamp in the clicks column), so readers and
writers reject it."""
GZIP_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error)
"""What a damaged gzip stream raises mid-read: gzip.BadGzipFile (an OSError) for a bad
header or CRC, EOFError for a truncated stream, zlib.error for damaged deflate data."""

_FIELDS = frozenset(CLICKTURE_COLUMNS)
_new_record = tuple.__new__  # builds a ClickRecord without the NamedTuple's Python-level __new__
_WRITE_BATCH = 1024


class ClickRecord(NamedTuple):
    """One click triad: ``key`` was clicked ``clicks`` (>= 1) times for ``query``."""

    query: str
    key: str
    clicks: int


def open_text(path: str | os.PathLike, mode: str = "rt", *, gzipped: bool | None = None) -> TextIO:
    """Open a UTF-8 text file, gzip-compressed when its name ends in ``.gz``.

    ``gzipped`` overrides the suffix rule (used when writing through a temporary name).
    Compressed output is deterministic: no file name and a zero time stamp in the header.
    """
    path = Path(path)
    if mode not in ("rt", "wt"):
        raise ValueError(f"open_text: mode must be 'rt' or 'wt', got {mode!r}")
    if gzipped is None:
        gzipped = path.suffix == ".gz"
    if not gzipped:
        return open(path, mode[0], encoding="utf-8", newline="")
    if mode == "rt":  # a damaged stream raises DataError naming the file, not a raw zlib/gzip error
        return io.TextIOWrapper(io.BufferedReader(_GzipRaw(path, translate=True), 1 << 20),
                                encoding="utf-8", newline="")
    raw = open(path, "wb")
    gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0)
    return _ClosingTextWrapper(gz, raw)


class _GzipRaw(io.RawIOBase):
    """A gzip file as a raw stream whose reads return what is decompressed so far (``read1``).

    A buffered reader over it hands out every complete line before a damaged or truncated
    part of the stream, so the error surfaces at the line reached (a buffered read of the
    ``GzipFile`` itself would fail on the first line of a 1 MiB block). With ``translate``,
    the errors of :data:`GZIP_ERRORS` become :class:`DataError` naming the file and the
    uncompressed offset; else they propagate (:func:`iter_lines` names the line).
    """

    def __init__(self, path: Path, translate: bool = False) -> None:
        super().__init__()
        self._path = Path(path)
        self._gz = gzip.open(self._path, "rb")
        self._translate = translate
        self._offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._gz.read1(len(buffer))
        except GZIP_ERRORS as exc:
            if not self._translate:
                raise
            raise DataError(f"{self._path}: damaged or truncated gzip stream after {self._offset} "
                            f"uncompressed bytes ({type(exc).__name__}: {exc})") from exc
        n = len(data)
        buffer[:n] = data
        self._offset += n
        return n

    def close(self) -> None:
        try:
            self._gz.close()
        finally:
            super().close()


class _ClosingTextWrapper(io.TextIOWrapper):
    """A text wrapper over a GzipFile that also closes the underlying raw file."""

    def __init__(self, gz: gzip.GzipFile, raw) -> None:
        super().__init__(gz, encoding="utf-8", newline="")
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def iter_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` (1-based, line ending removed) from a text file.

    Streams the file; ``.gz`` is decompressed on the fly. Lines are split on ``\\n`` and
    decoded one by one, so a line that is not UTF-8, like a damaged gzip stream (bad
    header or CRC, truncation, damaged deflate data: the line reached is named) or a
    missing file, raises :class:`DataError` naming the file and the exact line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing file: {path}")
    lineno = 0
    opened = io.BufferedReader(_GzipRaw(path), 1 << 20) if path.suffix == ".gz" else open(path, "rb")
    with opened as fh:
        while True:
            try:
                raw = fh.readline()
            except GZIP_ERRORS as exc:  # BadGzipFile (an OSError), truncation (EOFError), zlib.error
                what = "damaged or truncated gzip stream" if path.suffix == ".gz" else "unreadable file"
                raise DataError(f"{path}:{lineno + 1}: {what} ({type(exc).__name__}: {exc})") from exc
            if not raw:
                return
            lineno += 1
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
            yield lineno, line.rstrip("\r\n")


def iter_fields(path: str | os.PathLike, names: Sequence[str]) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` of a tab-separated file, skipping blank lines.

    Every other line must have exactly ``len(names)`` fields, else :class:`DataError` names
    ``path:line`` and the expected fields.
    """
    path = Path(path)
    for lineno, line in iter_lines(path):
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != len(names):
            raise DataError(f"{path}:{lineno}: expected {len(names)} tab-separated fields "
                            f"({' / '.join(names)}), found {len(fields)}")
        yield lineno, fields


def _column_order(columns: Sequence[str]) -> tuple[int, int, int]:
    cols = tuple(columns)
    if len(cols) != 3 or set(cols) != _FIELDS:
        raise ValueError(f"columns must be an ordering of {CLICKTURE_COLUMNS}, got {cols!r}")
    return cols.index("query"), cols.index("key"), cols.index("clicks")


def parse_clicks(text: str, where: str) -> int:
    """A click count: an integer in 1..:data:`MAX_CLICKS` written in ASCII digits; else
    DataError at ``where``."""
    s = text.strip()
    if not (s.isascii() and s.isdigit()):
        raise DataError(f"{where}: clicks must be a positive integer, got {text[:40]!r}")
    if len(s.lstrip("0")) > len(str(MAX_CLICKS)):
        raise DataError(f"{where}: implausible click count {s[:40]}{'...' if len(s) > 40 else ''} "
                        f"(more than MAX_CLICKS = {MAX_CLICKS})")
    value = int(s)
    if value < 1:
        raise DataError(f"{where}: clicks must be >= 1, got {value}")
    if value > MAX_CLICKS:
        raise DataError(f"{where}: implausible click count {value} (more than MAX_CLICKS = {MAX_CLICKS})")
    return value


def iter_click_log(path: str | os.PathLike,
                   columns: Sequence[str] = CLICKTURE_COLUMNS) -> Iterator[ClickRecord]:
    """Stream the triads of a click log as :class:`ClickRecord` (bounded memory).

    ``columns`` gives the field order of the file (default ``query, key, clicks``; use
    :data:`MSR_TRAIN_COLUMNS` for MSR's ``TrainClickLog.tsv``). Blank lines are skipped;
    every other line must have exactly three tab-separated fields, a non-empty query and
    key, and clicks in 1..:data:`MAX_CLICKS`, else :class:`DataError` names ``path:line``.
    A log without a single triad (an empty file, only blank lines) is a DataError naming the
    file: an empty log is a failed download or export, never a real one.
    """
    iq, ik, ic = _column_order(columns)
    path = Path(path)
    lineno = 0
    for lineno, fields in iter_fields(path, columns):
        query, key, text = fields[iq], fields[ik], fields[ic]
        if not query or not key or query.isspace() or key.isspace():
            raise DataError(f"{path}:{lineno}: empty {'query' if not query.strip() else 'key'}")
        if text.isdigit() and text.isascii() and text[0] != "0" and len(text) < 10:  # fast path: 1..999999999
            yield _new_record(ClickRecord, (query, key, int(text)))
        else:
            yield _new_record(ClickRecord, (query, key, parse_clicks(text, f"{path}:{lineno}")))
    if lineno == 0:
        raise DataError(f"{path}: empty click log (no click triads)")


def read_click_log(path: str | os.PathLike, columns: Sequence[str] = CLICKTURE_COLUMNS):
    """A whole (small) click log as a DataFrame ``query, key, clicks``; holds it in memory."""
    import pandas as pd

    return pd.DataFrame.from_records(list(iter_click_log(path, columns)), columns=list(ClickRecord._fields))


def _format_record(rec, index: int, iq: int, ik: int, ic: int) -> str:
    try:
        query, key, clicks = rec
    except (TypeError, ValueError) as exc:
        raise DataError(f"click record {index}: expected (query, key, clicks), got {rec!r}") from exc
    for name, value in (("query", query), ("key", key)):
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"click record {index}: {name} must be a non-empty string, got {value!r}")
        if "\t" in value or "\n" in value or "\r" in value:
            raise DataError(f"click record {index}: {name} {value!r} contains a tab or line break")
    try:
        if isinstance(clicks, bool) or type(clicks).__name__ == "bool_":
            raise TypeError
        clicks = operator.index(clicks)  # ints and numpy integers; not floats or strings
    except TypeError:
        raise DataError(f"click record {index}: clicks must be an integer, got {clicks!r}") from None
    if clicks < 1:
        raise DataError(f"click record {index}: clicks must be >= 1, got {clicks}")
    if clicks > MAX_CLICKS:
        raise DataError(f"click record {index}: implausible click count {clicks} (more than MAX_CLICKS = {MAX_CLICKS})")
    fields = [""] * 3
    fields[iq], fields[ik], fields[ic] = query, key, str(clicks)
    return "\t".join(fields) + "\n"


def write_click_log(records: Iterable[ClickRecord | tuple[str, str, int]],
                    path: str | os.PathLike,
                    columns: Sequence[str] = CLICKTURE_COLUMNS) -> int:
    """Write click triads to ``path`` (gzip when it ends in ``.gz``); return the row count.

    Streams ``records`` (any iterable, e.g. a simulator's generator) in batches, so a
    Clickture-sized log never sits in memory. The file appears atomically when every record
    was valid; an invalid record (empty or tab-containing text, clicks < 1, above
    :data:`MAX_CLICKS` or not an integer) raises :class:`DataError` naming its index and leaves no file behind.
    """
    iq, ik, ic = _column_order(columns)
    slot = [0, 0, 0]  # slot[j] = which of (query, key, clicks) goes to output column j
    slot[iq], slot[ik], slot[ic] = 0, 1, 2
    a, b, c = slot
    path = Path(path)
    count = 0
    with atomic_path(path) as tmp:
        with open_text(tmp, "wt", gzipped=path.suffix == ".gz") as fh:
            batch: list[str] = []
            for count, rec in enumerate(records, start=1):
                line = None
                try:  # fast path for plain (str, str, int >= 1) records; the rest is checked in full
                    q, k, n = rec
                    if (type(n) is int and 1 <= n <= MAX_CLICKS and type(q) is str and type(k) is str
                            and q and k and not q.isspace() and not k.isspace()):
                        v = (q, k, n)
                        line = f"{v[a]}\t{v[b]}\t{v[c]}\n"
                        if line.count("\t") != 2 or line.count("\n") != 1 or "\r" in line:
                            line = None
                except (TypeError, ValueError):
                    pass
                batch.append(line or _format_record(rec, count - 1, iq, ik, ic))
                if len(batch) >= _WRITE_BATCH:
                    fh.writelines(batch)
                    batch.clear()
            fh.writelines(batch)
    return count
