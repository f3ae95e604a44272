"""Stanford Dogs and CUB-200-2011 loaders on fixtures in their original layouts."""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from clickvision.data.base import DataError, ImageSet, MissingSourceError
from clickvision.data.originals import load_cub, load_stanford_dogs
from clickvision.data.originals.stanford_dogs import read_list

ROOT = Path(__file__).parent / "fixtures" / "originals"
_spec = importlib.util.spec_from_file_location("make_fixtures", ROOT / "make_fixtures.py")
make_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_fixtures)


def _copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(ROOT / name, tmp_path / name))


def _mean_rgb(s: ImageSet, i: int) -> np.ndarray:
    return np.asarray(s.load_image(i), float).mean(axis=(0, 1))


def _assert_colours_match_labels(s: ImageSet) -> None:
    """Each fixture class has its own colour: a loader that mixes up files and labels fails."""
    for i, label in enumerate(s.items["label"]):
        assert np.abs(_mean_rgb(s, i) - make_fixtures.COLOURS[label]).max() < 40, (i, label)


# ---------------------------------------------------------------- Stanford Dogs
def test_stanford_dogs_fixture():
    s = load_stanford_dogs(ROOT / "stanford_dogs", annotations=True, verify="decode")
    assert isinstance(s, ImageSet) and len(s) == 6
    assert s.classes == ["Chihuahua", "Japanese_spaniel"]
    assert s.items["split"].value_counts().to_dict() == {"train": 4, "test": 2}
    row = s.items.set_index("key").loc["n02085782_1002"]
    assert (row["label"], row["split"], row["synset"], row["class_id"]) == ("Japanese_spaniel", "test", "n02085782", 2)
    assert (row["xmin"], row["ymin"], row["xmax"], row["ymax"]) == (2, 1, 6, 7)
    assert Path(row["path"]).is_absolute() and Path(row["path"]).is_file()
    _assert_colours_match_labels(s)


def test_stanford_dogs_list_reader_and_validation_carve():
    lst = read_list(ROOT / "stanford_dogs" / "lists" / "train_list.mat")
    assert lst["file"].tolist()[0] == "n02085620-Chihuahua/n02085620_1000.jpg"
    assert lst["class_id"].tolist() == [1, 1, 2, 2]
    s = load_stanford_dogs(ROOT / "stanford_dogs", val_fraction=0.5, seed=3)
    counts = s.items.groupby(["label", "split"]).size().to_dict()
    assert counts == {("Chihuahua", "test"): 1, ("Chihuahua", "train"): 1, ("Chihuahua", "val"): 1,
                      ("Japanese_spaniel", "test"): 1, ("Japanese_spaniel", "train"): 1,
                      ("Japanese_spaniel", "val"): 1}
    again = load_stanford_dogs(ROOT / "stanford_dogs", val_fraction=0.5, seed=3)
    assert again.items["split"].tolist() == s.items["split"].tolist()
    official = load_stanford_dogs(ROOT / "stanford_dogs").items.set_index("key")["split"]
    carved = s.items.set_index("key")["split"]
    assert (official[carved == "val"] == "train").all()  # val comes out of train only
    assert (carved[official == "test"] == "test").all()  # the official test set is untouched


def test_stanford_dogs_missing_image_named(tmp_path):
    root = _copy("stanford_dogs", tmp_path)
    gone = root / "Images" / "n02085620-Chihuahua" / "n02085620_1001.jpg"
    gone.unlink()
    with pytest.raises(DataError, match="missing image file") as err:
        load_stanford_dogs(root)
    assert str(gone) in str(err.value)


def test_stanford_dogs_corrupt_image_named(tmp_path):
    root = _copy("stanford_dogs", tmp_path)
    bad = root / "Images" / "n02085782-Japanese_spaniel" / "n02085782_1000.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    s = load_stanford_dogs(root)  # "exists" does not open files ...
    with pytest.raises(DataError, match="corrupt") as err:  # ... using the image names it
        s.load_image(int(np.flatnonzero(s.items["key"] == "n02085782_1000")[0]))
    assert str(bad) in str(err.value)
    with pytest.raises(DataError, match="corrupt") as err:  # "decode" checks up front
        load_stanford_dogs(root, verify="decode")
    assert str(bad) in str(err.value)


