"""Open Clip Art: public-domain clip art with human titles and keyword lists.

Source: Debian ``openclipart-png`` / ``openclipart-svg`` (0.18), installed under
``/usr/share/openclipart/{png,svg}/<category>/.../<name>.{png,svg}`` with the same relative
paths in both trees. Debian symlinks an image that sits in several folders; we resolve
links and hash the real file's bytes, keep one row per distinct image (the *canonical*
copy: the real file, or the first real path when identical bytes appear twice), and list
every folder it appears in. Label = the canonical copy's folder path (e.g. ``food/fruit``);
text = the SVG's ``dc:title`` then its keywords (``dc:subject`` bag); ``labels`` = the
normalised keywords, ``|``-joined (paper D's multi-labels). Real image/text pairs for
paper C, real item-tag data for paper D; there is no popularity data.

Thumbnails (max side 128 px, never enlarged, RGB on white) go to
``data/processed/openclipart/img/<key>.png``. A PNG over ``max_png_pixels`` (17 of them
reach 10,500 x 16,000: Pillow refuses them as decompression bombs, and decoding them
would cost minutes) or one that cannot be decoded is rasterised from its SVG instead at
the thumbnail size with cairosvg; when that fails too the image is skipped with the
reason logged in ``render_log.csv`` and counted in the manifest. Nothing crashes.
"""
from __future__ import annotations

import logging
import os
import struct
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pandas as pd

from .. import paths
from ..io import file_lock
from . import manifest
from .base import ImageSet, MissingSourceError
from .build import (flatten_on_white, images_present, parallel_map, read_table, render_svg, save_png,
                    staged_dir, up_to_date, write_image_index, write_table)
from .splits import DEFAULT_FRACTIONS, grouped_stratified_split

log = logging.getLogger(__name__)

NAME = "openclipart"
SOURCE_ROOT = Path("/usr/share/openclipart")
INSTALL_COMMAND = "sudo apt-get install --no-install-recommends openclipart-png openclipart-svg"
LICENCE = "Public domain (Open Clip Art Library; Debian openclipart 0.18)"
MIN_IMAGES_PER_CLASS = 20
# 'hash' tags 1,795 images, always beside an empty keyword: the export's remnant of '#',
# not a word anyone chose. Dropped from the keywords by default.
DROP_KEYWORDS: tuple[str, ...] = ("hash",)
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
DC = "{http://purl.org/dc/elements/1.1/}"


def png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk without decoding it; None if not a PNG."""
    with open(path, "rb") as fh:
        head = fh.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def normalise_keyword(word: str) -> list[str]:
    """Lower-case, '_' as space, whitespace collapsed; 'rome,italy' gives two keywords."""
    out = []
    for part in word.replace("|", ",").replace(";", ",").split(","):
        part = " ".join(part.replace("_", " ").lower().split())
        if part:
            out.append(part)
    return out


def read_svg_metadata(path: Path, drop_keywords: tuple[str, ...] = DROP_KEYWORDS) -> tuple[str, list[str], str]:
    """``(title, keywords, problem)`` from an SVG's RDF metadata (the first ``cc:Work``).

    Parses incrementally and stops at the end of the first Work element, so the drawing
    itself is never read. Missing file, malformed XML or no metadata give empty values and
    a one-line ``problem`` (never an exception): metadata is optional text.
    """
    try:
        with open(path, "rb") as fh:
            return _first_work(fh, drop_keywords)
    except FileNotFoundError:
        return "", [], f"missing SVG {path}"
    except ET.ParseError as exc:
        return "", [], f"malformed SVG {path}: {exc}"


def _first_work(fh, drop_keywords: tuple[str, ...]) -> tuple[str, list[str], str]:
    """Title and keywords of the first ``Work`` element met while parsing ``fh``."""
    for _event, el in ET.iterparse(fh, events=("end",)):
        if el.tag.rsplit("}", 1)[-1] != "Work":
            continue
        t = el.find(DC + "title")
        title = " ".join((t.text or "").split()) if t is not None else ""
        keywords: list[str] = []
        subject = el.find(DC + "subject")
        if subject is not None:
            for li in list(subject.iter(RDF + "li")) or [subject]:
                for k in normalise_keyword(li.text or ""):
                    if k not in drop_keywords and k not in keywords:
                        keywords.append(k)
        return title, keywords, ""
    return "", [], "no cc:Work metadata"


def scan_tree(png_root: Path) -> pd.DataFrame:
    """Every ``*.png`` under ``png_root`` (links included): rel path, real file, content hash."""
    rows = []
    digests: dict[str, str] = {}
    for dirpath, _dirs, files in os.walk(png_root):
        for f in files:
            if not f.lower().endswith(".png"):
                continue
            p = Path(dirpath) / f
            real = os.path.realpath(p)
            if not os.path.isfile(real):
                log.warning("openclipart: dangling link %s skipped", p)
                continue
            if real not in digests:
                digests[real] = manifest.sha256_file(real)
            rows.append({"rel": p.relative_to(png_root).as_posix(), "real": real, "is_link": p.is_symlink(),
                         "sha256": digests[real]})
    if not rows:
        raise MissingSourceError(f"no PNG under {png_root}: install with `{INSTALL_COMMAND}`")
    return pd.DataFrame(rows).sort_values("rel", kind="stable").reset_index(drop=True)


def deduplicate(tree: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct content: the canonical copy (a real file, first by path) and
    ``folders`` = every folder holding a copy ('|'-joined, sorted), ``n_copies``."""
    tree = tree.assign(folder=[str(Path(r).parent) if "/" in r else "(root)" for r in tree.rel])
    ordered = tree.sort_values(["sha256", "is_link", "rel"], kind="stable")
    canon = ordered.drop_duplicates("sha256").set_index("sha256")
    grouped = tree.groupby("sha256")
    canon["folders"] = grouped["folder"].agg(lambda s: "|".join(sorted(set(s))))
    canon["n_copies"] = grouped.size()
    return canon.reset_index().sort_values("rel", kind="stable").reset_index(drop=True)


