"""Emoji across vendors: one Unicode concept drawn by Google, Twitter and OpenMoji.

The same concept in different styles is a real domain shift with shared labels (paper A's
source vs target domain); Unicode subgroups are the fine-grained classes, Unicode groups
the coarse "objects"; CLDR names, short names and OpenMoji annotations/tags are real human
text (paper C's image/text pairs).

Sources (npm, fetched with ``npm pack`` into ``data/raw/npm``; only what is needed is
extracted into ``data/raw/emoji``): ``emoji-datasource-google`` 16.0.0 (images
Apache-2.0), ``emoji-datasource-twitter`` 16.0.0 (images CC-BY-4.0), ``openmoji`` 17.0.0
(CC BY-SA 4.0: rendered here at build time, never committed). Facebook's and Apple's
images are never used (no clear reuse licence). Every image is written as a 64 px RGB PNG
on white to ``data/processed/emoji/img/<vendor>/<unified>.png``; the table is
``data/processed/emoji/items.csv`` with one row per (concept, vendor): ``label`` = Unicode
subgroup (emoji-datasource's ``subcategory``, for every vendor), ``group`` = Unicode
group, ``domain`` = vendor, ``concept`` = the unified codepoint id (the twin id), ``text``
= CLDR name, short names, OpenMoji annotation and tags (it describes the concept, so it is
the same on every vendor's row), ``split`` (grouped by concept: no twin leaks).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from .. import paths
from ..io import file_lock
from . import manifest
from .base import DataError, ImageSet, MissingSourceError
from .build import (damaged_images, flatten_on_white, images_present, parallel_map, read_table, render_svg,
                    save_png, staged_dir, up_to_date, write_image_index, write_table)
from .splits import DEFAULT_FRACTIONS, grouped_stratified_split

NAME = "emoji"
VENDORS: tuple[str, ...] = ("google", "twitter", "openmoji")
PACKAGES: dict[str, tuple[str, str]] = {
    "google": ("emoji-datasource-google", "16.0.0"),
    "twitter": ("emoji-datasource-twitter", "16.0.0"),
    "openmoji": ("openmoji", "17.0.0"),
}
LICENCES: dict[str, str] = {
    "google": "Apache-2.0 (Noto emoji images); emoji.json MIT",
    "twitter": "CC-BY-4.0 (Twemoji images); emoji.json MIT",
    "openmoji": "CC BY-SA 4.0 (share-alike: renders are built locally, never committed)",
}
# Vendors whose drawings are share-alike: rendered locally, never drawn in a committed figure
# or notebook output (the repository is MIT; see DATA-LICENSES.md).
SHARE_ALIKE: frozenset[str] = frozenset({"openmoji"})
# 259 country flags are near-identical rectangles that differ only in colour stripes: as
# one subgroup they would be the largest class by far (18 % of all base emoji) and a
# trivially recognisable one, dominating accuracy. Excluded by default; pass () to keep.
EXCLUDED_CLASSES: tuple[str, ...] = ("country-flag",)
MIN_CONCEPTS_PER_CLASS = 15


def npm_command(vendor: str, npm_dir: Path | None = None) -> str:
    """The shell command that fetches ``vendor``'s package tarball."""
    package, version = PACKAGES[vendor]
    return f"cd {npm_dir or paths.RAW_DIR / 'npm'} && npm pack {package}@{version}"


