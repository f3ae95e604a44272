"""Amazon product data (McAuley et al.): reviews + metadata as Interactions.

Paper D's "Clothing" and "Toys" sets come from this data (McAuley et al., SIGIR 2015).
Files are one record per line, optionally gzip-compressed (``.gz``):

* reviews, strict JSON lines. 2014 and 2018 releases: ``reviewerID``, ``asin``,
  ``overall`` (1-5), ``unixReviewTime`` (seconds); the 2023 release: ``user_id``,
  ``parent_asin`` (else ``asin``), ``rating``, ``timestamp`` (milliseconds). The
  ratings-only CSV files (no header) are read too: 2014 writes ``user,item,rating,timestamp``
  (the default ``csv_columns``), 2018 ``item,user,rating,timestamp`` (:data:`CSV_2018`).
* metadata. 2014: "loose JSON", one Python dict literal per line (single quotes), read
  with :func:`ast.literal_eval` (safe: literals only); ``categories`` is a list of
  category paths, the image is ``imUrl``. 2018: strict JSON with ``category`` (one path)
  and ``imageURLHighRes`` / ``imageURL`` lists. 2023: ``parent_asin``, ``categories``
  and ``images`` (a list of dicts with ``hi_res`` / ``large``). ``image`` and
  ``imageURLBackup`` are accepted as further image fields.

Events become ``user, item, rating, timestamp`` (seconds); each item's categories become
multi-labels (HTML entities such as ``&amp;`` unescaped, a ``|`` inside a name
replaced by ``/``), ``|``-joined in first-seen order, beside ``title``, ``image_url`` and,
when ``image_dir`` holds ``<asin>.jpg``, a local ``path``. A malformed line (also one
nested too deeply to parse) or a damaged gzip stream raises DataError naming ``file:line``;
a user rating one item twice warns naming both lines (``load_amazon(duplicates=...)``).
"""
from __future__ import annotations

import ast
import html
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ...click.log import iter_lines
from ..base import DataError, Interactions
from ._common import as_root, parse_float, parse_int

USER_FIELDS = ("reviewerID", "user_id")
ITEM_FIELDS = ("parent_asin", "asin")
RATING_FIELDS = ("overall", "rating")
IMAGE_FIELDS = ("imUrl", "imageURLHighRes", "imageURL", "images", "image", "imageURLBackup")
CSV_2014 = ("user", "item", "rating", "timestamp")
CSV_2018 = ("item", "user", "rating", "timestamp")
DUPLICATE_MODES = ("warn", "error", "first", "keep")