def _thumbnail_job(job: tuple[str, str, str, int, int, tuple[str, ...]]) -> dict[str, Any]:
    """Thumbnail one image (PNG, else its SVG) and read its SVG metadata; never raises."""
    from PIL import Image

    src_png, src_svg, dst, size, max_pixels, drop = job
    title, keywords, meta_problem = read_svg_metadata(Path(src_svg), drop)
    result: dict[str, Any] = {"title": title, "keywords": keywords, "meta_problem": meta_problem,
                              "route": "png", "reason": ""}
    dims = png_size(Path(src_png))
    if dims is None:
        result.update(route="svg", reason="not a PNG file (bad signature)")
    elif dims[0] * dims[1] > max_pixels:
        result.update(route="svg", reason=f"PNG {dims[0]}x{dims[1]} over {max_pixels} pixels")
    else:
        try:
            with Image.open(src_png) as im:
                if im.mode not in ("RGB", "RGBA", "L", "LA") or "transparency" in im.info:
                    im = im.convert("RGBA")  # palette images would be resized with NEAREST
                im.thumbnail((size, size), Image.Resampling.LANCZOS)  # RGBA: resized premultiplied
                save_png(flatten_on_white(im), Path(dst))
            return result
        except Exception as exc:  # noqa: BLE001 - corrupt input of any kind: fall back
            result.update(route="svg", reason=f"unreadable PNG: {type(exc).__name__}: {exc}"[:200])
    try:
        w, h = dims if dims and min(dims) > 0 else (size, size)
        scale = min(1.0, size / max(w, h))  # same size as the PNG route: never enlarged
        save_png(render_svg(Path(src_svg), max(1, round(w * scale)), max(1, round(h * scale))), Path(dst))
    except Exception as exc:  # noqa: BLE001
        result.update(route="skipped", reason=f"{result['reason']}; SVG failed: {type(exc).__name__}: {exc}"[:300])
    return result




