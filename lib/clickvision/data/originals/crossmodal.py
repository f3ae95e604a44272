"""Cross-modal image/text sets of paper C: Wikipedia, NUS-WIDE-10k, Pascal Sentences.

Each loader returns an :class:`~clickvision.data.base.ImageSet` with one row per
image/text pair, its ``text`` and exactly one ``label`` (the pair's category), the shape
of paper C's target domains. Paper C's splits (train/test/val): Wikipedia 2,173/462/231,
NUS-WIDE-10k 8,000/1,000/1,000, Pascal Sentences 800/100/100.

**Wikipedia** (Rasiwasia et al., 2010; ``wikipedia_dataset.zip``), its own layout::

    categories.list                      one category name per line (line n = number n)
    trainset_txt_img_cat.list            <text_id> \\t <image_id> \\t <category number>
    testset_txt_img_cat.list             (2,173 and 693 pairs)
    texts/<text_id>.xml                  the article section inside <text> ... </text>
    images/<category>/<image_id>.jpg

**NUS-WIDE-10k** (Feng et al., 2014) has no single distributed layout: it is a selection
of 10 x 1,000 NUS-WIDE images. This loader reads a layout of our choosing built from
NUS-WIDE's own pieces::

    images/<category>/<image_id>.jpg     the category is the folder name
    All_Tags.txt                         NUS-WIDE's tag file: <image_id> <tag> <tag> ...
    split.tsv                            optional: <image_id> \\t train|val|test

**Pascal Sentences** (Rashtchian et al., 2010) is likewise distributed as web pages; this
loader reads the per-class folder layout that common download scripts produce::

    dataset/<category>/<image>.jpg      sentence/<category>/<image>.txt (5 lines)
    split.tsv                            optional, as above

Without ``split.tsv`` the NUS-WIDE-10k and Pascal Sentences splits are drawn per class
(stratified, seeded, 80/10/10 by default).
"""
from __future__ import annotations

import html
import os
import re
from pathlib import Path

import pandas as pd

from ...click.log import iter_lines
from ..base import SPLITS, DataError, ImageSet
from ._common import as_root, assign_splits, check_images, hash_order, iter_fields, parse_int, require

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_TEXT_RE = re.compile(r"<text>(.*?)</text>", re.S | re.I)
_TAG_RE = re.compile(r"<[^>]+>")


def read_wikipedia_text(path: Path) -> str:
    """The article text inside ``<text>...</text>`` of a Wikipedia-dataset XML file.

    Read with a regular expression, not an XML parser: some files of the release are not
    well-formed XML. Entities are unescaped and whitespace collapsed.
    """
    if not path.is_file():
        raise DataError(f"missing text file: {path}")
    raw = path.read_bytes().decode("utf-8", errors="replace")
    match = _TEXT_RE.search(raw)
    if match is None:
        raise DataError(f"{path}: no <text> element")
    return " ".join(html.unescape(_TAG_RE.sub(" ", match.group(1))).split())


def _read_categories(path: Path) -> list[str]:
    cats = [line.strip() for _, line in iter_lines(path) if line.strip()]
    if not cats:
        raise DataError(f"{path}: no categories")
    return cats


def load_wikipedia(root: str | os.PathLike, *, val_size: int = 0, seed: int = 0,
                   verify: str = "exists", name: str = "wikipedia") -> ImageSet:
    """The Wikipedia image/text set (2,866 pairs, 10 categories) as an ImageSet.

    Columns: ``key`` (image id), ``path``, ``label`` (category name), ``split``,
    ``text`` (article text), ``text_id``. The official lists give train/test; ``val_size``
    moves that many seeded test pairs to ``"val"`` (paper C: 231 of the 693).
    """
    root = as_root(root)
    how = "Get wikipedia_dataset.zip (Rasiwasia et al., ACM MM 2010) and unpack it here."
    cats = _read_categories(require(root / "categories.list", "Wikipedia", how))
    rows = []
    for split, fname in (("train", "trainset_txt_img_cat.list"), ("test", "testset_txt_img_cat.list")):
        path = require(root / fname, "Wikipedia", how)
        for lineno, (text_id, image_id, cat) in iter_fields(path, 3):
            number = parse_int(cat, f"{path}:{lineno}", "category number")
            if not 1 <= number <= len(cats):
                raise DataError(f"{path}:{lineno}: category number {number} outside 1..{len(cats)} of categories.list")
            label = cats[number - 1]
            rows.append({"key": image_id, "path": str(root / "images" / label / f"{image_id}.jpg"),
                         "label": label, "split": split, "text_id": text_id})
    items = pd.DataFrame(rows)
    check_images(items["path"], verify)
    items["text"] = [read_wikipedia_text(root / "texts" / f"{t}.xml") for t in items["text_id"]]
    test = items.index[items["split"] == "test"]
    if not 0 <= val_size <= len(test):
        raise ValueError(f"val_size must be in 0..{len(test)} (the test pairs), got {val_size}")
    val_keys = set(hash_order(items.loc[test, "key"], seed)[:val_size])
    items.loc[items["key"].isin(val_keys), "split"] = "val"
    cols = ["key", "path", "label", "split", "text", "text_id"]
    return ImageSet(name, items[cols], {"source": str(root), "format": "wikipedia", "categories": cats,
                                        "val_size": val_size, "seed": seed})