def fetch_npm_tarball(vendor: str, npm_dir: Path | None = None) -> Path:
    """``npm pack`` the vendor's package into ``npm_dir`` (kept: a later build reuses it)."""
    package, version = PACKAGES[vendor]
    npm_dir = Path(npm_dir or paths.RAW_DIR / "npm")
    tarball = npm_dir / f"{package}-{version}.tgz"
    if tarball.exists():
        return tarball
    npm = shutil.which("npm")
    if npm is None:
        raise MissingSourceError(f"npm is not installed; install Node.js/npm, then run: {npm_command(vendor, npm_dir)}")
    npm_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".npm-pack-", dir=npm_dir) as tmp:  # no partial .tgz left
        try:
            proc = subprocess.run([npm, "pack", f"{package}@{version}", "--silent"], cwd=tmp,
                                  capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired as exc:
            raise MissingSourceError(f"`npm pack {package}@{version}` timed out after 600 s (registry unreachable?); "
                                     f"get it with: {npm_command(vendor, npm_dir)}") from exc
        packed = Path(tmp) / tarball.name
        if proc.returncode != 0 or not packed.exists():
            raise MissingSourceError(f"`npm pack {package}@{version}` failed (exit {proc.returncode}): "
                                     f"{proc.stderr.strip()[-400:]}\nGet it with: {npm_command(vendor, npm_dir)}")
        os.replace(packed, tarball)
    return tarball


def _hex_key(code: str) -> str:
    """A codepoint sequence without variation selector 16 (FE0F), for cross-package matching."""
    return "-".join(p for p in code.upper().split("-") if p != "FE0F")


def extract_package(tarball: Path, dest: Path, want: Callable[[str, dict | None], bool]) -> Path:
    """Extract the members ``want`` selects, in one streaming pass over the tarball.

    ``want(name, None)`` picks the candidates read into memory; ``want(name, members)``
    then decides, knowing every candidate (so metadata can choose the images); the chosen
    files replace ``dest`` as a whole (see :func:`~clickvision.data.build.staged_dir`).
    Returns ``dest / "package"``. A corrupt tarball raises DataError naming it.
    """
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for member in tar:
                if member.isfile() and want(member.name, None):
                    members[member.name] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"corrupt npm tarball {tarball}: {exc}; delete it and rebuild") from exc
    with staged_dir(dest) as stage:
        for name, data in members.items():
            if want(name, members):
                if ".." in Path(name).parts or Path(name).is_absolute():
                    raise DataError(f"unsafe member {name!r} in {tarball}")
                (stage / name).parent.mkdir(parents=True, exist_ok=True)
                (stage / name).write_bytes(data)
    return dest / "package"


def _extract_vendor(vendor: str, tarball: Path, dest: Path, base: set[str] | None) -> Path:
    """Extract the metadata, licence and base-emoji images of one vendor's package."""
    if vendor == "openmoji":
        svg_prefix = "package/color/svg/"

        def want(name: str, got: dict | None) -> bool:
            if name in ("package/data/openmoji.json", "package/LICENSE.txt", "package/package.json"):
                return True
            return name.startswith(svg_prefix) and (got is None or _hex_key(Path(name).stem) in base)
    else:
        img_prefix = f"package/img/{vendor}/64/"
        base_images: set[str] = set()

        def want(name: str, got: dict | None) -> bool:
            if name in ("package/emoji.json", "package/LICENSE", "package/package.json"):
                return True
            if not name.startswith(img_prefix):
                return False
            if got is None:
                return True
            if not base_images:  # parsed once, on the second pass
                try:
                    base_images.update(r["image"] for r in json.loads(got["package/emoji.json"]))
                except (KeyError, TypeError, json.JSONDecodeError) as exc:
                    raise DataError(f"{tarball}: package/emoji.json missing or malformed ({exc!r})") from exc
            return Path(name).name in base_images
    return extract_package(tarball, dest, want)


def read_datasource(package_root: Path, vendor: str) -> pd.DataFrame:
    """Base emoji (no skin variations) of an ``emoji-datasource-<vendor>`` package with images."""
    path = Path(package_root) / "emoji.json"
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MissingSourceError(f"{path} missing: run `python -m clickvision.data build --only emoji`") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} line {exc.lineno}: not valid JSON ({exc.msg})") from exc
    out = []
    for i, r in enumerate(rows):
        missing = [k for k in ("unified", "name", "image", "category", "subcategory") if not r.get(k)]
        if missing:
            raise DataError(f"{path}: entry {i} lacks {missing}")
        if r.get(f"has_img_{vendor}", True):
            out.append({"unified": r["unified"].upper(), "name": r["name"], "image": r["image"],
                        "short_names": "|".join(r.get("short_names") or []), "group": r["category"],
                        "label": r["subcategory"], "sort_order": int(r.get("sort_order", i))})
    return pd.DataFrame(out)


def read_openmoji(package_root: Path) -> pd.DataFrame:
    """``data/openmoji.json``: hexcode, annotation, tags, openmoji_tags (base entries only)."""
    path = Path(package_root) / "data" / "openmoji.json"
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MissingSourceError(f"{path} missing: run `python -m clickvision.data build --only emoji`") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} line {exc.lineno}: not valid JSON ({exc.msg})") from exc
    keep = [{k: str(r.get(k) or "") for k in ("hexcode", "annotation", "tags", "openmoji_tags")}
            for r in rows if r.get("hexcode") and not r.get("skintone")]
    return pd.DataFrame(keep, columns=["hexcode", "annotation", "tags", "openmoji_tags"])


