"""CUB-200-2011 (Wah et al., 2011): 11,788 bird images of 200 species, as an ImageSet.

Original layout (``CUB_200_2011.tgz`` unpacked; ``root`` may be the ``CUB_200_2011``
folder or the folder holding it). All tables are space-separated, ids 1-based::

    images.txt               <image_id> <class folder>/<file>.jpg
    image_class_labels.txt   <image_id> <class_id>
    classes.txt              <class_id> <NNN.Class_name>
    train_test_split.txt     <image_id> <1 = train | 0 = test>
    bounding_boxes.txt       <image_id> <x> <y> <width> <height>   (optional)
    images/001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg

The label is the class name without its number (``Black_footed_Albatross``); the split is
the official one (5,994 train / 5,794 test), ``val_fraction`` optionally moves a stratified,
seeded share of the training images to ``"val"``.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..base import DataError, ImageSet
from ._common import (as_root, carve_validation, check_images, confined, iter_fields, parse_float, parse_int,
                      require)

HOW_TO_GET = ("Download CUB_200_2011.tgz from https://www.vision.caltech.edu/datasets/cub_200_2011/ "
              "and unpack it; pass the CUB_200_2011 folder (or its parent).")


def _id_table(path: Path, n_fields: int) -> dict[int, tuple[int, list[str]]]:
    """``{id: (line, other fields)}`` of a CUB table; malformed or repeated ids name file:line."""
    table: dict[int, tuple[int, list[str]]] = {}
    for lineno, fields in iter_fields(path, n_fields):
        where = f"{path}:{lineno}"
        i = parse_int(fields[0], where, "id")
        if i in table:
            raise DataError(f"{where}: id {i} already defined on line {table[i][0]}")
        table[i] = (lineno, fields[1:])
    if not table:
        raise DataError(f"{path}: empty table")
    return table


def find_root(root: str | os.PathLike) -> Path:
    """The folder that holds ``images.txt`` (``root`` or ``root/CUB_200_2011``)."""
    root = as_root(root)
    for candidate in (root, root / "CUB_200_2011"):
        if (candidate / "images.txt").is_file():
            return candidate
    return require(root / "images.txt", "CUB-200-2011", HOW_TO_GET).parent


def load_cub(root: str | os.PathLike, *, val_fraction: float = 0.0, seed: int = 0,
             boxes: bool = False, verify: str = "exists", name: str = "cub-200-2011") -> ImageSet:
    """CUB-200-2011 as an ImageSet (label = species, official train/test split).

    Columns: ``key`` (file stem), ``path``, ``label``, ``split``, ``image_id``,
    ``class_id`` and, with ``boxes=True``, ``x y width height``. Every image id must appear
    in each table and its folder must match its class, and every path of ``images.txt``
    must stay inside ``images/`` (no absolute path, no ``..`` climbing out); otherwise
    DataError names the file and line (or id). ``verify``: ``"exists"`` (default), ``"decode"`` or ``"none"``.
    """
    root = find_root(root)
    images = _id_table(root / "images.txt", 2)
    labels = _id_table(require(root / "image_class_labels.txt", "CUB-200-2011", HOW_TO_GET), 2)
    classes = _id_table(require(root / "classes.txt", "CUB-200-2011", HOW_TO_GET), 2)
    splits = _id_table(require(root / "train_test_split.txt", "CUB-200-2011", HOW_TO_GET), 2)
    bbox = _id_table(require(root / "bounding_boxes.txt", "CUB-200-2011", HOW_TO_GET), 5) if boxes else {}
    rows = []
    images_dir = root / "images"
    for image_id, (lineno, (rel,)) in sorted(images.items()):
        image_path = confined(images_dir, rel, f"{root / 'images.txt'}:{lineno}")
        for table, fname in ((labels, "image_class_labels.txt"), (splits, "train_test_split.txt")) + (
                ((bbox, "bounding_boxes.txt"),) if boxes else ()):
            if image_id not in table:
                raise DataError(f"{root / fname}: no row for image id {image_id} (images.txt line {lineno})")
        lab_line, (class_text,) = labels[image_id]
        class_id = parse_int(class_text, f"{root / 'image_class_labels.txt'}:{lab_line}", "class id")
        if class_id not in classes:
            raise DataError(f"{root / 'image_class_labels.txt'}:{lab_line}: class id {class_id} not in classes.txt")
        class_folder = classes[class_id][1][0]
        if Path(rel).parent.name != class_folder:
            raise DataError(f"{root / 'images.txt'}:{lineno}: image {rel!r} is not in its class folder "
                            f"{class_folder!r}")
        split_line, (flag,) = splits[image_id]
        if flag not in ("0", "1"):
            raise DataError(f"{root / 'train_test_split.txt'}:{split_line}: split flag must be 0 or 1, got {flag!r}")
        row = {"key": Path(rel).stem, "path": str(image_path),
               "label": class_folder.split(".", 1)[-1], "split": "train" if flag == "1" else "test",
               "image_id": image_id, "class_id": class_id}
        if boxes:
            box_line, values = bbox[image_id]
            where = f"{root / 'bounding_boxes.txt'}:{box_line}"
            row.update(zip(("x", "y", "width", "height"), (parse_float(v, where, "box value") for v in values)))
        rows.append(row)
    extra = (set(labels) | set(splits)) - set(images)
    if extra:
        raise DataError(f"CUB-200-2011 {root}: ids {sorted(extra)[:3]} have labels or splits but no row in images.txt")
    items = pd.DataFrame(rows)
    check_images(items["path"], verify)
    items = carve_validation(items, val_fraction, seed)
    return ImageSet(name, items, {"source": str(root), "format": "cub-200-2011",
                                  "val_fraction": val_fraction, "seed": seed})
