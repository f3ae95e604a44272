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

Seven more vendors come from the Iconify JSON packs on npm (:data:`ICONIFY_PACKAGES`: Fluent
Emoji flat and high-contrast, Emoji One colour and monotone, Noto SVG, Firefox OS emoji,
Streamline; MIT, CC BY 4.0 or Apache-2.0; ``@iconify-json/openmoji`` is share-alike and not
used). :func:`build_vendors` (manifest entry ``emoji_vendors``) joins each icon to a base
concept (:func:`join_iconify`: code point where the pack has ``chars.json``, else normalised
name), renders it like OpenMoji to ``img/<vendor>/<unified>.png`` and writes
``items-vendors.csv``, whose rows inherit their concept's split, label, group and text; the
base set above is never changed. ``load_emoji()`` returns the base three vendors as always;
``load_emoji(vendors="all")`` or a list adds Iconify vendors.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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

# Iconify JSON packs (npm ``@iconify-json/*``): more vendors of the same concepts, built by
# :func:`build_vendors` into the separate manifest entry ``emoji_vendors`` (the base entry
# above, its rows, splits and image bytes stay as they are). Vendor id -> (package, pinned version).
ICONIFY_PACKAGES: dict[str, tuple[str, str]] = {
    "fluent-flat": ("@iconify-json/fluent-emoji-flat", "1.2.6"),
    "fluent-hc": ("@iconify-json/fluent-emoji-high-contrast", "1.2.6"),
    "emojione": ("@iconify-json/emojione", "1.2.3"),
    "emojione-mono": ("@iconify-json/emojione-monotone", "1.2.1"),
    "noto": ("@iconify-json/noto", "1.2.9"),
    "fxemoji": ("@iconify-json/fxemoji", "1.2.2"),
    "streamline": ("@iconify-json/streamline-emojis", "1.2.4"),
}
ICONIFY_VENDORS: tuple[str, ...] = tuple(ICONIFY_PACKAGES)
ICONIFY_LICENCES: dict[str, str] = {
    "fluent-flat": "MIT (Microsoft Fluent Emoji, flat)",
    "fluent-hc": "MIT (Microsoft Fluent Emoji, high contrast)",
    "emojione": "CC-BY-4.0 (Emoji One, colour; github.com/EmojiTwo/emojitwo)",
    "emojione-mono": "CC-BY-4.0 (Emoji One, monotone; github.com/EmojiTwo/emojitwo)",
    "noto": "Apache-2.0 (Noto Emoji SVG by Google; the same family as the google vendor's PNGs)",
    "fxemoji": "Apache-2.0 (Firefox OS Emoji by Mozilla)",
    "streamline": "CC-BY-4.0 (Streamline Emojis by Streamline; github.com/webalys-hq/streamline-vectors)",
}
# Monochrome line-art packs: their bodies paint with ``currentColor``, drawn black on white.
MONOCHROME: frozenset[str] = frozenset({"fluent-hc", "emojione-mono"})
ALL_VENDORS: tuple[str, ...] = VENDORS + ICONIFY_VENDORS
VENDORS_NAME = "emoji_vendors"  # manifest entry and builder name of the Iconify vendors
VENDOR_ITEMS = "items-vendors.csv"  # their table, beside items.csv; their image index lives in img/
SKIN_TONES = frozenset({"1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"})
_VARIANT_NAME = re.compile(r"skin-tone|(^|-)tone-?[1-5]($|-)")
_NUMBERED = re.compile(r"^(.*\D)-(\d+)$")


def _package(vendor: str) -> tuple[str, str]:
    """(npm package, pinned version) of any vendor, base or Iconify."""
    if vendor in PACKAGES:
        return PACKAGES[vendor]
    if vendor in ICONIFY_PACKAGES:
        return ICONIFY_PACKAGES[vendor]
    raise ValueError(f"unknown emoji vendor {vendor!r}; choose one of {ALL_VENDORS}")