def _class_images(folder: Path) -> list[tuple[str, Path]]:
    """``(category, image path)`` for every image in ``folder/<category>/``, sorted."""
    found = [(d.name, f) for d in sorted(p for p in folder.iterdir() if p.is_dir())
             for f in sorted(d.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    if not found:
        raise DataError(f"{folder}: no images in per-category folders")
    return found


def _apply_split(items: pd.DataFrame, root: Path, fractions: tuple[float, float, float], seed: int) -> pd.DataFrame:
    """Splits from ``root/split.tsv`` when present, else stratified seeded fractions."""
    path = root / "split.tsv"
    if not path.is_file():
        items["split"] = assign_splits(items, fractions, seed)
        return items
    given: dict[str, str] = {}
    for lineno, (key, split) in iter_fields(path, 2, sep="\t"):
        if split not in SPLITS:
            raise DataError(f"{path}:{lineno}: split must be one of {SPLITS}, got {split!r}")
        given[key] = split
    missing = sorted(set(items["key"]) - set(given))
    if missing:
        raise DataError(f"{path}: no split for {len(missing)} items, e.g. {missing[:3]}")
    items["split"] = items["key"].map(given)
    return items


def _check_unique(items: pd.DataFrame, folder: Path) -> None:
    dup = items["key"].duplicated(keep=False)
    if dup.any():
        clash = items.loc[dup, "path"].tolist()[:2]
        raise DataError(f"{folder}: image id {items.loc[dup, 'key'].iloc[0]!r} appears twice: {clash}")


def load_nus_wide_10k(root: str | os.PathLike, *, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                      seed: int = 0, verify: str = "exists", name: str = "nus-wide-10k") -> ImageSet:
    """NUS-WIDE-10k in the documented layout (module docstring) as an ImageSet.

    Columns: ``key`` (image id = file stem), ``path``, ``label`` (folder), ``split``,
    ``text`` (the image's tags, space-joined). An image without a row in ``All_Tags.txt``
    raises DataError naming it; a tag row for an image that is not in the set is ignored
    (``All_Tags.txt`` may be NUS-WIDE's full 269,648-image file).
    """
    root = as_root(root)
    how = ("Build the documented layout from NUS-WIDE (Chua et al., 2009): images/<category>/<id>.jpg "
           "for the 10 x 1,000 pairs of Feng et al. (2014), and NUS-WIDE's All_Tags.txt.")
    images = _class_images(require(root / "images", "NUS-WIDE-10k", how))
    items = pd.DataFrame([{"key": f.stem, "path": str(f), "label": cat} for cat, f in images])
    _check_unique(items, root / "images")
    wanted = set(items["key"])
    tags_path = require(root / "All_Tags.txt", "NUS-WIDE-10k", how)
    tags: dict[str, str] = {}
    for _, fields in iter_fields(tags_path, min_fields=1):
        if fields[0] in wanted:
            tags[fields[0]] = " ".join(fields[1:])
    missing = sorted(wanted - set(tags))
    if missing:
        raise DataError(f"{tags_path}: no tag line for image {missing[0]!r} ({len(missing)} images lack one)")
    items["text"] = items["key"].map(tags)
    check_images(items["path"], verify)
    items = _apply_split(items, root, fractions, seed)
    return ImageSet(name, items[["key", "path", "label", "split", "text"]],
                    {"source": str(root), "format": "nus-wide-10k", "seed": seed})


def load_pascal_sentences(root: str | os.PathLike, *, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                          seed: int = 0, verify: str = "exists", name: str = "pascal-sentences") -> ImageSet:
    """Pascal Sentences in the per-class folder layout (module docstring) as an ImageSet.

    Columns: ``key`` (image file stem), ``path``, ``label`` (class folder), ``split``,
    ``text`` (the image's sentences, one per line). A missing or empty sentence file
    raises DataError naming it.
    """
    root = as_root(root)
    how = ("Download Pascal Sentences (Rashtchian et al., 2010) into dataset/<class>/<image>.jpg and "
           "sentence/<class>/<image>.txt.")
    images = _class_images(require(root / "dataset", "Pascal Sentences", how))
    rows = []
    for cat, f in images:
        sentence_file = root / "sentence" / cat / f"{f.stem}.txt"
        if not sentence_file.is_file():
            raise DataError(f"missing sentence file: {sentence_file}")
        sentences = [" ".join(line.split()) for _, line in iter_lines(sentence_file) if line.strip()]
        if not sentences:
            raise DataError(f"{sentence_file}: no sentences")
        rows.append({"key": f.stem, "path": str(f), "label": cat, "text": "\n".join(sentences)})
    items = pd.DataFrame(rows)
    _check_unique(items, root / "dataset")
    check_images(items["path"], verify)
    items = _apply_split(items, root, fractions, seed)
    return ImageSet(name, items[["key", "path", "label", "split", "text"]],
                    {"source": str(root), "format": "pascal-sentences", "seed": seed})
