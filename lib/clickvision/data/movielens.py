"""MovieLens ratings: the embedded extract (Debian ``r-cran-dslabs``) and the original files.

Embedded default
    The Debian package ``r-cran-dslabs`` ships the ml-latest-small extract as the R object
    ``movielens`` (100,004 ratings by 671 users of 9,066 movies, ratings 0.5-5 in half
    stars, Unix timestamps 1995-2016, 20 pipe-joined genre values counting
    ``(no genres listed)``). It is not an ``.rda`` file but sits in R's *lazy-load
    database* ``dslabs/data/Rdata.{rdx,rdb}``; :func:`read_lazyload_object` reads it with
    the ``rdata`` package, no R needed. :func:`build` writes ``events.csv``
    (user, item, rating, timestamp) and ``items.csv`` (item, title, year, genres) under
    ``data/processed/movielens/``. The MovieLens terms forbid redistribution: these files
    are git-ignored, never committed, and the manifest says so.

Original GroupLens files
    :func:`load_movielens_files` reads a folder in any of the original layouts -- ml-100k
    (``u.data`` tab-separated, ``u.item`` pipe-separated latin-1 with 19 genre flags),
    ml-1m and ml-10m (``ratings.dat`` / ``movies.dat``, ``::``-separated), ml-latest and
    ml-latest-small (``ratings.csv`` / ``movies.csv``) -- into the same
    :class:`~clickvision.data.base.Interactions`. Titles lose their trailing ``(year)``,
    which goes to the ``year`` column, as in the dslabs extract. A malformed line raises
    :class:`~clickvision.data.base.DataError` naming the file and line number.
"""
from __future__ import annotations

import bz2
import csv
import gzip
import lzma
import re
import warnings
import zlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from .. import paths
from ..io import atomic_path
from . import manifest
from .base import DataError, Interactions, MissingSourceError

NAME = "movielens"
DEBIAN_PACKAGE = "r-cran-dslabs"
DSLABS_DATA_DIR = Path("/usr/lib/R/site-library/dslabs/data")
INSTALL_COMMAND = f"sudo apt-get install --no-install-recommends {DEBIAN_PACKAGE}"
LICENCE = ("MovieLens (GroupLens) terms of use: redistribution forbidden, never commit the "
           "built files; dslabs R package: Artistic-2.0")
RATING_RANGE = (0.5, 5.0)  # every MovieLens release rates on this scale (half stars from ml-10m on)
BUILD_PARAMS: dict[str, Any] = {"r_object": "movielens", "layout": 1}
EVENT_COLUMNS = ("user", "item", "rating", "timestamp")
ITEM_COLUMNS = ("item", "title", "year", "genres")
# ml-100k's genre order (u.genre), used when a folder lacks u.genre.
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western")
_TITLE_YEAR = re.compile(r"^(.*?)\s*\((\d{4})\)\s*$")


# --------------------------------------------------------------------------- R lazy-load store


def _parse_r_serialized(data: bytes, origin: str) -> Any:
    import rdata

    try:
        with warnings.catch_warnings():  # rdata warns "Unknown file type: assumed RDS"
            warnings.simplefilter("ignore", UserWarning)
            parsed = rdata.parser.parse_data(data)
            return rdata.conversion.convert(parsed)
    except Exception as exc:  # noqa: BLE001 - any parser failure means a corrupt store
        raise DataError(f"{origin}: not a readable R serialization ({type(exc).__name__}: {exc})") from exc