def tarball_name(package: str, version: str) -> str:
    """The file ``npm pack`` writes: ``@scope/name`` becomes ``scope-name-<version>.tgz``."""
    return f"{package.lstrip('@').replace('/', '-')}-{version}.tgz"


def npm_command(vendor: str, npm_dir: Path | None = None) -> str:
    """The shell command that fetches ``vendor``'s package tarball."""
    package, version = _package(vendor)
    return f"cd {npm_dir or paths.RAW_DIR / 'npm'} && npm pack {package}@{version}"


def fetch_npm_tarball(vendor: str, npm_dir: Path | None = None) -> Path:
    """``npm pack`` the vendor's package into ``npm_dir`` (kept: a later build reuses it)."""
    package, version = _package(vendor)
    npm_dir = Path(npm_dir or paths.RAW_DIR / "npm")
    tarball = npm_dir / tarball_name(package, version)
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


def _cp_key(code: str) -> str:
    """A code-point sequence as a join key: upper-case 4+ digit hex, ``-``-joined, FE0F dropped
    (``00a9``, ``a9`` and ``00A9-FE0F`` all give ``00A9``). ValueError for a non-hex part."""
    return "-".join(f"{int(p, 16):04X}" for p in str(code).split("-") if p.upper() != "FE0F")


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
        with contextlib.ExitStack() as stack:  # one staged folder per vendor: other vendors' folders stay
            stage = {v: stack.enter_context(staged_dir(out_dir / "img" / v)) for v in VENDORS}

            def dst(name: str) -> str:
                vendor, file = name.split("/", 1)
                return str(stage[vendor] / file)

            parallel_map(_copy_png_job, [(s, dst(n), size) for k, s, n in jobs if k == "png"], workers)
            parallel_map(_render_svg_job, [(s, dst(n), size) for k, s, n in jobs if k == "svg"], workers)
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


# ----------------------------------------------------------------------------- Iconify vendors
@dataclass(frozen=True)
class IconifyPack:
    """One Iconify JSON pack: icon bodies, aliases, default size and the code-point map.

    ``icons`` maps name -> ``{"body": svg markup, optional "width"/"height"/"left"/"top"/
    "hidden"}``; ``aliases`` maps an extra name -> ``{"parent": name, ...}``; ``chars`` maps a
    code-point sequence (lower-case hex, ``-``-joined) -> icon name (empty where the pack has none).
    """

    prefix: str
    icons: dict[str, dict[str, Any]]
    aliases: dict[str, dict[str, Any]] = field(default_factory=dict)
    chars: dict[str, str] = field(default_factory=dict)
    width: float = 16.0
    height: float = 16.0
    left: float = 0.0
    top: float = 0.0
    source: str = ""


