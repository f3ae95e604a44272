"""Fashion-MNIST: IDX parsing, the stratified validation split, build and load.

The fixture is a tiny IDX set written here byte by byte (struct), independently of the
parser under test.
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from clickvision import paths
from clickvision.data import fashion_mnist as fm
from clickvision.data import manifest
from clickvision.data.base import DataError, MissingSourceError

N_TRAIN_PER_CLASS, N_TEST_PER_CLASS = 4, 2


def idx_bytes(type_byte: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    return bytes([0, 0, type_byte, len(shape)]) + b"".join(struct.pack(">I", d) for d in shape) + payload


def write_fixture(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Official-layout gz files; image i of a split is filled with the value i (so order is visible)."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, per_class in (("train", N_TRAIN_PER_CLASS), ("test", N_TEST_PER_CLASS)):
        labels = np.tile(np.arange(10, dtype=np.uint8), per_class)  # 0..9, 0..9, ...
        images = np.repeat(np.arange(len(labels), dtype=np.uint8), 28 * 28).reshape(-1, 28, 28)
        image_file, label_file = fm.SOURCE_FILES[split]
        (folder / image_file).write_bytes(gzip.compress(idx_bytes(0x08, images.shape, images.tobytes())))
        (folder / label_file).write_bytes(gzip.compress(idx_bytes(0x08, labels.shape, labels.tobytes())))
        arrays[split] = (images, labels)
    return arrays


@pytest.fixture
def project(tmp_path, monkeypatch):
    """Scratch project root and a tiny source folder in the package's layout."""
    for name, rel in (("PROJ_ROOT", ""), ("DATA_DIR", "data"), ("RAW_DIR", "data/raw"),
                      ("PROCESSED_DIR", "data/processed")):
        monkeypatch.setattr(paths, name, tmp_path / rel)
    monkeypatch.setattr(manifest, "MANIFEST", tmp_path / "data" / "MANIFEST.json")
    monkeypatch.setattr(fm, "SOURCE_DIR", tmp_path / "source")
    monkeypatch.setattr(fm, "VAL_PER_CLASS", 1)
    return tmp_path


# --------------------------------------------------------------------------- IDX
def test_read_idx_round_trip_plain_and_gzip(tmp_path):
    data = (np.arange(24) - 5).astype(">i4").reshape(2, 3, 4)  # big-endian, as IDX stores it
    raw = idx_bytes(0x0C, data.shape, data.tobytes())
    (tmp_path / "a.idx").write_bytes(raw)
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(raw))
    for name in ("a.idx", "a.idx.gz"):
        out = fm.read_idx(tmp_path / name, ndim=3)
        assert out.shape == (2, 3, 4) and out.dtype == np.int32 and out.dtype.isnative
        np.testing.assert_array_equal(out, np.arange(24).reshape(2, 3, 4) - 5)