def build(force: bool = False, *, source_root: Path | None = None, out_dir: Path | None = None, size: int = 128,
          max_png_pixels: int = 20_000_000, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS, seed: int = 0,
          min_images_per_class: int = MIN_IMAGES_PER_CLASS, drop_keywords: tuple[str, ...] = DROP_KEYWORDS,
          workers: int | None = None) -> dict[str, Any]:
    """Build ``data/processed/openclipart`` (table, thumbnails, render log) and its manifest entry.

    ``source_root`` holds ``png/`` and ``svg/`` (default: the Debian install). Splits are
    per class (folder), seeded; ``min_images_per_class`` chooses the *default* class set
    reported in the manifest (the table keeps every class; the loader filters).
    """
    source_root = Path(source_root or SOURCE_ROOT)
    out_dir = Path(out_dir or paths.PROCESSED_DIR / NAME)
    png_root, svg_root = source_root / "png", source_root / "svg"
    if not png_root.is_dir() or not svg_root.is_dir():
        raise MissingSourceError(f"Open Clip Art not found under {source_root} (need png/ and svg/): "
                                 f"install it with `{INSTALL_COMMAND}`")
    params = {"size": size, "max_png_pixels": max_png_pixels, "fractions": list(fractions), "seed": seed,
              "min_images_per_class": min_images_per_class, "drop_keywords": list(drop_keywords)}
    with file_lock(out_dir.parent / f".{NAME}.build"):
        if not force and (entry := up_to_date(NAME, params, out_dir)):
            return entry
        start = time.perf_counter()
        tree = scan_tree(png_root)
        canon = deduplicate(tree)
        canon["key"] = canon.rel.str.removesuffix(".png")
        canon["path"] = "img/" + canon.rel
        with staged_dir(out_dir / "img") as stage:
            jobs = [(r.real, str(svg_root / (r.key + ".svg")), str(stage / r.rel), size, max_png_pixels,
                     tuple(drop_keywords)) for r in canon.itertuples()]
            results = pd.DataFrame(parallel_map(_thumbnail_job, jobs, workers), index=canon.index)
        canon = canon.join(results)
        for r in canon[canon.route != "png"].itertuples():
            log.warning("openclipart: %s -> %s (%s)", r.rel, r.route, r.reason)
        log_rows = canon[(canon.route != "png") | (canon.meta_problem != "")]
        artifacts = [write_table(log_rows[["rel", "route", "reason", "meta_problem"]], out_dir / "render_log.csv")]
        items = canon[canon.route != "skipped"].copy()
        items["label"] = items["folder"]
        items["group"] = [f.split("/")[0] for f in items.folder]
        items["domain"] = NAME
        items["concept"] = items.sha256.str[:16]
        items["labels"] = ["|".join(k) for k in items.keywords]
        items["text"] = [", ".join(dict.fromkeys([t.lower(), *k] if t else k))
                         for t, k in zip(items.title, items.keywords)]
        items["source_png"] = items.rel
        items["split"] = grouped_stratified_split(items["label"], items["concept"], fractions, seed)
        items = items[["key", "path", "label", "group", "domain", "concept", "title", "text", "labels", "folders",
                       "n_copies", "source_png", "split"]].reset_index(drop=True)
        artifacts += [write_table(items, out_dir / "items.csv"), write_image_index(out_dir, items["path"])]
        sizes = items.label.value_counts()
        kept = sizes[sizes >= min_images_per_class]
        routes = canon.route.value_counts()
        entry = {
            "source": f"Debian openclipart-png {manifest.debian_version('openclipart-png')}, "
                      f"openclipart-svg {manifest.debian_version('openclipart-svg')}",
            "version": "0.18", "licence": LICENCE, "simulated": False, "committed": False,
            "counts": {"png_paths": int(len(tree)), "links": int(tree.is_link.sum()), "unique_images": int(len(canon)),
                       "images": int(len(items)), "classes": int(sizes.size), "kept_classes": int(kept.size),
                       "kept_images": int(kept.sum()), "from_png": int(routes.get("png", 0)),
                       "from_svg": int(routes.get("svg", 0)), "skipped": int(routes.get("skipped", 0)),
                       "with_title": int((items.title != "").sum()), "with_keywords": int((items.labels != "").sum()),
                       "share_with_title": round(float((items.title != "").mean()), 4),
                       "share_with_keywords": round(float((items.labels != "").mean()), 4),
                       "metadata_problems": int((canon.meta_problem != "").sum()),
                       "images_per_class": {k: int(v) for k, v in sizes.sort_index().items()}},
            "params": params, "sources": {"png": str(png_root), "svg": str(svg_root)},
            "notes": "One row per distinct PNG content; label = folder of the canonical copy; thumbnails max side "
                     f"{size} px; PNGs over max_png_pixels or undecodable are rasterised from the SVG "
                     "(render_log.csv); kept_* = classes with >= min_images_per_class images.",
        }
        return manifest.record_build(NAME, entry, artifacts)


def load_openclipart(min_images_per_class: int = MIN_IMAGES_PER_CLASS, label_depth: int | None = None,
                     out_dir: Path | None = None) -> ImageSet:
    """The built Open Clip Art set as an :class:`ImageSet` (one row per distinct image).

    ``label_depth`` truncates folder labels to their first levels (1: ``food/fruit`` ->
    ``food``) before ``min_images_per_class`` is applied; splits were stratified by the
    full folder, so merged classes stay stratified within a few images.
    """
    if label_depth is not None and (not isinstance(label_depth, int) or label_depth < 1):
        raise ValueError(f"label_depth must be a positive integer or None, got {label_depth!r}")
    out_dir = Path(out_dir or paths.PROCESSED_DIR / NAME)
    items = read_table(out_dir / "items.csv", NAME)
    if label_depth is not None:
        items["label"] = ["/".join(lbl.split("/")[:label_depth]) for lbl in items["label"]]
    sizes = items["label"].value_counts()
    items = items[items["label"].isin(sizes[sizes >= int(min_images_per_class)].index)].reset_index(drop=True)
    items["path"] = [str(out_dir / p) for p in items["path"]]
    items["n_copies"] = items["n_copies"].astype(int)
    meta = {"min_images_per_class": min_images_per_class, "label_depth": label_depth, "licence": LICENCE,
            "images_present": images_present(out_dir)}
    return ImageSet(NAME, items, meta)