def _read_json(path: Path, required: bool = True) -> Any:
    """Parsed JSON of ``path``; DataError naming the file on bad JSON (None when optional and absent)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        if not required:
            return None
        raise DataError(f"{path} missing from the Iconify pack (damaged package? delete its tarball "
                        f"and rebuild)") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise DataError(f"{path}{where}: not valid JSON ({exc})") from exc


def read_iconify(package_root: Path) -> IconifyPack:
    """Parse ``icons.json`` (and ``chars.json`` when present) of an Iconify JSON pack.

    A damaged pack raises DataError naming the file: bad JSON, no ``icons`` object, an icon
    without a string ``body``, a non-numeric size, an alias whose parent does not exist.
    """
    root = Path(package_root)
    path = root / "icons.json"
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("icons"), dict):
        raise DataError(f"{path}: expected an object with an 'icons' object")
    for name, icon in data["icons"].items():
        if not isinstance(icon, dict) or not isinstance(icon.get("body"), str) or not icon["body"].strip():
            raise DataError(f"{path}: icon {name!r} has no SVG 'body'")
        for k in ("width", "height", "left", "top"):
            if k in icon and not isinstance(icon[k], (int, float)):
                raise DataError(f"{path}: icon {name!r} has a non-numeric {k!r}: {icon[k]!r}")
    aliases = data.get("aliases") or {}
    if not isinstance(aliases, dict):
        raise DataError(f"{path}: 'aliases' must be an object")
    for name, alias in aliases.items():
        if not isinstance(alias, dict) or alias.get("parent") not in data["icons"] and alias.get("parent") not in aliases:
            raise DataError(f"{path}: alias {name!r} names no existing parent icon")
    defaults = {}
    for k, default in (("width", 16.0), ("height", 16.0), ("left", 0.0), ("top", 0.0)):
        v = data.get(k, default)
        if not isinstance(v, (int, float)):
            raise DataError(f"{path}: the pack's {k!r} must be a number, got {v!r}")
        defaults[k] = float(v)
    chars_path = root / "chars.json"
    chars = _read_json(chars_path, required=False) or {}
    if not isinstance(chars, dict) or not all(isinstance(v, str) for v in chars.values()):
        raise DataError(f"{chars_path}: expected an object of code point -> icon name")
    for cp in chars:
        try:
            _cp_key(cp)
        except ValueError:
            raise DataError(f"{chars_path}: {cp!r} is not a code-point sequence (hex, '-'-joined)") from None
    return IconifyPack(str(data.get("prefix", root.parent.name)), data["icons"], aliases, chars, source=str(path),
                       **defaults)


def iconify_svg(pack: IconifyPack, name: str, monochrome: bool = False) -> bytes:
    """The icon ``name`` (or an alias without transformation) as a square, standalone SVG document.

    The body is wrapped in an ``<svg>`` whose view box is the icon's own (width/height/left/
    top, defaults from the pack), padded to a square around its centre so rendering to a
    square raster never stretches it. ``monochrome``: ``currentColor`` is set to black.
    """
    while name in pack.aliases and name not in pack.icons:
        name = pack.aliases[name]["parent"]
    icon = pack.icons[name]
    w, h = float(icon.get("width", pack.width)), float(icon.get("height", pack.height))
    left, top = float(icon.get("left", pack.left)), float(icon.get("top", pack.top))
    side = max(w, h)
    x, y = left - (side - w) / 2, top - (side - h) / 2
    colour = ' color="#000000"' if monochrome else ""

    def num(v: float) -> str:
        return f"{v:g}"

    head = (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'width="{num(side)}" height="{num(side)}" viewBox="{num(x)} {num(y)} {num(side)} {num(side)}"{colour}>')
    return (head + icon["body"] + "</svg>").encode("utf-8")


def normalise_name(text: str) -> str:
    """A name as a join key: lower case, ``-``/``_``/whitespace unified to one space, punctuation dropped."""
    text = str(text).lower().replace("_", " ").replace("-", " ")
    text = re.sub(r"[^\w\s]", "", text)
    return " ".join(text.split())


def _name_index(concepts: pd.DataFrame) -> list[dict[str, str]]:
    """Key -> concept, one dict per key family in priority order (CLDR name, Unicode name, short
    names, then CLDR names with their parenthesised part dropped).

    A key that names two concepts within one family is dropped there (ambiguous); an earlier
    family wins over a later one.
    """
    families: list[dict[str, str]] = []
    for column, strip in (("annotation", False), ("name", False), ("short_names", False), ("annotation", True)):
        if column not in concepts:
            continue
        seen: dict[str, set[str]] = {}
        for concept, value in zip(concepts["concept"], concepts[column].fillna("")):
            for phrase in str(value).split("|"):
                if strip:  # "A button (blood type)" -> "A button"; only when there is a parenthesis
                    if "(" not in phrase:
                        continue
                    phrase = re.sub(r"\([^)]*\)", " ", phrase)
                key = normalise_name(phrase)
                if key:
                    seen.setdefault(key, set()).add(concept)
        families.append({k: next(iter(v)) for k, v in seen.items() if len(v) == 1})
    return families


def _lookup(families: list[dict[str, str]], key: str) -> str | None:
    """The concept ``key`` names (exact normalised key, else the same key with no spaces).

    Iconify's ``flag-for-<country>`` names meet CLDR's ``flag: <country>``.
    """
    if key.startswith("flag for "):
        key = "flag " + key[len("flag for "):]
    for fam in families:
        if key in fam:
            return fam[key]
    compact = key.replace(" ", "")
    for fam in families:
        for k, concept in fam.items():
            if k.replace(" ", "") == compact:
                return concept
    return None


@dataclass
class JoinReport:
    """How one pack's icons met the base concepts (see :func:`join_iconify`)."""

    method: str  # "code point" or "name"
    icons: int = 0
    joined: dict[str, str] = field(default_factory=dict)  # concept -> icon name
    variants: list[str] = field(default_factory=list)  # skin-tone / numbered variants, dropped
    hidden: list[str] = field(default_factory=list)  # deprecated names the pack hides
    duplicates: list[str] = field(default_factory=list)  # a second icon of a concept already joined
    failed: list[str] = field(default_factory=list)  # joined no base concept (dropped, counted)

    def summary(self, n_concepts: int) -> dict[str, Any]:
        return {"join": self.method, "icons": self.icons, "concepts": len(self.joined),
                "join_rate": round(len(self.joined) / max(n_concepts, 1), 4), "variants_dropped": len(self.variants),
                "hidden": len(self.hidden), "duplicates": len(self.duplicates), "failed": len(self.failed),
                "failed_examples": sorted(self.failed)[:8]}


