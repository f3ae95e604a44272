"""Fashion-MNIST (Debian ``dataset-fashion-mnist``): the larger labelled image set for scale.

The package installs Zalando's four gzipped IDX files in ``/usr/share/datasets/fashion-mnist``:
60,000 training and 10,000 test images, 28 x 28 grey levels, 10 balanced classes, MIT
licence. :func:`read_idx` parses IDX without helpers (magic number, dtype and shape checked;
a truncated or corrupt file raises :class:`~clickvision.data.base.DataError` naming it).
:func:`build` writes one compact ``fashion_mnist.npz`` (uint8 images and labels, the
official train/test split, plus a seeded, stratified validation split carved from train),
and :func:`load_fashion_mnist` returns it as an :class:`~clickvision.data.base.ImageSet`
with in-memory ``pixels``.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .. import paths
from ..io import atomic_path
from . import manifest
from .base import SPLITS, DataError, ImageSet, MissingSourceError

NAME = "fashion_mnist"
DEBIAN_PACKAGE = "dataset-fashion-mnist"
SOURCE_DIR = Path("/usr/share/datasets/fashion-mnist")
INSTALL_COMMAND = f"sudo apt-get install --no-install-recommends {DEBIAN_PACKAGE}"
LICENCE = "MIT (Zalando SE)"
SOURCE_FILES = {  # official split -> (images, labels)
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# Official label order (label id = position), from the Fashion-MNIST README.
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
VAL_PER_CLASS = 1000  # 10,000 validation images: as many as the official test set
SPLIT_CODES = {name: code for code, name in enumerate(SPLITS)}  # train 0, val 1, test 2
# IDX type byte -> numpy dtype (multi-byte types are big-endian).
IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}




def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """Parse an IDX file (gzipped or not) into an array of its declared dtype and shape.

    Header: two zero bytes, a type byte (``IDX_DTYPES``), the number of dimensions, then
    one big-endian uint32 per dimension; the data follow, row-major. ``ndim`` checks the
    rank (3 for images, 1 for labels).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"IDX file missing: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: corrupt or truncated gzip stream ({exc})") from exc
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in IDX_DTYPES or raw[3] == 0:
        raise DataError(f"{path}: not an IDX file (magic bytes {raw[:4].hex() or 'missing'})")
    dtype, rank = IDX_DTYPES[raw[2]], raw[3]
    if ndim is not None and rank != ndim:
        raise DataError(f"{path}: IDX file has {rank} dimensions, expected {ndim}")
    start = 4 + 4 * rank
    if len(raw) < start:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(rank))
    need = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - start != need:
        what = "truncated" if len(raw) - start < need else "has trailing bytes"
        raise DataError(f"{path}: {what}: shape {shape} needs {need} data bytes, found {len(raw) - start}")
    return np.frombuffer(raw, dtype=dtype, offset=start).reshape(shape).astype(dtype.newbyteorder("="))


