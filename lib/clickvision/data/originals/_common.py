"""Helpers shared by the loaders of the original data sets (not public API).

Deterministic splitting: items are ordered by a hash of ``(seed, key)``, so the split of an
item depends only on its key, its class and the seed, never on file order or platform.
"""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from ...click.log import iter_lines
from ..base import DataError, MissingSourceError

VERIFY_MODES = ("none", "exists", "decode")


def as_root(path: str | os.PathLike) -> Path:
    """A user-given folder as an absolute path (so item paths do not depend on the cwd)."""
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def confined(base: Path, rel: str, where: str) -> Path:
    """``base / rel`` when ``rel`` is a relative path that stays inside ``base``.

    An absolute path, a drive, or ``..`` parts that climb out of ``base`` raise DataError at
    ``where`` (``file:line``): a table of a data set may only name files of that data set.
    The check is on the path as written (normalised, not resolved through symbolic links:
    a data set may be a farm of links into shared storage).
    """
    text = str(rel)
    if not text or os.path.isabs(text) or text.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", text):
        raise DataError(f"{where}: path {text!r} is absolute; it must be relative to {base} (it leads outside it)")
    base_norm = os.path.normpath(os.fspath(base))
    full = os.path.normpath(os.path.join(base_norm, text))
    if full == base_norm or not full.startswith(base_norm.rstrip(os.sep) + os.sep):
        raise DataError(f"{where}: path {text!r} leads outside {base}")
    return Path(full)


def require(path: Path, dataset: str, how: str) -> Path:
    """``path`` if it exists, else MissingSourceError naming it and saying how to get it."""
    if not path.exists():
        raise MissingSourceError(f"{dataset}: {path} not found. {how}")
    return path


def hash_order(keys: Iterable[str], seed: int) -> list[str]:
    """``keys`` sorted by sha1(seed:key): a seeded shuffle independent of input order."""
    return sorted(keys, key=lambda k: hashlib.sha1(f"{seed}:{k}".encode()).hexdigest())


def assign_splits(items: pd.DataFrame, fractions: tuple[float, float, float], seed: int,
                  by: str = "label") -> pd.Series:
    """Stratified train/val/test assignment: per class, ``round(n * f)`` val and test items.

    ``fractions`` = (train, val, test), summing to 1. Returns a Series aligned with ``items``.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {fractions!r}")
    _, f_val, f_test = fractions
    split = pd.Series("train", index=items.index, dtype=object)
    for _, group in items.groupby(by, sort=True):
        order = hash_order(group["key"], seed)
        n_val, n_test = round(len(order) * f_val), round(len(order) * f_test)
        index = dict(zip(group["key"], group.index))
        for k in order[:n_val]:
            split[index[k]] = "val"
        for k in order[n_val:n_val + n_test]:
            split[index[k]] = "test"
    return split


def carve_validation(items: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    """Move ``round(n * fraction)`` train items of each class to ``split = "val"`` (stratified)."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {fraction!r}")
    if fraction == 0.0:
        return items
    items = items.copy()
    train = items[items["split"] == "train"]
    for _, group in train.groupby("label", sort=True):
        order = hash_order(group["key"], seed)
        chosen = set(order[:round(len(order) * fraction)])
        items.loc[group.index[group["key"].isin(chosen)], "split"] = "val"
    return items


def check_images(paths: Iterable[str | os.PathLike], verify: str) -> None:
    """Check image files: ``"exists"`` (stat only), ``"decode"`` (Pillow verifies each) or ``"none"``.

    The first missing or corrupt file raises DataError naming it.
    """
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
    if verify == "none":
        return
    for p in paths:
        p = Path(p)
        if not p.is_file():
            raise DataError(f"missing image file: {p}")
        if verify == "decode":
            verify_image(p)


def verify_image(path: Path) -> None:
    """Decode ``path`` fully with Pillow; DataError naming it when it is not a readable image."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
    except Exception as exc:
        raise DataError(f"corrupt or unreadable image file: {path} ({exc})") from exc


def iter_fields(path: Path, n_fields: int | None = None, sep: str | None = None,
                min_fields: int | None = None) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` of a whitespace- (or ``sep``-) separated text table.

    Blank lines are skipped. A line with a wrong field count raises DataError naming
    ``path:line``. With ``sep=None`` fields are split on runs of whitespace.
    """
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        fields = line.split(sep) if sep is not None else line.split()
        if n_fields is not None and len(fields) != n_fields:
            raise DataError(f"{path}:{lineno}: expected {n_fields} fields, found {len(fields)}")
        if min_fields is not None and len(fields) < min_fields:
            raise DataError(f"{path}:{lineno}: expected at least {min_fields} fields, found {len(fields)}")
        yield lineno, fields


def parse_int(text: str, where: str, what: str) -> int:
    """An integer field, or DataError ``where: what must be an integer``."""
    try:
        return int(text)
    except ValueError:
        raise DataError(f"{where}: {what} must be an integer, got {text!r}") from None


def parse_float(text: str, where: str, what: str) -> float:
    """A float field, or DataError ``where: what must be a number``."""
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{where}: {what} must be a number, got {text!r}") from None