def test_stanford_dogs_missing_lists_and_bad_annotation(tmp_path):
    root = _copy("stanford_dogs", tmp_path)
    (root / "Annotation" / "n02085620-Chihuahua" / "n02085620_1000").write_text("<annotation><object>")
    with pytest.raises(DataError, match="malformed annotation") as err:
        load_stanford_dogs(root, annotations=True)
    assert "n02085620_1000" in str(err.value)
    (root / "lists" / "test_list.mat").write_bytes(b"not a mat file")
    with pytest.raises(DataError, match="test_list.mat"):
        load_stanford_dogs(root)
    (root / "lists" / "test_list.mat").unlink()
    with pytest.raises(MissingSourceError, match="vision.stanford.edu"):
        load_stanford_dogs(root)


# ---------------------------------------------------------------- CUB-200-2011
def test_cub_fixture_from_parent_or_inner_folder():
    s = load_cub(ROOT / "cub", boxes=True, verify="decode")
    inner = load_cub(ROOT / "cub" / "CUB_200_2011")
    assert s.items["path"].tolist() == inner.items["path"].tolist()
    assert len(s) == 6 and s.classes == ["Black_footed_Albatross", "Laysan_Albatross"]
    assert s.items["split"].tolist() == ["train", "train", "test"] * 2
    row = s.items.set_index("image_id").loc[6]
    assert (row["label"], row["class_id"], row["key"]) == ("Laysan_Albatross", 2, "Laysan_Albatross_0003_106")
    assert (row["x"], row["y"], row["width"], row["height"]) == (2.0, 1.0, 7.0, 6.0)
    _assert_colours_match_labels(s)


def test_cub_validation_carve_is_stratified():
    s = load_cub(ROOT / "cub", val_fraction=0.5)
    assert s.items.groupby("label")["split"].apply(lambda x: sorted(x)).tolist() == [["test", "train", "val"]] * 2


@pytest.mark.parametrize("fname, edit, message", [
    ("images.txt", lambda t: t + "7 001.Black_footed_Albatross/x.jpg extra\n", r"images.txt:7: expected 2 fields"),
    ("image_class_labels.txt", lambda t: t.replace("3 1\n", "3 one\n"), r"image_class_labels.txt:3: class id must be"),
    ("image_class_labels.txt", lambda t: t.replace("3 1\n", "3 9\n"), r"image_class_labels.txt:3: class id 9 not in"),
    ("image_class_labels.txt", lambda t: t.replace("3 1\n", "3 2\n"), r"images.txt:3: .* not in its class folder"),
    ("train_test_split.txt", lambda t: t.replace("2 1\n", ""), r"train_test_split.txt: no row for image id 2"),
    ("train_test_split.txt", lambda t: t.replace("2 1\n", "2 yes\n"), r"train_test_split.txt:2: split flag"),
    ("images.txt", lambda t: t + t.splitlines()[0] + "\n", r"images.txt:7: id 1 already defined on line 1"),
])
def test_cub_malformed_tables_name_file_and_line(tmp_path, fname, edit, message):
    root = _copy("cub", tmp_path) / "CUB_200_2011"
    (root / fname).write_text(edit((root / fname).read_text()))
    with pytest.raises(DataError, match=message):
        load_cub(root)


def test_cub_missing_and_corrupt_image_named(tmp_path):
    root = _copy("cub", tmp_path) / "CUB_200_2011"
    rel = (root / "images.txt").read_text().splitlines()[4].split()[1]
    (root / "images" / rel).write_bytes(b"GIF89a broken")
    with pytest.raises(DataError, match="corrupt") as err:
        load_cub(root, verify="decode")
    assert rel in str(err.value)
    (root / "images" / rel).unlink()
    with pytest.raises(DataError, match="missing image file") as err:
        load_cub(root)
    assert rel in str(err.value)
    with pytest.raises(MissingSourceError, match="CUB_200_2011.tgz"):
        load_cub(tmp_path / "nowhere")