def concept_text(name: str, short_names: str, annotation: str = "", tags: str = "", openmoji_tags: str = "") -> str:
    """CLDR name, short names, then OpenMoji annotation and tags: unique lower-case phrases."""
    phrases = [name, *short_names.split("|"), annotation, *tags.split(","), *openmoji_tags.split(",")]
    seen: dict[str, None] = {}
    for p in phrases:
        p = " ".join(p.replace("_", " ").lower().split())
        if p:
            seen.setdefault(p, None)
    return ", ".join(seen)


def _copy_png_job(job: tuple[str, str, int]) -> None:
    from PIL import Image

    src, dst, size = job
    try:
        with Image.open(src) as im:
            im = flatten_on_white(im)
    except Exception as exc:  # noqa: BLE001 - any decode failure is bad input, named here
        raise DataError(f"corrupt or unreadable emoji image {src}: {exc}") from exc
    if im.size != (size, size):
        im = im.resize((size, size), resample=Image.Resampling.LANCZOS)
    save_png(im, Path(dst))


def _render_svg_job(job: tuple[str, str, int]) -> None:
    src, dst, size = job
    try:
        im = render_svg(Path(src), size, size)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot render OpenMoji SVG {src}: {exc}") from exc
    save_png(im, Path(dst))


def build(force: bool = False, *, package_roots: dict[str, Path] | None = None, out_dir: Path | None = None,
          raw_dir: Path | None = None, size: int = 64, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
          seed: int = 0, min_concepts_per_class: int = MIN_CONCEPTS_PER_CLASS,
          exclude_classes: tuple[str, ...] = EXCLUDED_CLASSES, workers: int | None = None) -> dict[str, Any]:
    """Build ``data/processed/emoji`` (all base emoji, all three vendors) and its manifest entry.

    ``package_roots`` maps vendor -> an extracted package folder (the ``package/`` of the
    npm tarball, e.g. a test fixture); by default the packages are fetched with npm.
    Splits are per class, grouped by concept (every vendor's drawing of an emoji in one
    split), seeded. ``min_concepts_per_class`` and ``exclude_classes`` choose the *default*
    class set reported in the manifest; the table keeps every class (the loader filters).
    """
    out_dir = Path(out_dir or paths.PROCESSED_DIR / NAME)
    raw_dir = Path(raw_dir or paths.RAW_DIR)
    params = {"vendors": list(VENDORS), "size": size, "fractions": list(fractions), "seed": seed,
              "min_concepts_per_class": min_concepts_per_class, "exclude_classes": list(exclude_classes),
              "packages": {v: f"{p}@{ver}" for v, (p, ver) in PACKAGES.items()}}
    with file_lock(out_dir.parent / f".{NAME}.build"):
        def repair(rels: list[str]) -> bool:  # rebuild only the damaged images, from the same sources
            roots, _ = _package_roots(package_roots, raw_dir)
            jobs, _ = _plan(_concept_table(roots), roots)
            return _repair_images(out_dir, rels, jobs, size, workers)

        if not force and (entry := up_to_date(NAME, params, out_dir, repair=repair)):
            return entry
        start = time.perf_counter()
        roots, sources = _package_roots(package_roots, raw_dir)
        table = _concept_table(roots)
        jobs, rows = _plan(table, roots)
        with staged_dir(out_dir / "img") as stage:
            parallel_map(_copy_png_job, [(s, str(stage / n), size) for k, s, n in jobs if k == "png"], workers)
            parallel_map(_render_svg_job, [(s, str(stage / n), size) for k, s, n in jobs if k == "svg"], workers)
        items = pd.DataFrame(rows)
        items["split"] = grouped_stratified_split(items["label"], items["concept"], fractions, seed)
        items = items.sort_values(["domain", "sort_order"], kind="stable").reset_index(drop=True)
        artifacts = [write_table(items, out_dir / "items.csv"), write_image_index(out_dir, items["path"])]
        kept = filter_classes(items, min_concepts_per_class, exclude_classes)
        entry = {
            "source": ", ".join(f"npm {p} {v}" for p, v in PACKAGES.values()),
            "version": ", ".join(f"{p}@{v}" for p, v in PACKAGES.values()),
            "licence": "; ".join(f"{v}: {LICENCES[v]}" for v in VENDORS), "simulated": False, "committed": False,
            "counts": _counts(items, kept),
            "params": params,
            "sources": {v: sources.get(v, manifest._rel(roots[v])) for v in VENDORS},
            "notes": "Base emoji only (no skin tones). Images are 64 px RGB PNG on white. "
                     "Label = emoji-datasource subcategory for every vendor; kept_* = default class set.",
        }
        return manifest.record_build(NAME, entry, artifacts)