def iter_records(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """Stream ``(line_number, record)`` from JSON lines or loose-JSON (Python literal) lines."""
    path = Path(path)
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except RecursionError as exc:
            raise DataError(f"{path}:{lineno}: JSON nested too deeply to read (RecursionError)") from exc
        except ValueError:
            try:
                record = ast.literal_eval(line)
            except (RecursionError, MemoryError) as exc:
                raise DataError(f"{path}:{lineno}: Python literal nested too deeply to read "
                                f"({exc.__class__.__name__})") from exc
            except (ValueError, TypeError, SyntaxError) as exc:
                raise DataError(f"{path}:{lineno}: neither JSON nor a Python literal "
                                f"({exc.__class__.__name__})") from exc
        if not isinstance(record, dict):
            raise DataError(f"{path}:{lineno}: expected an object, got {type(record).__name__}")
        yield lineno, record


def _first(record: dict, fields: tuple[str, ...], where: str, what: str) -> Any:
    for f in fields:
        if record.get(f) not in (None, ""):
            return record[f]
    raise DataError(f"{where}: no {what} (one of {', '.join(fields)})")


def iter_reviews(path: str | os.PathLike,
                 csv_columns: tuple[str, ...] = CSV_2014) -> Iterator[tuple[str, str, float, int]]:
    """Stream ``(user, item, rating, timestamp_seconds)`` from a review or ratings file.

    ``.csv`` / ``.csv.gz`` files are ratings-only tables in ``csv_columns`` order.
    """
    for _, user, item, rating, ts in _numbered_reviews(path, csv_columns):
        yield user, item, rating, ts


def _numbered_reviews(path: str | os.PathLike,
                      csv_columns: tuple[str, ...] = CSV_2014) -> Iterator[tuple[int, str, str, float, int]]:
    """:func:`iter_reviews` with each event's line number first."""
    path = Path(path)
    if path.name.endswith((".csv", ".csv.gz")):
        if sorted(csv_columns) != sorted(CSV_2014):
            raise ValueError(f"csv_columns must be an ordering of {CSV_2014}, got {csv_columns!r}")
        iu, ii, ir, it = (csv_columns.index(c) for c in CSV_2014)
        for lineno, line in iter_lines(path):
            if not line.strip():
                continue
            fields = line.split(",")
            where = f"{path}:{lineno}"
            if len(fields) != 4:
                raise DataError(f"{where}: expected 4 comma-separated fields ({','.join(csv_columns)}), "
                                f"found {len(fields)}")
            yield (lineno, fields[iu], fields[ii], parse_float(fields[ir], where, "rating"),
                   parse_int(fields[it], where, "timestamp"))
        return
    for lineno, rec in iter_records(path):
        yield (lineno, *_guarded(_review, rec, f"{path}:{lineno}"))


def _review(rec: dict, where: str) -> tuple[str, str, float, int]:
    user = str(_first(rec, USER_FIELDS, where, "user id"))
    item = str(_first(rec, ITEM_FIELDS, where, "item id"))
    rating = parse_float(str(_first(rec, RATING_FIELDS, where, "rating")), where, "rating")
    if "unixReviewTime" in rec:
        ts = parse_int(str(rec["unixReviewTime"]), where, "unixReviewTime")
    elif "timestamp" in rec:
        ts = parse_int(str(rec["timestamp"]), where, "timestamp") // 1000  # 2023: milliseconds
    else:
        raise DataError(f"{where}: no unixReviewTime or timestamp")
    return user, item, rating, ts


def _guarded(fn, rec: dict, where: str, *args):
    """``fn(rec, where, *args)``; a record nested too deeply to convert is a DataError at ``where``."""
    try:
        return fn(rec, where, *args)
    except RecursionError as exc:
        raise DataError(f"{where}: record nested too deeply to read (RecursionError)") from exc


def _category_names(rec: dict, where: str) -> list[str]:
    value = rec.get("categories", rec.get("category", []))
    if value is None:
        return []
    if not isinstance(value, list):
        raise DataError(f"{where}: categories must be a list, got {type(value).__name__}")
    paths = value if value and all(isinstance(v, list) for v in value) else [value]
    names: list[str] = []
    for p in paths:
        for name in p:
            name = " ".join(html.unescape(str(name)).replace("|", "/").split())
            if name and name not in names:
                names.append(name)
    return names


def _image_url(rec: dict) -> str:
    for f in IMAGE_FIELDS:
        value = rec.get(f)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, dict):
            value = value.get("hi_res") or value.get("large") or value.get("thumb")
        if value:
            return str(value)
    return ""


def iter_metadata(path: str | os.PathLike, drop_root_category: bool = False) -> Iterator[dict[str, str]]:
    """Stream item metadata as ``{item, title, labels, image_url}``.

    ``labels`` is the ``|``-joined union of every category on the item's paths;
    ``drop_root_category`` drops the first name of each path (e.g. "Clothing, Shoes &
    Jewelry", shared by every item of a category file).
    """
    path = Path(path)
    for lineno, rec in iter_records(path):
        yield _guarded(_metadata, rec, f"{path}:{lineno}", drop_root_category)


def _metadata(rec: dict, where: str, drop_root_category: bool) -> dict[str, str]:
    item = str(_first(rec, ITEM_FIELDS, where, "item id"))
    names = _category_names(rec, where)
    if drop_root_category:
        roots = _category_roots(rec)
        names = [n for n in names if n not in roots]
    return {"item": item, "title": " ".join(html.unescape(str(rec.get("title") or "")).split()),
            "labels": "|".join(names), "image_url": _image_url(rec)}


