"""Clickture (MSR-Bing Image Retrieval Challenge): click log, image files and Dev judgments.

Files of the MSR release (Clickture-Lite; Clickture-Full uses the same formats), all
tab-separated UTF-8 text without header, optionally gzip-compressed (``.gz``):

* ``TrainClickLog.tsv`` -- click triads. MSR's order is ``key \\t query \\t clicks``; the
  project's own logs (and the simulator) write ``query \\t key \\t clicks``. Read with
  :func:`iter_click_log` and ``columns=MSR_TRAIN_COLUMNS`` or the default
  ``CLICKTURE_COLUMNS`` (see :mod:`clickvision.click.log`).
* ``TrainImageSet.tsv`` / ``DevSetImage.tsv`` -- one image per line,
  ``key \\t base64-encoded JPEG``. :func:`iter_images` streams them as PIL images,
  :func:`load_clickture_images` decodes them to files and returns an
  :class:`~clickvision.data.base.ImageSet`.
* ``DevSetLabel.tsv`` -- graded judgments of held-out queries, ``query \\t key \\t judgment``
  with judgment ``Excellent`` / ``Good`` / ``Bad``; :func:`read_dev` maps them to the
  relevance 3 / 2 / 0 that paper B's DCG@25 uses (gain ``2^rel - 1``). Integer judgments
  0-3 are accepted too, and a header line naming the columns is skipped.

Every reader streams and names ``file:line`` (and the image key) on bad input.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path

import pandas as pd

from ...click.log import (CLICKTURE_COLUMNS, MSR_TRAIN_COLUMNS, ClickRecord,  # noqa: F401
                          iter_click_log, iter_fields, read_click_log, write_click_log)
from ...io import atomic_write_bytes
from ..base import DataError, ImageSet
from ._common import as_root

JUDGMENT_RELEVANCE: dict[str, int] = {"excellent": 3, "good": 2, "bad": 0}
"""Clickture Dev judgments -> graded relevance (paper B: Excellent = 3, Good = 2, Bad = 0)."""
DEV_COLUMNS: tuple[str, str, str] = ("query", "key", "judgment")
__all__ = ["CLICKTURE_COLUMNS", "MSR_TRAIN_COLUMNS", "DEV_COLUMNS", "JUDGMENT_RELEVANCE", "ClickRecord",
           "iter_click_log", "read_click_log", "write_click_log", "read_dev", "read_dev_set",
           "iter_image_bytes", "iter_images", "image_file_name", "load_clickture_images"]
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=-]{0,150}$")
_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "BMP": ".bmp", "WEBP": ".webp"}


def _relevance(text: str, where: str) -> int:
    s = text.strip()
    if s.lower() in JUDGMENT_RELEVANCE:
        return JUDGMENT_RELEVANCE[s.lower()]
    if s in ("0", "1", "2", "3"):
        return int(s)
    raise DataError(f"{where}: judgment must be Excellent, Good, Bad or 0-3, got {text!r}")


def read_dev(path: str | os.PathLike, columns: Sequence[str] = DEV_COLUMNS) -> pd.DataFrame:
    """Clickture Dev judgments as a DataFrame ``query, key, relevance, judgment``.

    ``columns`` is the field order of the file (default ``query, key, judgment``).
    ``relevance`` is the integer grade (Excellent 3, Good 2, Bad 0); ``judgment`` keeps the
    file's word. A repeated (query, key) pair or a malformed line raises DataError naming
    ``path:line``.
    """
    cols = tuple(columns)
    if len(cols) != 3 or set(cols) != set(DEV_COLUMNS):
        raise ValueError(f"columns must be an ordering of {DEV_COLUMNS}, got {cols!r}")
    iq, ik, ij = (cols.index(c) for c in DEV_COLUMNS)
    path = Path(path)
    rows: list[tuple[str, str, int, str]] = []
    seen: dict[tuple[str, str], int] = {}
    for lineno, fields in iter_fields(path, cols):
        if lineno == 1 and fields[ij].strip().lower() in ("judgment", "judgement", "label", "relevance"):
            continue  # header line
        query, key = fields[iq], fields[ik]
        if not query.strip() or not key.strip():
            raise DataError(f"{path}:{lineno}: empty {'query' if not query.strip() else 'key'}")
        rel = _relevance(fields[ij], f"{path}:{lineno}")
        if (query, key) in seen:
            raise DataError(f"{path}:{lineno}: pair ({query!r}, {key!r}) already judged on line {seen[query, key]}")
        seen[query, key] = lineno
        rows.append((query, key, rel, fields[ij].strip()))
    if not rows:
        raise DataError(f"{path}: no judgments found")
    return pd.DataFrame(rows, columns=["query", "key", "relevance", "judgment"])


def iter_image_bytes(path: str | os.PathLike) -> Iterator[tuple[int, str, bytes]]:
    """Stream ``(line_number, key, raw image bytes)`` from a ``key \\t base64`` image file.

    The payload is base64-decoded but not checked as an image. A line without exactly two
    fields, an empty key or invalid base64 raises DataError naming the file, line and key.
    """
    path = Path(path)
    for lineno, fields in iter_fields(path, ("key", "base64 image")):
        key, payload = fields[0].strip(), fields[1].strip()
        if not key:
            raise DataError(f"{path}:{lineno}: empty image key")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DataError(f"{path}:{lineno}: image {key!r}: corrupt base64 data ({exc})") from exc
        if not data:
            raise DataError(f"{path}:{lineno}: image {key!r}: empty image data")
        yield lineno, key, data


def _decode(data: bytes, where: str, key: str):
    from PIL import Image

    try:
        im = Image.open(io.BytesIO(data))
        im.load()
    except Exception as exc:
        raise DataError(f"{where}: image {key!r}: corrupt or undecodable image data ({exc})") from exc
    return im


def iter_images(path: str | os.PathLike, keys: Collection[str] | None = None) -> Iterator[tuple[str, object]]:
    """Stream ``(key, PIL.Image)`` from a Clickture image file (``key \\t base64 JPEG``).

    ``keys`` restricts decoding to those images (others are skipped unparsed). Corrupt
    base64 or image bytes raise DataError naming the file, line and key.
    """
    path = Path(path)
    for lineno, key, data in iter_image_bytes(path):
        if keys is not None and key not in keys:
            continue
        yield key, _decode(data, f"{path}:{lineno}", key)


def image_file_name(key: str) -> str:
    """A file-system-safe stem for an image key (the key itself when it is already safe)."""
    if _SAFE_NAME.match(key):
        return key
    return "k_" + hashlib.sha1(key.encode("utf-8")).hexdigest()


def load_clickture_images(path: str | os.PathLike, out_dir: str | os.PathLike, *,
                          keys: Collection[str] | None = None,
                          labels: Mapping[str, str] | None = None,
                          split: str = "", name: str = "clickture") -> ImageSet:
    """Decode a Clickture image file into ``out_dir/<key>.<ext>`` and return an ImageSet.

    Each image is decoded with Pillow first (a corrupt one raises DataError naming file,
    line and key) and its original bytes are written atomically; a file already present
    is kept when it holds exactly those bytes (so an interrupted run resumes) and rewritten
    otherwise (a truncated or corrupt earlier copy is never trusted). Two keys that map to
    one output file (e.g. a safe key spelled like another key's hashed name, or keys that
    differ only in case on a case-insensitive file system) raise DataError naming both. ``keys`` restricts the set (e.g. Dev images,
    or the dog images of paper A); ``labels`` maps key -> class name (Clickture itself has
    no labels: the label is ``""`` for keys not in it); ``split`` fills the split column.
    A requested key absent from the file, or a key repeated in it, raises DataError.
    Columns: ``key, path, label, split, width, height``.
    """
    path, out_dir = Path(path), as_root(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    owners: dict[object, tuple[str, int]] = {}  # output file (name, and device+inode) -> (key, line)
    for lineno, key, data in iter_image_bytes(path):
        if keys is not None and key not in keys:
            continue
        if key in seen:
            raise DataError(f"{path}:{lineno}: image key {key!r} repeats line {seen[key]}")
        seen[key] = lineno
        im = _decode(data, f"{path}:{lineno}", key)
        target = out_dir / (image_file_name(key) + _EXTENSIONS.get(im.format or "", ".img"))
        _claim(owners, target.name, target, key, path, lineno)
        _write_verified(target, data)
        st = target.stat()  # a case-insensitive file system or a hard link can still join two names
        _claim(owners, (st.st_dev, st.st_ino), target, key, path, lineno)
        rows.append({"key": key, "path": str(target), "label": (labels or {}).get(key, ""),
                     "split": split, "width": im.width, "height": im.height})
    if keys is not None and len(seen) < len(set(keys)):
        missing = sorted(set(keys) - set(seen))
        raise DataError(f"{path}: {len(missing)} requested image keys not in the file, e.g. {missing[:3]}")
    items = pd.DataFrame(rows, columns=["key", "path", "label", "split", "width", "height"])
    return ImageSet(name, items, {"source": str(path), "format": "clickture-images"})


def _claim(owners: dict, ident, target: Path, key: str, path: Path, lineno: int) -> None:
    """Record that ``key`` owns output file ``ident``; DataError naming both keys if another does."""
    other = owners.setdefault(ident, (key, lineno))
    if other[0] != key:
        raise DataError(f"{path}:{lineno}: image keys {key!r} and {other[0]!r} (line {other[1]}) map to one "
                        f"output file {target}; rename one of them")


def _write_verified(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically unless ``target`` already holds exactly these bytes.

    An existing file of another size or content (an interrupted copy, a truncated or
    corrupt file, another image) is replaced; an intact one is left untouched (resume).
    """
    try:
        if target.stat().st_size == len(data) and target.read_bytes() == data:
            return
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        pass
    atomic_write_bytes(target, data)


def read_dev_set(label_path: str | os.PathLike, image_path: str | os.PathLike,
                 out_dir: str | os.PathLike, name: str = "clickture-dev") -> tuple[pd.DataFrame, ImageSet]:
    """Dev judgments plus their decoded images (``split = "test"``); every judged key must have an image."""
    dev = read_dev(label_path)
    images = load_clickture_images(image_path, out_dir, keys=set(dev["key"]), split="test", name=name)
    return dev, images