def join_iconify(pack: IconifyPack, concepts: pd.DataFrame) -> JoinReport:
    """Join every icon of ``pack`` to a base concept (``concepts``: ``concept`` = unified id,
    and the name columns ``annotation`` (CLDR name), ``name``, ``short_names`` ("|"-joined)).

    By code point where the pack has a ``chars.json`` map (FE0F ignored on both sides), else
    by normalised name (:func:`normalise_name`; an exact key first, then the key without
    spaces, e.g. fxemoji's ``alarmclock``; aliases count as names of their parent). Skin-tone
    icons and numbered variants beyond the first (``-2``, ``-3``; ``-1`` is the base drawing)
    are dropped as variants; icons that join nothing are counted as failed.
    """
    report = JoinReport("code point" if pack.chars else "name", icons=len(pack.icons))
    base = {_cp_key(c): c for c in concepts["concept"]}
    candidates: dict[str, list[tuple[tuple[int, str], str]]] = {}  # concept -> [(priority, icon)]
    if pack.chars:
        cps: dict[str, list[str]] = {}
        for cp, icon in pack.chars.items():
            cps.setdefault(icon, []).append(_cp_key(cp))
        for icon in pack.icons:
            keys = cps.get(icon, [])
            hit = next((base[k] for k in keys if k in base), None)
            if hit is not None:
                candidates.setdefault(hit, []).append(((0, icon), icon))
            elif pack.icons[icon].get("hidden"):
                report.hidden.append(icon)
            elif keys and all(SKIN_TONES & set(k.split("-")) for k in keys):
                report.variants.append(icon)
            else:
                report.failed.append(icon)
    else:
        families = _name_index(concepts)
        names = [(n, 0) for n in pack.icons] + [(n, 1) for n, a in pack.aliases.items()
                                                if not any(a.get(t) for t in ("rotate", "hFlip", "vFlip"))]
        alias_hits: set[str] = set()
        for name, is_alias in names:
            if not is_alias and pack.icons[name].get("hidden"):
                report.hidden.append(name)
                continue
            target = name
            while target in pack.aliases and target not in pack.icons:
                target = pack.aliases[target]["parent"]
            if _VARIANT_NAME.search(name):
                if not is_alias:
                    report.variants.append(name)
                continue
            key = normalise_name(name)
            hit, rank = _lookup(families, key), 0
            m = _NUMBERED.match(name)
            if hit is None and m:
                stem_hit = _lookup(families, normalise_name(m.group(1)))
                if stem_hit is not None and int(m.group(2)) > 1:
                    if not is_alias:
                        report.variants.append(name)
                    continue
                hit, rank = stem_hit, 1
            if hit is not None:
                candidates.setdefault(hit, []).append(((2 * is_alias + rank, name), target))
                if is_alias:
                    alias_hits.add(target)
            elif not is_alias:
                report.failed.append(name)
        # an icon that failed by its own name but joined through an alias is not a failure
        report.failed = [n for n in report.failed if n not in alias_hits]
    used: set[str] = set()
    for concept in sorted(candidates):
        ranked = sorted(candidates[concept])
        icon = next((t for _, t in ranked if t not in used), None)
        if icon is None:
            continue
        report.joined[concept] = icon
        used.add(icon)
    joined_icons = set(report.joined.values())
    dup = {t for c in candidates.values() for _, t in c} - joined_icons
    report.duplicates = sorted(dup)
    report.failed = [n for n in report.failed if n not in joined_icons]
    return report


