"""Amazon product data (McAuley) loader on fixtures of the 2014 and 2018 file formats."""
from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from clickvision.data.base import DataError, Interactions
from clickvision.data.originals import iter_metadata, iter_reviews, load_amazon
from clickvision.data.originals.amazon import CSV_2018

FIX = Path(__file__).parent / "fixtures" / "originals" / "amazon"
REVIEWS_2014 = FIX / "2014" / "reviews_Toys_and_Games_5.json"
META_2014 = FIX / "2014" / "meta_Toys_and_Games.json"


def test_amazon_2014_reviews_and_loose_json_metadata():
    data = load_amazon(REVIEWS_2014, META_2014, image_dir=FIX / "2014" / "images")
    assert isinstance(data, Interactions)
    assert data.events.values.tolist() == [
        ["A1USERX", "B000TOY001", 5.0, 1252800000], ["A1USERX", "B000TOY002", 3.0, 1262800000],
        ["A2USERY", "B000TOY001", 4.0, 1300000000], ["A3USERZ", "B000TOY003", 1.0, 1400000000]]
    assert (data.n_users, data.n_items) == (3, 3)
    assert data.density() == pytest.approx(4 / 9)
    items = data.items.set_index("item")
    assert list(items.index) == ["B000TOY001", "B000TOY002", "B000TOY003"]  # unreviewed B000TOY099 left out
    bear = items.loc["B000TOY001"]
    assert bear["labels"].split("|") == ["Toys & Games", "Stuffed Animals & Plush", "Baby & Toddler Toys"]
    assert bear["image_url"].endswith("fixture1.jpg") and bear["title"] == "Fixture Plush Bear"
    assert Path(bear["path"]).is_file() and items.loc["B000TOY002", "path"] == ""
    assert items.loc["B000TOY003"].tolist() == ["", "", "", ""]  # reviewed, no metadata


def test_amazon_options_drop_root_and_keep_unreviewed():
    data = load_amazon(REVIEWS_2014, META_2014, drop_root_category=True, keep_unreviewed=True)
    items = data.items.set_index("item")
    assert items.loc["B000TOY001", "labels"] == "Stuffed Animals & Plush|Baby & Toddler Toys"
    assert items.loc["B000TOY099", "labels"] == "" and items.loc["B000TOY099", "title"] == "Never reviewed"


def test_amazon_2018_json_and_ratings_csv_agree_with_2014(tmp_path):
    ref = load_amazon(REVIEWS_2014).events
    assert load_amazon(FIX / "2018" / "Toys_and_Games_5.json").events.equals(ref)
    assert load_amazon(FIX / "2014" / "ratings_Toys_and_Games.csv").events.equals(ref)
    swapped = tmp_path / "ratings_2018.csv"  # the 2018 ratings-only files put the item first
    swapped.write_text("".join(f"{i},{u},{r},{t}\n" for u, i, r, t in ref.itertuples(index=False)))
    assert load_amazon(swapped, csv_columns=CSV_2018).events.equals(ref)
    meta = {m["item"]: m for m in iter_metadata(FIX / "2018" / "meta_Toys_and_Games.json")}
    assert meta["B000TOY001"]["image_url"] == "https://images-na.ssl-images-amazon.com/images/I/f1.jpg"
    assert meta["B000TOY001"]["labels"] == "Toys & Games|Stuffed Animals & Plush Toys"
    assert meta["B000TOY002"] == {"item": "B000TOY002", "title": "Fixture Toy Car", "labels": "", "image_url": ""}


def test_amazon_2023_fields(tmp_path):
    rev = tmp_path / "Toys.jsonl"
    rev.write_text(json.dumps({"rating": 4.0, "title": "t", "text": "x", "images": [], "asin": "B1V",
                               "parent_asin": "B1", "user_id": "U1", "timestamp": 1588687728923}) + "\n")
    meta = tmp_path / "meta_Toys.jsonl"
    meta.write_text(json.dumps({"main_category": "Toys", "title": "Kite", "parent_asin": "B1",
                                "categories": ["Toys &amp; Games", "Outdoor Play", "Kites"],
                                "images": [{"thumb": "t.jpg", "large": "l.jpg", "hi_res": None}]}) + "\n")
    data = load_amazon(rev, meta)
    assert data.events.values.tolist() == [["U1", "B1", 4.0, 1588687728]]
    assert data.items.loc[0, ["labels", "image_url"]].tolist() == ["Toys & Games|Outdoor Play|Kites", "l.jpg"]


def test_amazon_gzip_by_suffix(tmp_path):
    for src in (REVIEWS_2014, META_2014):
        with gzip.open(tmp_path / (src.name + ".gz"), "wb") as fh:
            fh.write(src.read_bytes())
    data = load_amazon(tmp_path / (REVIEWS_2014.name + ".gz"), tmp_path / (META_2014.name + ".gz"))
    ref = load_amazon(REVIEWS_2014, META_2014)
    assert data.events.equals(ref.events) and data.items.equals(ref.items)


@pytest.mark.parametrize("line, message", [
    ('{"reviewerID": "A9", "asin": "B9", "overall": 5.0', "neither JSON nor a Python literal"),
    ('{"reviewerID": "A9", "asin": "B9", "unixReviewTime": 1}', "no rating"),
    ('{"reviewerID": "A9", "overall": 2.0, "unixReviewTime": 1}', "no item id"),
    ('{"reviewerID": "A9", "asin": "B9", "overall": "five", "unixReviewTime": 1}', "rating must be a number"),
    ('{"reviewerID": "A9", "asin": "B9", "overall": 5.0}', "no unixReviewTime"),
    ('["A9", "B9", 5.0, 1]', "expected an object"),
])
def test_amazon_malformed_review_line_named(tmp_path, line, message):
    p = tmp_path / "reviews.json"
    p.write_text(REVIEWS_2014.read_text() + line + "\n")
    with pytest.raises(DataError, match=message) as err:
        load_amazon(p)
    assert f"{p}:5:" in str(err.value)


def test_amazon_malformed_metadata_and_csv_lines_named(tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_text(META_2014.read_text() + "{'asin': 'B1', 'categories': 'Toys'}\n")
    with pytest.raises(DataError, match=rf"{meta}:4: categories must be a list"):
        list(iter_metadata(meta))
    meta.write_text(META_2014.read_text() + "{'asin': 'B1', 'title': __import__('os')}\n")
    with pytest.raises(DataError, match=rf"{meta}:4: neither JSON nor a Python literal"):
        load_amazon(REVIEWS_2014, meta)
    csv = tmp_path / "ratings.csv"
    shutil.copy(FIX / "2014" / "ratings_Toys_and_Games.csv", csv)
    csv.write_text(csv.read_text() + "A9,B9,5.0\n")
    with pytest.raises(DataError, match=rf"{csv}:5: expected 4 comma-separated fields"):
        list(iter_reviews(csv))
    csv.write_text("A9,B9,5.0,yesterday\n")
    with pytest.raises(DataError, match=rf"{csv}:1: timestamp must be an integer"):
        list(iter_reviews(csv))