def _package_roots(package_roots: dict[str, Path] | None, raw_dir: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Each vendor's extracted package folder (given, or fetched with npm and extracted), and
    ``{vendor: "<tarball> sha256:<digest>"}`` for the fetched ones."""
    sources: dict[str, str] = {}
    roots = dict(package_roots or {})
    for vendor in ("google", "twitter", "openmoji"):  # openmoji needs the base set first
        if vendor in roots:
            continue
        tarball = fetch_npm_tarball(vendor, raw_dir / "npm")
        sources[vendor] = f"{tarball.name} sha256:{manifest.sha256_file(tarball)}"
        base = None
        if vendor == "openmoji":
            base = {_hex_key(u) for u in read_datasource(roots["google"], "google").unified}
        package, version = PACKAGES[vendor]
        roots[vendor] = _extract_vendor(vendor, tarball, raw_dir / NAME / f"{package}-{version}", base)
    return roots, sources


def _plan(table: pd.DataFrame, roots: dict[str, Path]) -> tuple[list[tuple[str, str, str]], list[dict[str, Any]]]:
    """The image jobs ``(kind "png"/"svg", source file, path under img/)`` and the item rows."""
    jobs: list[tuple[str, str, str]] = []
    rows = []
    for vendor in VENDORS:
        for r in table.itertuples():
            name = f"{vendor}/{r.unified.lower()}.png"
            if vendor == "openmoji":
                src = Path(roots["openmoji"]) / "color" / "svg" / f"{r.hexcode}.svg"
            else:
                src = Path(roots[vendor]) / "img" / vendor / "64" / r.image
            if not src.exists():
                raise MissingSourceError(f"{src} missing from the {vendor} package: "
                                         f"rebuild with `python -m clickvision.data build --only emoji --force`")
            jobs.append(("svg" if vendor == "openmoji" else "png", str(src), name))
            rows.append({"key": f"{vendor}:{r.unified}", "path": f"img/{name}", "label": r.label,
                         "group": r.group, "domain": vendor, "concept": r.unified, "text": r.text,
                         "name": r.name, "sort_order": r.sort_order})
    return jobs, rows


def _repair_images(out_dir: Path, rels: list[str], jobs: list[tuple[str, str, str]], size: int,
                   workers: int | None) -> bool:
    """Re-render the images ``rels`` (paths under ``out_dir``) in place, each replaced atomically.

    False (nothing written) when a path is not one the sources produce: a full build follows.
    """
    by_rel = {f"img/{name}": (kind, src) for kind, src, name in jobs}
    if any(rel not in by_rel for rel in rels):
        return False
    temps = {rel: out_dir / Path(rel).parent / f".{Path(rel).name}.repair-{os.getpid()}" for rel in rels}
    try:
        for kind, job in (("png", _copy_png_job), ("svg", _render_svg_job)):
            parallel_map(job, [(by_rel[rel][1], str(tmp), size) for rel, tmp in temps.items()
                               if by_rel[rel][0] == kind], workers)
        for rel, tmp in temps.items():
            os.replace(tmp, out_dir / rel)
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
    return True


def _counts(items: pd.DataFrame, kept: pd.DataFrame) -> dict[str, Any]:
    """Manifest counts: everything built, and the default class set (``kept``)."""
    per_concept = kept.drop_duplicates("concept")

    def tally(column: pd.Series) -> dict[str, int]:
        return {str(k): int(v) for k, v in column.value_counts().sort_index().items()}

    return {"concepts": int(items.concept.nunique()), "images": int(len(items)), "classes": int(items.label.nunique()),
            "kept_concepts": int(len(per_concept)), "kept_images": int(len(kept)),
            "kept_classes": int(kept.label.nunique()), "images_per_vendor": tally(items.domain),
            "kept_concepts_per_class": tally(per_concept.label), "kept_concepts_per_split": tally(per_concept.split)}


def _concept_table(roots: dict[str, Path]) -> pd.DataFrame:
    """One row per base emoji present in every vendor, with its OpenMoji hexcode and text."""
    google = read_datasource(roots["google"], "google")
    twitter = set(read_datasource(roots["twitter"], "twitter").unified)
    table = google[google.unified.isin(twitter)].copy()
    om = read_openmoji(roots["openmoji"])
    exact = dict(zip(om.hexcode.str.upper(), om.index))
    loose = dict(zip(om.hexcode.map(_hex_key)[::-1], om.index[::-1]))  # first entry wins
    idx = [exact.get(u, loose.get(_hex_key(u))) for u in table.unified]
    table["om"] = idx
    table = table[table.om.notna()].copy()
    omr = om.loc[table.om.astype(int)].reset_index(drop=True)
    table = table.reset_index(drop=True)
    table["hexcode"] = omr.hexcode
    table["text"] = [concept_text(t.name, t.short_names, o.annotation, o.tags, o.openmoji_tags)
                     for t, o in zip(table.itertuples(), omr.itertuples())]
    return table.drop(columns="om")


def filter_classes(items: pd.DataFrame, min_concepts_per_class: int = MIN_CONCEPTS_PER_CLASS,
                   exclude_classes: tuple[str, ...] = EXCLUDED_CLASSES) -> pd.DataFrame:
    """Rows of classes with at least ``min_concepts_per_class`` concepts, minus ``exclude_classes``."""
    n = items.groupby("label")["concept"].nunique()
    keep = set(n[n >= int(min_concepts_per_class)].index) - set(exclude_classes)
    return items[items["label"].isin(keep)].reset_index(drop=True)


LOAD_CHECKS = ("none", "size", "sha256", "decode")


def load_emoji(vendors: tuple[str, ...] | list[str] = VENDORS, min_concepts_per_class: int = MIN_CONCEPTS_PER_CLASS,
               exclude_classes: tuple[str, ...] = EXCLUDED_CLASSES, out_dir: Path | None = None,
               verify: str = "size") -> ImageSet:
    """The built emoji set as an :class:`ImageSet` (``domain`` = vendor, ``concept`` = twin id).

    Class sizes count concepts (an emoji drawn by three vendors counts once).
    ``verify`` checks the selected images against the build's image index first:
    ``"size"`` (default; one ``stat`` each: present, with the recorded byte size),
    ``"sha256"`` (re-hashes each), ``"decode"`` (size, then Pillow decodes each) or
    ``"none"``. A damaged image raises DataError naming the file(s) and the command that
    rebuilds them; :meth:`ImageSet.load_image` names any file it cannot decode.
    """
    bad = [v for v in vendors if v not in VENDORS]
    if bad or not vendors:
        raise ValueError(f"vendors must be a non-empty subset of {VENDORS}, got {list(vendors)}")
    if verify not in LOAD_CHECKS:
        raise ValueError(f"verify must be one of {LOAD_CHECKS}, got {verify!r}")
    out_dir = Path(out_dir or paths.PROCESSED_DIR / NAME)
    items = read_table(out_dir / "items.csv", NAME)
    items = items[items["domain"].isin(list(vendors))]
    items = filter_classes(items, min_concepts_per_class, exclude_classes)
    if verify != "none":
        _check_images(out_dir, list(items["path"]), verify)
    items["path"] = [str(out_dir / p) for p in items["path"]]
    items["sort_order"] = items["sort_order"].astype(int)
    meta = {"vendors": list(vendors), "min_concepts_per_class": min_concepts_per_class,
            "exclude_classes": list(exclude_classes), "licences": {v: LICENCES[v] for v in vendors},
            "images_present": images_present(out_dir)}
    return ImageSet(NAME, items, meta)


def _check_images(out_dir: Path, rels: list[str], verify: str) -> None:
    """DataError naming every damaged image among ``rels`` (see :func:`load_emoji`'s ``verify``)."""
    damaged = damaged_images(out_dir, verify=verify == "sha256", only=rels)
    if verify == "decode" and not damaged:
        from PIL import Image

        for rel in rels:
            try:
                with Image.open(out_dir / rel) as im:
                    im.load()
            except Exception as exc:  # noqa: BLE001 - any decode failure is a damaged file, named here
                damaged.append((rel, f"cannot be decoded ({exc})"))
    if damaged:
        listed = "; ".join(f"{out_dir / rel}: {why}" for rel, why in damaged[:10])
        more = f"; ... ({len(damaged)} in all)" if len(damaged) > 10 else ""
        raise DataError(f"{len(damaged)} damaged emoji image file(s): {listed}{more}. "
                        f"Rebuild them with `python -m clickvision.data build --only emoji --verify`")
