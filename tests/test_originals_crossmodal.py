"""Wikipedia, NUS-WIDE-10k and Pascal Sentences loaders on fixtures in their (documented) layouts."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from clickvision.data.base import DataError, ImageSet, MissingSourceError
from clickvision.data.originals import load_nus_wide_10k, load_pascal_sentences, load_wikipedia
from clickvision.data.originals._common import assign_splits

ROOT = Path(__file__).parent / "fixtures" / "originals"


def _copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(ROOT / name, tmp_path / name))


# ---------------------------------------------------------------- Wikipedia
def test_wikipedia_fixture():
    s = load_wikipedia(ROOT / "wikipedia", verify="decode")
    assert isinstance(s, ImageSet) and len(s) == 6
    assert s.meta["categories"] == ["art", "biology", "sport"]
    assert s.items["split"].value_counts().to_dict() == {"train": 4, "test": 2}
    row = s.items.set_index("key").loc["0004da7a04"]
    assert (row["label"], row["split"], row["text_id"]) == ("biology", "test", "0004c0ffee04-2")
    # the raw '&' (malformed XML, as in the real release) is survived and '&amp;' unescaped
    assert row["text"] == "A fixture article about biology number 4. Fish & chips & more."
    assert all(f"about {lab} number" in t for lab, t in zip(s.items["label"], s.items["text"]))


def test_wikipedia_validation_from_test_list():
    s = load_wikipedia(ROOT / "wikipedia", val_size=1, seed=5)
    assert s.items["split"].value_counts().to_dict() == {"train": 4, "test": 1, "val": 1}
    official = load_wikipedia(ROOT / "wikipedia").items.set_index("key")["split"]
    assert (official[s.items.set_index("key")["split"] == "val"] == "test").all()
    with pytest.raises(ValueError, match="val_size"):
        load_wikipedia(ROOT / "wikipedia", val_size=3)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t + "abc\tdef\n", r"trainset_txt_img_cat.list:5: expected 3 fields"),
    (lambda t: t + "abc\tdef\t11\n", r"trainset_txt_img_cat.list:5: category number 11 outside 1..3"),
    (lambda t: t + "abc\tdef\tart\n", r"trainset_txt_img_cat.list:5: category number must be an integer"),
])
def test_wikipedia_malformed_list_line_named(tmp_path, edit, message):
    root = _copy("wikipedia", tmp_path)
    lst = root / "trainset_txt_img_cat.list"
    lst.write_text(edit(lst.read_text()))
    with pytest.raises(DataError, match=message):
        load_wikipedia(root)


def test_wikipedia_missing_text_image_and_source(tmp_path):
    root = _copy("wikipedia", tmp_path)
    xml = root / "texts" / "0003c0ffee03-1.xml"
    xml.write_text("<document><title>no text element</title></document>")
    with pytest.raises(DataError, match="no <text> element") as err:
        load_wikipedia(root)
    assert str(xml) in str(err.value)
    xml.unlink()
    with pytest.raises(DataError, match="missing text file"):
        load_wikipedia(root)
    img = root / "images" / "sport" / "0006da7a06.jpg"
    img.unlink()
    with pytest.raises(DataError, match="missing image file") as err:
        load_wikipedia(root)
    assert str(img) in str(err.value)
    (root / "categories.list").unlink()
    with pytest.raises(MissingSourceError, match="wikipedia_dataset.zip"):
        load_wikipedia(root)


# ---------------------------------------------------------------- NUS-WIDE-10k
def test_nus_wide_10k_fixture_and_generated_split():
    s = load_nus_wide_10k(ROOT / "nus_wide_10k", verify="decode")
    assert len(s) == 20 and s.classes == ["animal", "sky"]
    assert s.items.set_index("key").loc["2000000103", "text"] == "sky fixture tag0"
    counts = s.items.groupby(["label", "split"]).size().unstack().to_dict("index")
    assert counts == {"animal": {"test": 1, "train": 8, "val": 1}, "sky": {"test": 1, "train": 8, "val": 1}}
    again = load_nus_wide_10k(ROOT / "nus_wide_10k")
    assert again.items["split"].tolist() == s.items["split"].tolist()
    other = load_nus_wide_10k(ROOT / "nus_wide_10k", seed=1)
    assert other.items["split"].tolist() != s.items["split"].tolist()
    assert "1999999999" not in set(s.items["key"])  # tags of images outside the set are ignored


def test_nus_wide_10k_split_file_and_errors(tmp_path):
    root = _copy("nus_wide_10k", tmp_path)
    keys = sorted(p.stem for p in (root / "images").rglob("*.jpg"))
    (root / "split.tsv").write_text("".join(f"{k}\t{'test' if i < 3 else 'train'}\n" for i, k in enumerate(keys)))
    s = load_nus_wide_10k(root)
    assert s.items["split"].value_counts().to_dict() == {"train": 17, "test": 3}
    (root / "split.tsv").write_text("".join(f"{k}\ttrain\n" for k in keys) + f"{keys[0]}\tholdout\n")
    with pytest.raises(DataError, match=r"split.tsv:21: split must be one of"):
        load_nus_wide_10k(root)
    (root / "split.tsv").write_text("".join(f"{k}\ttrain\n" for k in keys[1:]))
    with pytest.raises(DataError, match=rf"no split for 1 items, e.g. \['{keys[0]}'\]"):
        load_nus_wide_10k(root)
    (root / "split.tsv").unlink()
    tags = root / "All_Tags.txt"
    tags.write_text("".join(line + "\n" for line in tags.read_text().splitlines() if not line.startswith("2000000005")))
    with pytest.raises(DataError, match="no tag line for image '2000000005'"):
        load_nus_wide_10k(root)


def test_nus_wide_10k_corrupt_image_named(tmp_path):
    root = _copy("nus_wide_10k", tmp_path)
    bad = root / "images" / "sky" / "2000000107.jpg"
    bad.write_bytes(b"")
    with pytest.raises(DataError, match="corrupt") as err:
        load_nus_wide_10k(root, verify="decode")
    assert str(bad) in str(err.value)


# ---------------------------------------------------------------- Pascal Sentences
def test_pascal_sentences_fixture_with_split_file():
    s = load_pascal_sentences(ROOT / "pascal_sentences", verify="decode")
    assert len(s) == 10 and s.classes == ["aeroplane", "bird"]
    assert s.items["split"].value_counts().to_dict() == {"train": 6, "val": 2, "test": 2}
    text = s.items.set_index("key").loc["2008_001004", "text"]
    assert text.split("\n") == [f"A fixture sentence {k} about a bird." for k in range(5)]
    rgb = np.asarray(s.load_image(0), float).mean(axis=(0, 1))
    assert rgb[1] > 150 > rgb[0]  # aeroplanes are green in the fixture


def test_pascal_sentences_missing_sentence_file_and_image(tmp_path):
    root = _copy("pascal_sentences", tmp_path)
    (root / "split.tsv").unlink()
    s = load_pascal_sentences(root, fractions=(0.6, 0.2, 0.2))
    assert s.items.groupby("label")["split"].apply(sorted).tolist() == [["test", "train", "train", "train", "val"]] * 2
    sent = root / "sentence" / "bird" / "2008_001002.txt"
    sent.write_text("\n  \n")
    with pytest.raises(DataError, match="no sentences"):
        load_pascal_sentences(root)
    sent.unlink()
    with pytest.raises(DataError, match="missing sentence file") as err:
        load_pascal_sentences(root)
    assert str(sent) in str(err.value)
    shutil.rmtree(root / "dataset")
    with pytest.raises(MissingSourceError, match="Pascal Sentences"):
        load_pascal_sentences(root)


def test_assign_splits_exact_counts_and_order_independence():
    import pandas as pd

    items = pd.DataFrame({"key": [f"k{i}" for i in range(100)], "label": ["a"] * 50 + ["b"] * 50})
    split = assign_splits(items, (0.8, 0.1, 0.1), seed=0)
    assert split.groupby(items["label"]).value_counts().to_dict() == {
        ("a", "train"): 40, ("a", "test"): 5, ("a", "val"): 5,
        ("b", "train"): 40, ("b", "test"): 5, ("b", "val"): 5}
    shuffled = items.sample(frac=1, random_state=1)
    assert assign_splits(shuffled, (0.8, 0.1, 0.1), seed=0).sort_index().tolist() == split.tolist()
    with pytest.raises(ValueError, match="summing to 1"):
        assign_splits(items, (0.8, 0.1, 0.2), seed=0)