def _render_iconify_job(job: tuple[bytes, str, int, str]) -> None:
    svg, dst, size, what = job
    try:
        im = render_svg(svg, size, size)
    except Exception as exc:  # noqa: BLE001 - any rendering failure is bad input, named here
        raise DataError(f"cannot render {what}: {exc}") from exc
    save_png(im, Path(dst))


def _extract_iconify(vendor: str, tarball: Path, dest: Path) -> Path:
    """Extract the JSON files (icons, chars, info, package.json, licence) of one Iconify pack."""
    keep = {"package/icons.json", "package/chars.json", "package/info.json", "package/package.json",
            "package/LICENSE", "package/LICENSE.txt"}
    return extract_package(tarball, dest, lambda name, got: name in keep)


def _base_concepts(roots: dict[str, Path], base_items: pd.DataFrame) -> pd.DataFrame:
    """One row per base concept (as built in items.csv) with its join keys and inherited columns."""
    table = _concept_table(roots)
    om = read_openmoji(roots["openmoji"]).drop_duplicates("hexcode").set_index("hexcode")["annotation"]
    table["annotation"] = table["hexcode"].map(om).fillna("")
    first = base_items.drop_duplicates("concept").set_index("concept")
    table = table[table["unified"].isin(first.index)].reset_index(drop=True)
    out = first.loc[table["unified"], ["label", "group", "text", "name", "sort_order", "split"]].reset_index()
    out["short_names"] = table["short_names"].to_numpy()
    out["annotation"] = table["annotation"].to_numpy()
    return out


def _base_roots(package_roots: dict[str, Path] | None, raw_dir: Path) -> dict[str, Path]:
    """The base vendors' extracted packages: given, already extracted by the base build, or extracted now."""
    if package_roots and all(v in package_roots for v in VENDORS):
        return {v: Path(package_roots[v]) for v in VENDORS}
    roots = {v: raw_dir / NAME / f"{_package(v)[0]}-{_package(v)[1]}" / "package" for v in VENDORS}
    needed = [roots["google"] / "emoji.json", roots["twitter"] / "emoji.json", roots["openmoji"] / "data/openmoji.json"]
    if all(p.exists() for p in needed):
        return roots
    return _package_roots(package_roots, raw_dir)[0]