def _category_roots(rec: dict) -> set[str]:
    value = rec.get("categories", rec.get("category", [])) or []
    paths = value if value and all(isinstance(v, list) for v in value) else [value]
    return {" ".join(html.unescape(str(p[0])).replace("|", "/").split()) for p in paths if p}


def _handle_duplicates(events: pd.DataFrame, path, mode: str) -> pd.DataFrame:
    """Warn about, refuse, drop or keep repeated (user, item) events (see :func:`load_amazon`)."""
    if mode == "keep":
        return events
    dup = events.duplicated(["user", "item"], keep="first")
    if not dup.any():
        return events
    if mode == "first":
        return events[~dup]
    rep = events[dup].iloc[0]
    first = events.loc[(events["user"] == rep["user"]) & (events["item"] == rep["item"]), "line"].iloc[0]
    n = int(dup.sum())
    message = (f"{path}:{rep['line']}: user {rep['user']!r} rated item {rep['item']!r} again (first on line "
               f"{first}); {n} repeated (user, item) event(s) in the file")
    if mode == "error":
        raise DataError(message)
    warnings.warn(message + "; all kept (pass duplicates='first' to keep only the first, 'error' to refuse)",
                  UserWarning, stacklevel=3)
    return events


def load_amazon(reviews: str | os.PathLike, metadata: str | os.PathLike | None = None, *,
                image_dir: str | os.PathLike | None = None, drop_root_category: bool = False,
                keep_unreviewed: bool = False, csv_columns: tuple[str, ...] = CSV_2014,
                name: str = "amazon", duplicates: str = "warn") -> Interactions:
    """Amazon reviews (+ metadata) as Interactions.

    ``events``: ``user, item, rating, timestamp``. ``items``: one row per reviewed item
    (all metadata items with ``keep_unreviewed``) with ``title, labels, image_url, path``;
    a reviewed item without metadata keeps empty fields. ``path`` is
    ``image_dir/<item>.jpg`` (or ``.png``) when that file exists, else ``""``.
    ``csv_columns`` is the field order of a ratings-only CSV (2018: :data:`CSV_2018`).

    ``duplicates``: what to do when a user rates one item twice (the same (user, item) on
    two lines; some releases repeat reviews). ``"warn"`` (default) keeps every event and
    emits one ``UserWarning`` naming ``file:line`` of the first repeat, the line it repeats
    and how many repeats there are; ``"error"`` raises DataError naming them instead;
    ``"first"`` keeps only the first event of each pair, silently; ``"keep"`` keeps all,
    silently.
    """
    if duplicates not in DUPLICATE_MODES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_MODES}, got {duplicates!r}")
    events = pd.DataFrame(list(_numbered_reviews(reviews, csv_columns)),
                          columns=["line", "user", "item", "rating", "timestamp"])
    if events.empty:
        raise DataError(f"{reviews}: no reviews")
    events = _handle_duplicates(events, reviews, duplicates).drop(columns="line").reset_index(drop=True)
    reviewed = set(events["item"])
    meta_rows: dict[str, dict[str, str]] = {}
    if metadata is not None:
        for row in iter_metadata(metadata, drop_root_category):
            if keep_unreviewed or row["item"] in reviewed:
                meta_rows.setdefault(row["item"], row)
    order = list(dict.fromkeys(list(events["item"]) + list(meta_rows)))
    empty = {"title": "", "labels": "", "image_url": ""}
    items = pd.DataFrame([{"item": i, **{k: meta_rows.get(i, empty)[k] for k in empty}} for i in order])
    items["path"] = ""
    if image_dir is not None:
        image_dir = as_root(image_dir)
        for suffix in (".png", ".jpg"):
            found = items["item"].map(lambda i, s=suffix: str(image_dir / f"{i}{s}"))
            exists = found.map(lambda p: Path(p).is_file())
            items.loc[exists, "path"] = found[exists]
    meta = {"source": str(reviews), "metadata": str(metadata) if metadata else None, "format": "amazon"}
    return Interactions(name, events, items, meta)