def read_lazyload_object(filebase: str | Path, name: str) -> Any:
    """Read object ``name`` from R's lazy-load database ``<filebase>.rdx`` / ``.rdb``.

    The ``.rdx`` index is a serialized R list (gzip- or zlib-compressed) whose
    ``variables`` map each object name to ``(offset, length)`` in the ``.rdb``. That
    slice holds a 4-byte big-endian uncompressed length, then (``compressed`` 2 or 3:
    one type byte ``'0'``/``'2'``/``'Z'`` and) the compressed serialization of the object.
    """
    rdx, rdb = Path(f"{filebase}.rdx"), Path(f"{filebase}.rdb")
    for f in (rdx, rdb):
        if not f.exists():
            raise DataError(f"R lazy-load database file missing: {f}")
    raw = rdx.read_bytes()
    try:
        blob = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else zlib.decompress(raw[4:])
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{rdx}: corrupt lazy-load index ({exc})") from exc
    index = _parse_r_serialized(blob, str(rdx))
    variables = index.get("variables") if isinstance(index, dict) else None
    if not isinstance(variables, dict):
        raise DataError(f"{rdx}: no 'variables' table: not an R lazy-load index")
    if name not in variables:
        raise DataError(f"{rdx}: no object {name!r} (has {sorted(map(str, variables))})")
    offset, length = (int(v) for v in variables[name])
    compressed = index.get("compressed", [True])
    mode = int(np.asarray(compressed).ravel()[0])  # TRUE -> 1 (zlib); 2 bzip2 / 3 xz
    with open(rdb, "rb") as fh:
        fh.seek(offset)
        chunk = fh.read(length)
    if len(chunk) != length or length < 5:
        raise DataError(f"{rdb}: truncated: object {name!r} needs bytes {offset}..{offset + length}")
    expected = int.from_bytes(chunk[:4], "big")
    try:
        if mode == 1:
            data = zlib.decompress(chunk[4:])
        else:
            kind, body = chunk[4:5], chunk[5:]
            data = {b"0": lambda b: b, b"2": bz2.decompress, b"Z": lzma.decompress}[kind](body)
    except (KeyError, OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise DataError(f"{rdb}: corrupt compressed object {name!r} at offset {offset} ({exc})") from exc
    if len(data) != expected:
        raise DataError(f"{rdb}: object {name!r} decompressed to {len(data)} bytes, header says {expected}")
    return _parse_r_serialized(data, f"{rdb} (object {name!r})")


def dslabs_to_tables(frame: pd.DataFrame, origin: str = "dslabs movielens") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split dslabs' one-row-per-rating frame into (events, items) with our column names."""
    need = {"userId", "movieId", "rating", "timestamp", "title", "year", "genres"}
    if not isinstance(frame, pd.DataFrame) or need - set(frame.columns):
        cols = list(getattr(frame, "columns", []))
        raise DataError(f"{origin}: expected a data frame with columns {sorted(need)}, got {cols}")
    events = pd.DataFrame({
        "user": frame["userId"].astype("int64").to_numpy(),
        "item": frame["movieId"].astype("int64").to_numpy(),
        "rating": frame["rating"].astype("float64").to_numpy(),
        "timestamp": frame["timestamp"].astype("int64").to_numpy(),
    })
    _check_ratings(events["rating"].to_numpy(), origin)
    items = pd.DataFrame({
        "item": events["item"],
        "title": frame["title"].astype("string").fillna("").to_numpy(),
        "year": frame["year"].astype("Int64").to_numpy(),
        "genres": frame["genres"].astype("string").fillna("").to_numpy(),
    })
    if items.drop_duplicates().duplicated("item").any():
        bad = items.drop_duplicates().loc[lambda d: d.duplicated("item"), "item"].iloc[0]
        raise DataError(f"{origin}: movie {bad} has two different titles/years/genres")
    items = items.drop_duplicates("item").sort_values("item").reset_index(drop=True)
    return events, items


def genre_list(items: pd.DataFrame) -> list[str]:
    """Distinct genre values of an item table (``genres`` is pipe-joined)."""
    return sorted({g for s in items["genres"] for g in s.split("|") if g})


def _bad_ratings(ratings: np.ndarray) -> np.ndarray:
    lo, hi = RATING_RANGE
    return ~(np.isfinite(ratings) & (ratings >= lo) & (ratings <= hi))


def _check_ratings(ratings: np.ndarray, origin: str) -> None:
    lo, hi = RATING_RANGE
    bad = _bad_ratings(ratings)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{origin}: rating {ratings[i]!r} (row {i + 1}) outside {lo}-{hi}")


# --------------------------------------------------------------------------- build / load
def processed_dir() -> Path:
    """``data/processed/movielens/`` (git-ignored)."""
    return paths.PROCESSED_DIR / NAME


def build(force: bool = False) -> dict[str, Any]:
    """Extract the dslabs MovieLens ratings to ``events.csv`` / ``items.csv``; skip when built.

    Raises :class:`MissingSourceError` (with the ``apt-get`` command) when the Debian
    package is absent. Returns the manifest entry.
    """
    if not force and manifest.is_built(NAME, BUILD_PARAMS):
        return manifest.load_manifest()[NAME]
    filebase = DSLABS_DATA_DIR / "Rdata"
    if not Path(f"{filebase}.rdx").exists():
        raise MissingSourceError(
            f"MovieLens source missing: {filebase}.rdx not found (Debian package "
            f"{DEBIAN_PACKAGE}). Install it with:\n    {INSTALL_COMMAND}")
    events, items = dslabs_to_tables(read_lazyload_object(filebase, "movielens"), f"{filebase}.rdb")
    out = processed_dir()
    artifacts = [out / "events.csv", out / "items.csv"]
    for table, path in zip((events, items), artifacts):
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
    version = manifest.debian_version(DEBIAN_PACKAGE)
    entry = {
        "source": f"Debian {DEBIAN_PACKAGE} {version} (R object 'movielens' in {filebase}.rdb)",
        "version": version, "licence": LICENCE, "simulated": False, "committed": False,
        "redistribution": "forbidden: built at run time into git-ignored data/processed, never committed",
        "counts": {"ratings": len(events), "users": int(events["user"].nunique()),
                   "items": len(items), "genres": len(genre_list(items))},
        "params": BUILD_PARAMS,
    }
    return manifest.record_build(NAME, entry, artifacts)


def read_tables(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``events.csv`` and ``items.csv`` as written by :func:`build` (exact dtypes)."""
    folder = Path(folder)
    events = pd.read_csv(folder / "events.csv", dtype={"user": "int64", "item": "int64",
                                                        "rating": "float64", "timestamp": "int64"})
    items = pd.read_csv(folder / "items.csv", dtype={"item": "int64", "title": str, "genres": str},
                        keep_default_na=False, na_values={"year": [""]})
    items["year"] = items["year"].astype("Int64")
    return events, items


def load_movielens() -> Interactions:
    """The embedded MovieLens ratings (built on first use) as :class:`Interactions`."""
    entry = build()
    events, items = read_tables(processed_dir())
    meta = {"source": entry["source"], "licence": LICENCE, "format": "dslabs",
            "genres": genre_list(items)}
    return Interactions("movielens", events, items, meta)


# --------------------------------------------------------------------------- original files
def _read_lines(path: Path, encoding: str | None) -> Iterator[tuple[int, str]]:
    """(line number, line) of every non-blank line; ``encoding=None``: UTF-8, else latin-1."""
    if not path.exists():
        raise DataError(f"MovieLens file missing: {path}")
    raw = path.read_bytes()
    if encoding is None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
    else:
        text = raw.decode(encoding)
    for lineno, line in enumerate(text.split("\n"), 1):  # not splitlines: latin-1 has \x85
        line = line.rstrip("\r")
        if line.strip():
            yield lineno, line


def _split(path: Path, sep: str, n_fields: int, encoding: str | None = None,
           header: list[str] | None = None) -> tuple[np.ndarray, list[list[str]]]:
    """Line numbers and fields of every data line; the first line must equal ``header`` if given."""
    linenos, rows = [], []
    lines = _read_lines(path, encoding)
    if header is not None:
        lineno, first = next(lines, (1, ""))
        if [c.strip() for c in first.split(sep)] != header:
            raise DataError(f"{path}, line {lineno}: expected header {sep.join(header)!r}, got {first[:80]!r}")
    for lineno, line in lines:
        fields = line.split(sep)
        if len(fields) != n_fields:
            raise DataError(f"{path}, line {lineno}: expected {n_fields} fields separated by "
                            f"{sep!r}, found {len(fields)}: {line[:80]!r}")
        linenos.append(lineno)
        rows.append(fields)
    if not rows:
        raise DataError(f"{path}: no data lines")
    return np.asarray(linenos), rows


def _numbers(values: list[str], linenos: np.ndarray, path: Path, column: str, integer: bool) -> np.ndarray:
    num = pd.to_numeric(pd.Series(values, dtype=str).str.strip(), errors="coerce").to_numpy(dtype="float64")
    bad = ~np.isfinite(num)
    if integer:
        bad |= np.isfinite(num) & ((num != np.floor(num)) | (num < 0))
    if column == "rating":
        bad |= _bad_ratings(num)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "a non-negative integer" if integer else f"a number in {RATING_RANGE[0]}-{RATING_RANGE[1]}"
        raise DataError(f"{path}, line {linenos[i]}: {column} must be {what}, got {values[i]!r}")
    return num.astype("int64") if integer else num


_RATINGS_HEADER = ["userId", "movieId", "rating", "timestamp"]


def _ratings_fast(path: Path, sep: str, header: bool) -> pd.DataFrame | None:
    """pandas' C parser for well-formed files; None when anything is off (then the slow
    line-by-line path finds and names the bad line)."""
    import io

    try:
        raw = path.read_bytes()
        if len(sep) > 1:  # the C parser takes one-character separators only
            raw = raw.replace(sep.encode(), b"\x1f")
        events = pd.read_csv(io.BytesIO(raw), sep="\x1f" if len(sep) > 1 else sep, engine="c",
                             header=0 if header else None, names=None if header else list(EVENT_COLUMNS),
                             dtype={c: "float64" for c in (_RATINGS_HEADER if header else EVENT_COLUMNS)})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, OSError):
        return None
    if header:
        if list(events.columns) != _RATINGS_HEADER:
            return None
        events.columns = list(EVENT_COLUMNS)
    values = events.to_numpy()
    ints = values[:, [0, 1, 3]]
    if (len(events) == 0 or not np.isfinite(values).all() or (ints < 0).any()
            or (ints != np.floor(ints)).any() or _bad_ratings(values[:, 2]).any()):
        return None
    return events.astype({"user": "int64", "item": "int64", "timestamp": "int64"})


def _ratings(path: Path, sep: str, header: bool, fast: bool = True) -> tuple[pd.DataFrame, np.ndarray | None]:
    """(events, line numbers or None) from a ratings file: user, item, rating, timestamp."""
    if fast and path.exists():
        events = _ratings_fast(path, sep, header)
        if events is not None:
            return events, None
    linenos, rows = _split(path, sep, 4, header=_RATINGS_HEADER if header else None)
    cols = list(zip(*rows))
    events = pd.DataFrame({name: _numbers(list(vals), linenos, path, name, name != "rating")
                           for name, vals in zip(EVENT_COLUMNS, cols)})
    return events, linenos


def _title_year(title: str) -> tuple[str, Any]:
    match = _TITLE_YEAR.match(title)
    return (match.group(1), int(match.group(2))) if match else (title.strip(), pd.NA)


def _items_frame(ids: list[str], linenos: np.ndarray, path: Path, titles: list[str],
                 genres: list[str], fallback_years: list[Any] | None = None) -> pd.DataFrame:
    """Item table; the year comes from the title's ``(YYYY)``, else from ``fallback_years``."""
    split = [_title_year(t) for t in titles]
    years = [y for _, y in split]
    if fallback_years is not None:
        years = [fb if y is pd.NA else y for y, fb in zip(years, fallback_years)]
    items = pd.DataFrame({"item": _numbers(ids, linenos, path, "item", True),
                          "title": [t for t, _ in split], "year": pd.array(years, dtype="Int64"),
                          "genres": genres})
    dup = items["item"].duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise DataError(f"{path}, line {linenos[i]}: movie id {items['item'].iloc[i]} appears twice")
    return items


def _ml100k_items(root: Path) -> pd.DataFrame:
    genre_names = list(ML100K_GENRES)
    if (root / "u.genre").exists():
        _, rows = _split(root / "u.genre", "|", 2, encoding="latin-1")
        genre_names = [name for name, _ in sorted(rows, key=lambda r: int(r[1]))]
    path = root / "u.item"
    linenos, rows = _split(path, "|", 5 + len(genre_names), encoding="latin-1")
    genres = []
    for lineno, row in zip(linenos, rows):
        flags = [f.strip() for f in row[5:]]
        if set(flags) - {"0", "1"}:
            raise DataError(f"{path}, line {lineno}: genre flags must be 0 or 1, got {flags}")
        genres.append("|".join(g for g, f in zip(genre_names, flags) if f == "1"))
    release_years = [int(r[2][-4:]) if re.fullmatch(r".*\d{4}", r[2].strip()) else pd.NA for r in rows]
    return _items_frame([r[0] for r in rows], linenos, path, [r[1] for r in rows], genres, release_years)


def _csv_items(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"MovieLens file missing: {path}")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header != ["movieId", "title", "genres"]:
            raise DataError(f"{path}, line 1: expected header movieId,title,genres, got {header}")
        linenos, rows = [], []
        try:
            for row in reader:
                if not row:
                    continue
                if len(row) != 3:
                    raise DataError(f"{path}, line {reader.line_num}: expected 3 comma-separated "
                                    f"fields, found {len(row)}")
                linenos.append(reader.line_num)
                rows.append(row)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DataError(f"{path}, line {reader.line_num + 1}: unreadable CSV ({exc})") from exc
    return _items_frame([r[0] for r in rows], np.asarray(linenos), path, [r[1] for r in rows], [r[2] for r in rows])


def detect_format(root: str | Path) -> str:
    """``"ml-100k"``, ``"ml-1m"`` (also ml-10m: same layout) or ``"ml-latest"`` from the file names."""
    root = Path(root)
    if (root / "u.data").exists():
        return "ml-100k"
    if (root / "ratings.dat").exists():
        return "ml-1m"
    if (root / "ratings.csv").exists():
        return "ml-latest"
    raise DataError(f"{root}: no MovieLens ratings file (u.data, ratings.dat or ratings.csv)")


def load_movielens_files(root: str | Path, fmt: str | None = None) -> Interactions:
    """Read an original GroupLens MovieLens folder (ml-100k, ml-1m, ml-10m, ml-latest[-small]).

    ``fmt`` forces ``"ml-100k"``, ``"ml-1m"`` (= ml-10m layout) or ``"ml-latest"``;
    by default it is detected from the file names.
    """
    root = Path(root)
    fmt = fmt or detect_format(root)
    if fmt == "ml-100k":
        ratings_path, sep, header = root / "u.data", "\t", False
        events, linenos = _ratings(ratings_path, sep, header)
        items = _ml100k_items(root)
    elif fmt in ("ml-1m", "ml-10m"):
        ratings_path, sep, header = root / "ratings.dat", "::", False
        events, linenos = _ratings(ratings_path, sep, header)
        item_lines, rows = _split(root / "movies.dat", "::", 3)
        items = _items_frame([r[0] for r in rows], item_lines, root / "movies.dat",
                             [r[1] for r in rows], [r[2] for r in rows])
    elif fmt == "ml-latest":
        ratings_path, sep, header = root / "ratings.csv", ",", True
        events, linenos = _ratings(ratings_path, sep, header)
        items = _csv_items(root / "movies.csv")
    else:
        raise ValueError(f"fmt must be 'ml-100k', 'ml-1m', 'ml-10m' or 'ml-latest', got {fmt!r}")
    unknown = ~events["item"].isin(items["item"]).to_numpy()
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        if linenos is None:  # the fast parser keeps no line numbers: recover them
            linenos = _ratings(ratings_path, sep, header, fast=False)[1]
        raise DataError(f"{ratings_path}, line {linenos[i]}: movie id "
                        f"{events['item'].iloc[i]} is not in the movie table")
    items = items.sort_values("item").reset_index(drop=True)
    meta = {"source": str(root), "format": fmt, "licence": "MovieLens (GroupLens) terms of use",
            "genres": genre_list(items)}
    return Interactions(f"movielens:{root.name}", events, items, meta)
