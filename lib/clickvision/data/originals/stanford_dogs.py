"""Stanford Dogs (Khosla et al., 2011): 20,580 images of 120 breeds, as an ImageSet.

Original layout (the three archives ``images.tar``, ``annotation.tar`` and ``lists.tar``
from http://vision.stanford.edu/aditya86/ImageNetDogs/ unpacked into one folder)::

    root/Images/n02085620-Chihuahua/n02085620_10074.jpg
    root/Annotation/n02085620-Chihuahua/n02085620_10074     (PASCAL VOC XML, optional)
    root/lists/train_list.mat  root/lists/test_list.mat    (MATLAB v5)

Each list holds ``file_list`` (paths relative to ``Images/``), ``annotation_list`` and
``labels`` (1-based class numbers in folder order). The label of an image is the breed
part of its folder name (``n02085782-Japanese_spaniel`` -> ``Japanese_spaniel``); the
split comes from the lists (12,000 train / 8,580 test); ``val_fraction`` optionally moves a
stratified, seeded share of the training images to ``"val"``.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

from ..base import DataError, ImageSet
from ._common import as_root, carve_validation, check_images, confined, require

HOW_TO_GET = ("Download images.tar and lists.tar (annotation.tar for boxes) from "
              "http://vision.stanford.edu/aditya86/ImageNetDogs/ and unpack them into this folder, "
              "so that it holds Images/, lists/ (and Annotation/).")
LIST_FILES = {"train": "train_list.mat", "test": "test_list.mat"}


def _mat_strings(cells: np.ndarray) -> list[str]:
    """The strings of a MATLAB cell array as scipy.io.loadmat returns it."""
    return [str(np.asarray(c).ravel()[0]) for c in np.asarray(cells, dtype=object).ravel()]


def read_list(path: str | os.PathLike) -> pd.DataFrame:
    """One Stanford Dogs list file (``train_list.mat`` ...) as ``file, class_id`` rows."""
    from scipy.io import loadmat

    path = Path(path)
    try:
        mat = loadmat(path)
    except Exception as exc:
        raise DataError(f"{path}: not a readable MATLAB file ({exc})") from exc
    for field in ("file_list", "labels"):
        if field not in mat:
            found = sorted(k for k in mat if not k.startswith("__"))
            raise DataError(f"{path}: lacks the variable {field!r} (found {found})")
    files = _mat_strings(mat["file_list"])
    labels = np.asarray(mat["labels"]).ravel()
    if len(files) != len(labels):
        raise DataError(f"{path}: {len(files)} files but {len(labels)} labels")
    return pd.DataFrame({"file": files, "class_id": labels.astype(int)})


def breed_of(folder: str) -> tuple[str, str]:
    """``"n02085620-Chihuahua"`` -> ``("n02085620", "Chihuahua")``."""
    synset, sep, breed = folder.partition("-")
    if not sep or not breed:
        raise DataError(f"Stanford Dogs: class folder {folder!r} is not '<wnid>-<breed>'")
    return synset, breed


def read_box(path: Path) -> tuple[int, int, int, int]:
    """The first object's box ``(xmin, ymin, xmax, ymax)`` of a VOC annotation file."""
    if not path.is_file():
        raise DataError(f"missing annotation file: {path}")
    try:
        root = ET.parse(path).getroot()
        box = root.find("object/bndbox")
        xmin, ymin, xmax, ymax = (int(float(box.findtext(t))) for t in ("xmin", "ymin", "xmax", "ymax"))
        return xmin, ymin, xmax, ymax
    except (ET.ParseError, AttributeError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: malformed annotation (need object/bndbox/xmin..ymax): {exc}") from exc


def load_stanford_dogs(root: str | os.PathLike, *, val_fraction: float = 0.0, seed: int = 0,
                       annotations: bool = False, verify: str = "exists",
                       name: str = "stanford-dogs") -> ImageSet:
    """Stanford Dogs as an ImageSet (label = breed, split from the official lists).

    Columns: ``key`` (file stem), ``path``, ``label``, ``split``, ``synset``, ``class_id``
    (the lists' 1-based number) and, with ``annotations=True``, ``xmin ymin xmax ymax`` of
    the first annotated dog. ``verify``: ``"exists"`` checks every file exists,
    ``"decode"`` also decodes it, ``"none"`` skips the check. Missing or corrupt files and
    inconsistent lists (or a listed path leading outside ``Images/``) raise DataError naming the file.
    """
    root = as_root(root)
    images_dir = require(root / "Images", "Stanford Dogs", HOW_TO_GET)
    frames = []
    for split, fname in LIST_FILES.items():
        list_path = require(root / "lists" / fname, "Stanford Dogs", HOW_TO_GET)
        lst = read_list(list_path)
        lst["path"] = [str(confined(images_dir, f, f"{list_path}: file_list entry {i}"))
                       for i, f in enumerate(lst["file"], start=1)]
        lst["split"] = split
        frames.append(lst)
    items = pd.concat(frames, ignore_index=True)
    dup = items["file"].duplicated()
    if dup.any():
        raise DataError(f"Stanford Dogs: {items.loc[dup, 'file'].iloc[0]!r} is listed twice in {root / 'lists'}")
    folders = items["file"].map(lambda f: Path(f).parent.name)
    parsed = folders.map(breed_of)
    items["synset"] = parsed.map(lambda t: t[0])
    items["label"] = parsed.map(lambda t: t[1])
    ids_per_folder = items.groupby(folders)["class_id"].nunique()
    if (ids_per_folder > 1).any():
        bad = ids_per_folder[ids_per_folder > 1].index[0]
        raise DataError(f"Stanford Dogs: folder {bad!r} has several class numbers in {root / 'lists'}")
    items["key"] = items["file"].map(lambda f: Path(f).stem)
    if annotations:
        ann_dir = require(root / "Annotation", "Stanford Dogs", HOW_TO_GET)
        boxes = [read_box(ann_dir / Path(f).with_suffix("")) for f in items["file"]]
        items[["xmin", "ymin", "xmax", "ymax"]] = pd.DataFrame(boxes, index=items.index)
    check_images(items["path"], verify)
    items = carve_validation(items, val_fraction, seed)
    cols = ["key", "path", "label", "split", "synset", "class_id"]
    cols += ["xmin", "ymin", "xmax", "ymax"] if annotations else []
    return ImageSet(name, items[cols].reset_index(drop=True),
                    {"source": str(root), "format": "stanford-dogs", "val_fraction": val_fraction, "seed": seed})