def build_vendors(force: bool = False, *, package_roots: dict[str, Path] | None = None,
                  out_dir: Path | None = None, raw_dir: Path | None = None, size: int = 64,
                  vendors: Iterable[str] = ICONIFY_VENDORS, workers: int | None = None,
                  echo: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Build the Iconify vendors (manifest entry ``emoji_vendors``) on top of the base emoji set.

    Every icon joins a base concept (:func:`join_iconify`); a joined icon becomes a row of
    ``data/processed/emoji/items-vendors.csv`` that inherits its concept's split, label,
    group and text from ``items.csv`` (so a concept sits in one split whichever vendor draws
    it), and a 64 px RGB PNG on white at ``img/<vendor>/<unified>.png`` (the pack's body
    wrapped as an SVG, rendered with cairosvg like OpenMoji; monochrome packs black). The
    image index is ``img/images.sha256``. The base set (its rows, splits, images) is built
    first when needed and never changed. ``package_roots`` maps vendor -> an extracted
    ``package/`` folder (tests); by default the packs are fetched with ``npm pack``.
    The per-vendor join report (icons, joined concepts, join rate, failures) goes to the
    manifest and, when built, to ``echo``.
    """
    vendors = tuple(vendors)
    unknown = [v for v in vendors if v not in ICONIFY_PACKAGES]
    if unknown or not vendors:
        raise ValueError(f"vendors must be a non-empty subset of {ICONIFY_VENDORS}, got {list(vendors)}")
    out_dir = Path(out_dir or paths.PROCESSED_DIR / NAME)
    raw_dir = Path(raw_dir or paths.RAW_DIR)
    base_entry = build(package_roots=package_roots, out_dir=out_dir, raw_dir=raw_dir, workers=workers)
    base_digest = base_entry["artifacts"][manifest._rel(out_dir / "items.csv")]
    params = {"vendors": list(vendors), "size": size, "base_items_sha256": base_digest, "join_version": 1,
              "packages": {v: "{}@{}".format(*ICONIFY_PACKAGES[v]) for v in vendors}}
    img_root = out_dir / "img"
    with file_lock(out_dir.parent / f".{VENDORS_NAME}.build"):
        if not force and (entry := up_to_date(VENDORS_NAME, params, img_root)):
            return entry
        start = time.perf_counter()
        base_items = read_table(out_dir / "items.csv", NAME)
        concepts = _base_concepts(_base_roots(package_roots, raw_dir), base_items)
        kept_labels = set(filter_classes(base_items).label)
        rows, jobs, report, sources = [], [], {}, {}
        for vendor in vendors:
            if package_roots and vendor in package_roots:
                root = Path(package_roots[vendor])
            else:
                tarball = fetch_npm_tarball(vendor, raw_dir / "npm")
                sources[vendor] = f"{tarball.name} sha256:{manifest.sha256_file(tarball)}"
                package, version = ICONIFY_PACKAGES[vendor]
                root = _extract_iconify(vendor, tarball, raw_dir / NAME / tarball.name.removesuffix(".tgz"))
            pack = read_iconify(root)
            join = join_iconify(pack, concepts)
            joined = concepts[concepts["concept"].isin(join.joined)].sort_values("sort_order", key=lambda s: s.astype(int))
            for r in joined.itertuples(index=False):
                name = f"{vendor}/{r.concept.lower()}.png"
                jobs.append((vendor, iconify_svg(pack, join.joined[r.concept], vendor in MONOCHROME), name,
                             f"{pack.source} icon {join.joined[r.concept]!r}"))
                rows.append({"key": f"{vendor}:{r.concept}", "path": f"img/{name}", "label": r.label, "group": r.group,
                             "domain": vendor, "concept": r.concept, "text": r.text, "name": r.name,
                             "sort_order": r.sort_order, "split": r.split})
            package, version = ICONIFY_PACKAGES[vendor]
            report[vendor] = {"package": package, "version": version, "licence": ICONIFY_LICENCES[vendor],
                              "style": "monochrome" if vendor in MONOCHROME else "colour",
                              **join.summary(len(concepts)),
                              "kept_concepts": int(joined["label"].isin(kept_labels).sum())}
        t_render = time.perf_counter()
        with contextlib.ExitStack() as stack:
            stage = {v: stack.enter_context(staged_dir(img_root / v)) for v in vendors}
            parallel_map(_render_iconify_job, [(svg, str(stage[v] / Path(n).name), size, what)
                                               for v, svg, n, what in jobs], workers)
        render_s = time.perf_counter() - t_render
        items = pd.DataFrame(rows, columns=["key", "path", "label", "group", "domain", "concept", "text", "name",
                                            "sort_order", "split"])
        artifacts = [write_table(items, out_dir / VENDOR_ITEMS),
                     write_image_index(img_root, [p.removeprefix("img/") for p in items["path"]])]
        base_vendors = {v: {"package": _package(v)[0], "version": _package(v)[1], "licence": LICENCES[v],
                            "style": "colour", "join": "base set (emoji-datasource code points)",
                            "concepts": len(concepts), "join_rate": 1.0, "entry": NAME,
                            "kept_concepts": int(concepts["label"].isin(kept_labels).sum())} for v in VENDORS}
        entry = {
            "source": ", ".join(f"npm {p} {v}" for p, v in (ICONIFY_PACKAGES[x] for x in vendors)),
            "version": ", ".join("{}@{}".format(*ICONIFY_PACKAGES[x]) for x in vendors),
            "licence": "; ".join(f"{v}: {ICONIFY_LICENCES[v]}" for v in vendors), "simulated": False,
            "committed": False, "params": params, "sources": sources,
            "counts": {"base_concepts": len(concepts), "images": len(items),
                       "images_per_vendor": {v: int((items.domain == v).sum()) for v in vendors},
                       "kept_images": int(items["label"].isin(kept_labels).sum())},
            "vendors": {**base_vendors, **report},
            "notes": "Iconify JSON packs joined to the base emoji concepts (entry 'emoji'): by code point where the "
                     "pack has chars.json, else by normalised CLDR/Unicode/short name. Rows inherit the concept's "
                     "split, label, group and text. Images are 64 px RGB PNG on white; monochrome packs drawn black. "
                     "join_rate = joined concepts / base concepts.",
        }
        recorded = manifest.record_build(VENDORS_NAME, entry, artifacts)
        if echo is not None:
            total = time.perf_counter() - start
            echo(f"emoji vendors: {len(items)} images rendered in {render_s:.1f} s "
                 f"({len(items) / max(render_s, 1e-9):.0f} images/s); {total:.1f} s in all")
            echo(vendor_report(recorded).to_string(index=False))
        return recorded


def vendor_report(entry: dict[str, Any] | None = None) -> pd.DataFrame:
    """The per-vendor join table of the ``emoji_vendors`` manifest entry (every vendor, base ones first)."""
    entry = entry if entry is not None else manifest.load_manifest().get(VENDORS_NAME)
    if not entry:
        raise MissingSourceError(f"{VENDORS_NAME} is not built: run `python -m clickvision.data build --only emoji "
                                 f"{VENDORS_NAME}`")
    rows = []
    for vendor, v in entry["vendors"].items():
        rows.append({"vendor": vendor, "package": f"{v['package']}@{v['version']}", "licence": v["licence"],
                     "style": v["style"], "join": v["join"], "icons": v.get("icons", v["concepts"]),
                     "concepts": v["concepts"], "join rate": v["join_rate"], "kept concepts": v["kept_concepts"],
                     "variants dropped": v.get("variants_dropped", 0), "failed": v.get("failed", 0),
                     "failed (examples)": ", ".join(v.get("failed_examples", [])[:4])})
    return pd.DataFrame(rows)


LOAD_CHECKS = ("none", "size", "sha256", "decode")


def resolve_vendors(vendors: str | Iterable[str]) -> tuple[str, ...]:
    """``"all"`` -> every vendor; a vendor id -> that one; a list -> itself (checked, in the order given)."""
    if isinstance(vendors, str):
        vendors = ALL_VENDORS if vendors == "all" else (vendors,)
    vendors = tuple(vendors)
    bad = [v for v in vendors if v not in ALL_VENDORS]
    if bad or not vendors or len(set(vendors)) != len(vendors):
        raise ValueError(f"vendors must be 'all' or a non-empty list of distinct vendors from {ALL_VENDORS}, "
                         f"got {list(vendors)}")
    return vendors


def imageset_name(vendors: tuple[str, ...]) -> str:
    """``"emoji"`` for base vendors only (today's feature-cache subset), else ``"emoji[<vendors>]"``: a
    selection with Iconify vendors gets its own cache subset, so it never replaces the base entry."""
    if set(vendors) <= set(VENDORS):
        return NAME
    return f"{NAME}[all]" if set(vendors) == set(ALL_VENDORS) else f"{NAME}[{'+'.join(vendors)}]"


def load_emoji(vendors: str | Iterable[str] = VENDORS, min_concepts_per_class: int = MIN_CONCEPTS_PER_CLASS,
               exclude_classes: tuple[str, ...] = EXCLUDED_CLASSES, out_dir: Path | None = None,
               verify: str = "size") -> ImageSet:
    """The built emoji set as an :class:`ImageSet` (``domain`` = vendor, ``concept`` = twin id).

    ``vendors``: base vendors (default: google, twitter, openmoji: exactly the set the
    experiments have always used), Iconify vendors (:data:`ICONIFY_VENDORS`, built by
    :func:`build_vendors`), a mix, or ``"all"``. Class sizes count concepts (an emoji drawn
    by three vendors counts once) over the base concepts, so the kept class set is the same
    whichever vendors are chosen.
    ``verify`` checks the selected images against the build's image index first:
    ``"size"`` (default; one ``stat`` each: present, with the recorded byte size),
    ``"sha256"`` (re-hashes each), ``"decode"`` (size, then Pillow decodes each) or
    ``"none"``. A damaged image raises DataError naming the file(s) and the command that
    rebuilds them; :meth:`ImageSet.load_image` names any file it cannot decode.
    """
    vendors = resolve_vendors(vendors)
    if verify not in LOAD_CHECKS:
        raise ValueError(f"verify must be one of {LOAD_CHECKS}, got {verify!r}")
    out_dir = Path(out_dir or paths.PROCESSED_DIR / NAME)
    items = read_table(out_dir / "items.csv", NAME)
    base, extra = [v for v in vendors if v in VENDORS], [v for v in vendors if v not in VENDORS]
    if not extra:  # the base set, exactly as it has always been loaded
        items = items[items["domain"].isin(base)]
        items = filter_classes(items, min_concepts_per_class, exclude_classes)
        if verify != "none":
            _check_images(out_dir, list(items["path"]), verify)
        present = images_present(out_dir)
    else:
        keep = set(filter_classes(items[items["domain"].isin(VENDORS)], min_concepts_per_class,
                                  exclude_classes)["label"])
        more = read_table(out_dir / VENDOR_ITEMS, VENDORS_NAME)
        missing = [v for v in extra if not (more["domain"] == v).any()]
        if missing:
            raise MissingSourceError(f"emoji vendors {missing} are not built: run "
                                     f"`python -m clickvision.data build --only {VENDORS_NAME}`")
        more = pd.concat([more[more["domain"] == v] for v in extra])
        items = pd.concat([items[items["domain"].isin(base)], more[items.columns]], ignore_index=True)
        items = items[items["label"].isin(keep)].reset_index(drop=True)
        if verify != "none":
            _check_images(out_dir, [p for p in items["path"] if p.split("/")[1] in VENDORS], verify)
            _check_images(out_dir / "img", [p.removeprefix("img/") for p in items["path"]
                                            if p.split("/")[1] not in VENDORS], verify, VENDORS_NAME)
        present = images_present(out_dir) and images_present(out_dir / "img")
    items["path"] = [str(out_dir / p) for p in items["path"]]
    items["sort_order"] = items["sort_order"].astype(int)
    meta = {"vendors": list(vendors), "min_concepts_per_class": min_concepts_per_class,
            "exclude_classes": list(exclude_classes),
            "licences": {v: {**LICENCES, **ICONIFY_LICENCES}[v] for v in vendors}, "images_present": present}
    return ImageSet(imageset_name(vendors), items, meta)


def _check_images(out_dir: Path, rels: list[str], verify: str, what: str = NAME) -> None:
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
                        f"Rebuild them with `python -m clickvision.data build --only {what} --verify`")