@pytest.mark.parametrize("raw, message", [
    (b"\x00\x00\x08\x01\x00\x00\x00\x05" + bytes(4), r"truncated: shape \(5,\) needs 5 data bytes, found 4"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x02" + bytes(3), "has trailing bytes"),
    (b"\x00\x01\x08\x01\x00\x00\x00\x01" + bytes(1), "not an IDX file"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01" + bytes(1), "not an IDX file"),  # unknown type byte
    (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
    (b"", "not an IDX file"),
])
def test_bad_idx_names_the_file(tmp_path, raw, message):
    path = tmp_path / "bad-labels-idx1-ubyte"
    path.write_bytes(raw)
    with pytest.raises(DataError, match=f"bad-labels-idx1-ubyte: {message}"):
        fm.read_idx(path)


def test_wrong_rank_and_corrupt_gzip(tmp_path):
    path = tmp_path / "labels.idx"
    path.write_bytes(idx_bytes(0x08, (2, 2), bytes(4)))
    with pytest.raises(DataError, match=r"labels\.idx: IDX file has 2 dimensions, expected 1"):
        fm.read_idx(path, ndim=1)
    gz = tmp_path / "images.gz"
    gz.write_bytes(gzip.compress(idx_bytes(0x08, (3, 28, 28), bytes(3 * 784)))[:-30])
    with pytest.raises(DataError, match=r"images\.gz: corrupt or truncated gzip"):
        fm.read_idx(gz)


def test_read_split_checks_pairing_and_label_range(tmp_path):
    write_fixture(tmp_path)
    image_file, label_file = fm.SOURCE_FILES["test"]
    (tmp_path / label_file).write_bytes(gzip.compress(idx_bytes(0x08, (3,), bytes([0, 1, 2]))))
    with pytest.raises(DataError, match="has 20 images but .* has 3 labels"):
        fm.read_split(tmp_path, "test")
    (tmp_path / label_file).write_bytes(gzip.compress(idx_bytes(0x08, (20,), bytes([10] * 20))))
    with pytest.raises(DataError, match=r"label 10 outside 0-9"):
        fm.read_split(tmp_path, "test")


# --------------------------------------------------------------------------- val split
def test_stratified_val_split_is_exact_seeded_and_disjoint():
    labels = np.repeat(np.arange(5), [10, 20, 30, 40, 50])
    mask = fm.stratified_val_split(labels, 3, seed=7)
    assert np.bincount(labels[mask]).tolist() == [3] * 5
    np.testing.assert_array_equal(mask, fm.stratified_val_split(labels, 3, seed=7))
    assert not np.array_equal(mask, fm.stratified_val_split(labels, 3, seed=8))
    with pytest.raises(ValueError, match="val_per_class=10 leaves no training image of class 0"):
        fm.stratified_val_split(labels, 10, seed=0)


# --------------------------------------------------------------------------- build / load
def test_build_and_load_fixture(project):
    arrays = write_fixture(project / "source")
    entry = fm.build()
    assert entry["counts"] == {"images": 60, "classes": 10, "train": 30, "val": 10, "test": 20}
    assert entry["params"] == {"val_per_class": 1, "seed": 0, "layout": 1}
    npz = project / "data/processed/fashion_mnist/fashion_mnist.npz"
    stamp = npz.stat().st_mtime_ns
    assert fm.build() == entry and npz.stat().st_mtime_ns == stamp  # skipped

    data = fm.load_fashion_mnist()
    assert data.pixels.shape == (60, 28, 28) and data.pixels.dtype == np.uint8
    items = data.items
    assert items["key"].iloc[0] == "train-00000" and items["key"].iloc[40] == "test-00000"
    # image i of a split holds the value i; keys and pixels stay aligned
    assert data.pixels[41, 5, 5] == 1 and items["key"].iloc[41] == "test-00001"
    assert items["label"].iloc[3] == "Dress" and items["class_id"].iloc[3] == arrays["train"][1][3] == 3
    assert (items["split"].iloc[40:] == "test").all()
    val = data.split("val")
    assert sorted(val.items["class_id"]) == list(range(10))
    assert all(k.startswith("train-") for k in val.items["key"])
    assert data.meta["classes"][0] == "T-shirt/top" and data.meta["classes"][9] == "Ankle boot"


def test_load_subsets_seed_and_per_class(project):
    write_fixture(project / "source")
    test = fm.load_fashion_mnist("test")
    assert len(test) == 20 and set(test.items["split"]) == {"test"}
    both = fm.load_fashion_mnist(["train", "val"])
    assert len(both) == 40 and set(both.items["key"].str[:5]) == {"train"}
    other = fm.load_fashion_mnist("val", seed=1)
    assert len(other) == 10 and set(other.items["key"]) != set(fm.load_fashion_mnist("val").items["key"])
    small = fm.load_fashion_mnist("train", per_class=2)
    assert np.bincount(small.items["class_id"]).tolist() == [2] * 10
    with pytest.raises(ValueError, match="subset must name splits"):
        fm.load_fashion_mnist("dev")


def test_missing_package_says_how_to_install(project):
    with pytest.raises(MissingSourceError,
                       match="apt-get install --no-install-recommends dataset-fashion-mnist"):
        fm.build()
    assert not (project / "data").exists()


def test_corrupt_source_leaves_nothing_written(project):
    write_fixture(project / "source")
    path = project / "source" / fm.SOURCE_FILES["test"][0]
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-10]))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: truncated"):
        fm.build()
    assert not (project / "data" / "processed" / "fashion_mnist").exists()
    assert not (project / "data" / "MANIFEST.json").exists()


@pytest.mark.skipif(not (fm.SOURCE_DIR / fm.SOURCE_FILES["test"][0]).exists(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_real_files_counts_and_first_labels():
    train_labels = fm.read_idx(fm.SOURCE_DIR / fm.SOURCE_FILES["train"][1], ndim=1)
    images, labels = fm.read_split(fm.SOURCE_DIR, "test")
    assert len(train_labels) == 60_000 and images.shape == (10_000, 28, 28)
    assert np.bincount(train_labels).tolist() == [6000] * 10
    assert np.bincount(labels).tolist() == [1000] * 10
    assert train_labels[:3].tolist() == [9, 0, 0] and labels[:2].tolist() == [9, 2]