def read_split(source_dir: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,) uint8) of the official ``"train"`` or ``"test"``."""
    image_file, label_file = (Path(source_dir) / f for f in SOURCE_FILES[split])
    images, labels = read_idx(image_file, ndim=3), read_idx(label_file, ndim=1)
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise DataError(f"{image_file}, {label_file}: expected unsigned-byte IDX data")
    if len(images) != len(labels):
        raise DataError(f"{image_file} has {len(images)} images but {label_file} has {len(labels)} labels")
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise DataError(f"{label_file}: label {int(labels.max())} outside 0-{len(CLASS_NAMES) - 1}")
    return images, labels


def stratified_val_split(labels: np.ndarray, val_per_class: int, seed: int) -> np.ndarray:
    """Boolean mask: ``val_per_class`` training images of every class, chosen by ``seed``."""
    labels = np.asarray(labels)
    if val_per_class < 0:
        raise ValueError(f"val_per_class must be >= 0, got {val_per_class}")
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) <= val_per_class:
            raise ValueError(f"val_per_class={val_per_class} leaves no training image of class {c} "
                             f"({len(members)} images)")
        mask[rng.choice(members, size=val_per_class, replace=False)] = True
    return mask


def artifact_path() -> Path:
    """``data/processed/fashion_mnist/fashion_mnist.npz`` (git-ignored)."""
    return paths.PROCESSED_DIR / NAME / f"{NAME}.npz"


def build(force: bool = False, *, val_per_class: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Parse the IDX files into one compressed ``.npz``; skip when built with these params.

    Arrays: ``images`` (70000, 28, 28) uint8 (official train first, then test), ``labels``
    uint8, ``split`` uint8 codes ``SPLIT_CODES`` (val carved from train, stratified).
    ``val_per_class`` defaults to ``VAL_PER_CLASS``. Raises :class:`MissingSourceError`
    with the ``apt-get`` command when the package is absent.
    """
    val_per_class = VAL_PER_CLASS if val_per_class is None else val_per_class
    params = {"val_per_class": int(val_per_class), "seed": int(seed), "layout": 1}
    if not force and manifest.is_built(NAME, params):
        return manifest.load_manifest()[NAME]
    missing = [SOURCE_DIR / f for pair in SOURCE_FILES.values() for f in pair if not (SOURCE_DIR / f).exists()]
    if missing:
        raise MissingSourceError(f"Fashion-MNIST source missing: {missing[0]} not found (Debian package "
                                 f"{DEBIAN_PACKAGE}). Install it with:\n    {INSTALL_COMMAND}")
    train_x, train_y = read_split(SOURCE_DIR, "train")
    test_x, test_y = read_split(SOURCE_DIR, "test")
    split = np.full(len(train_y) + len(test_y), SPLIT_CODES["test"], dtype=np.uint8)
    split[: len(train_y)] = np.where(stratified_val_split(train_y, val_per_class, seed),
                                     SPLIT_CODES["val"], SPLIT_CODES["train"])
    out = artifact_path()
    with atomic_path(out, suffix=".npz") as tmp:
        np.savez_compressed(tmp, images=np.concatenate([train_x, test_x]),
                            labels=np.concatenate([train_y, test_y]), split=split,
                            n_official_train=np.int64(len(train_y)))
    version = manifest.debian_version(DEBIAN_PACKAGE)
    counts = {name: int((split == code).sum()) for name, code in SPLIT_CODES.items()}
    entry = {"source": f"Debian {DEBIAN_PACKAGE} {version} ({SOURCE_DIR})", "version": version,
             "licence": LICENCE, "simulated": False, "committed": False,
             "counts": {"images": len(split), "classes": len(CLASS_NAMES), **counts},
             "params": params}
    return manifest.record_build(NAME, entry, [out])


def load_fashion_mnist(subset: str | Iterable[str] | None = None, seed: int = 0, *,
                       per_class: int | None = None) -> ImageSet:
    """Fashion-MNIST as an :class:`ImageSet` with ``pixels`` (N, 28, 28) uint8 (built on first use).

    ``subset``: a split name (``"train"``, ``"val"``, ``"test"``), several, or None (all).
    ``seed`` chooses the stratified validation images (re-drawn in memory if it differs
    from the built one). ``per_class`` keeps the first ``per_class`` images of each class
    in each split (seeded order), for quick profiles. ``items`` columns: key
    (``train-00042`` / ``test-00007``: official split and index), path (""), label (class
    name), class_id (official label id; ``meta["classes"]`` is that order), split.
    """
    entry = build()
    with np.load(artifact_path()) as npz:
        images, labels, split = npz["images"], npz["labels"], npz["split"].copy()
        n_train = int(npz["n_official_train"])
    if seed != entry["params"]["seed"]:
        val = stratified_val_split(labels[:n_train], entry["params"]["val_per_class"], seed)
        split[:n_train] = np.where(val, SPLIT_CODES["val"], SPLIT_CODES["train"])
    names = np.array(SPLITS)[split]
    keep = np.ones(len(split), dtype=bool)
    if subset is not None:
        wanted = [subset] if isinstance(subset, str) else list(subset)
        unknown = sorted(set(wanted) - set(SPLITS))
        if unknown:
            raise ValueError(f"subset must name splits from {SPLITS}, got {unknown}")
        keep &= np.isin(names, wanted)
    if per_class is not None:
        if per_class < 1:
            raise ValueError(f"per_class must be >= 1, got {per_class}")
        order = np.random.default_rng(seed).permutation(len(split))
        ranked = pd.DataFrame({"split": split[order], "label": labels[order]}).groupby(["split", "label"]).cumcount()
        chosen = np.zeros(len(split), dtype=bool)
        chosen[order[ranked.to_numpy() < per_class]] = True
        keep &= chosen
    index = np.flatnonzero(keep)
    official = np.where(index < n_train, "train", "test")
    position = np.where(index < n_train, index, index - n_train)
    items = pd.DataFrame({
        "key": [f"{o}-{p:05d}" for o, p in zip(official, position)],
        "path": "", "label": np.array(CLASS_NAMES)[labels[index]],
        "class_id": labels[index].astype(np.int64), "split": names[index],
    })
    meta = {"source": entry["source"], "licence": LICENCE, "classes": list(CLASS_NAMES),
            "val_per_class": entry["params"]["val_per_class"], "seed": seed}
    return ImageSet("fashion_mnist", items, meta, images[index])
