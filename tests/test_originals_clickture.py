"""Clickture readers/writers (clickvision.click.log, data.originals.clickture) on fixtures in MSR's layout."""
from __future__ import annotations

import base64
import gzip
import io
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clickvision.click.log import (CLICKTURE_COLUMNS, MSR_TRAIN_COLUMNS, ClickRecord, iter_click_log,
                                   read_click_log, write_click_log)
from clickvision.data.base import DataError
from clickvision.data.originals import clickture

FIX = Path(__file__).parent / "fixtures" / "originals" / "clickture"


def _tmp_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIX, tmp_path / "clickture"))


# ---------------------------------------------------------------- click log: reading
def test_msr_click_log_read_in_msr_column_order():
    rows = list(iter_click_log(FIX / "TrainClickLog.tsv", columns=MSR_TRAIN_COLUMNS))
    assert len(rows) == 8
    assert rows[0] == ClickRecord("chihuahua puppy", "M1hZc2VhcmNoRG9n", 12)
    assert all(isinstance(r.clicks, int) and r.clicks >= 1 for r in rows)
    # hand count: clicks per query over the fixture
    per_query = pd.DataFrame(rows).groupby("query")["clicks"].sum().to_dict()
    assert per_query == {"chihuahua puppy": 13, "small dog": 4, "chihuahua": 7,
                         "japanese spaniel": 5, "japanese chin dog": 2, "dog show winner": 4}


def test_columns_must_be_a_permutation_of_the_three_fields():
    with pytest.raises(ValueError, match="ordering"):
        list(iter_click_log(FIX / "TrainClickLog.tsv", columns=("key", "key", "clicks")))


def test_write_then_read_roundtrip_project_order(tmp_path):
    recs = [ClickRecord("red fox", "k1", 3), ("fox", "k2", 1), ClickRecord("fox", "k1", np.int64(7))]
    n = write_click_log(recs, tmp_path / "log.tsv")
    assert n == 3
    assert (tmp_path / "log.tsv").read_text() == "red fox\tk1\t3\nfox\tk2\t1\nfox\tk1\t7\n"
    assert list(iter_click_log(tmp_path / "log.tsv")) == [ClickRecord("red fox", "k1", 3),
                                                           ClickRecord("fox", "k2", 1),
                                                           ClickRecord("fox", "k1", 7)]
    df = read_click_log(tmp_path / "log.tsv")
    assert list(df.columns) == list(CLICKTURE_COLUMNS) and df["clicks"].sum() == 11


def test_write_in_msr_order_and_gzip_is_deterministic(tmp_path):
    recs = list(iter_click_log(FIX / "TrainClickLog.tsv", columns=MSR_TRAIN_COLUMNS))
    write_click_log(recs, tmp_path / "a.tsv.gz", columns=MSR_TRAIN_COLUMNS)
    write_click_log(recs, tmp_path / "sub" / "b.tsv.gz", columns=MSR_TRAIN_COLUMNS)
    assert (tmp_path / "a.tsv.gz").read_bytes() == (tmp_path / "sub" / "b.tsv.gz").read_bytes()
    with gzip.open(tmp_path / "a.tsv.gz", "rt") as fh:
        assert fh.read() == (FIX / "TrainClickLog.tsv").read_text()
    assert list(iter_click_log(tmp_path / "a.tsv.gz", MSR_TRAIN_COLUMNS)) == recs


def test_crlf_and_blank_lines_tolerated(tmp_path):
    p = tmp_path / "log.tsv"
    p.write_bytes(b"q one\tk1\t2\r\n\r\nq two\tk2\t5\r\n\n")
    assert list(iter_click_log(p)) == [ClickRecord("q one", "k1", 2), ClickRecord("q two", "k2", 5)]


# ---------------------------------------------------------------- click log: bad input
@pytest.mark.parametrize("line, message", [
    ("dog\tk9\n", "expected 3 tab-separated fields"),
    ("dog\tk9\t3\textra\n", "expected 3 tab-separated fields"),
    ("dog\tk9\t-2\n", "positive integer"),
    ("dog\tk9\t0\n", ">= 1"),
    ("dog\tk9\tmany\n", "positive integer"),
    ("dog\tk9\t2.5\n", "positive integer"),
    ("\tk9\t2\n", "empty query"),
    ("dog\t\t2\n", "empty key"),
])
def test_malformed_click_line_names_file_and_line(tmp_path, line, message):
    p = tmp_path / "log.tsv"
    p.write_text("fine query\tk1\t4\nother\tk2\t1\n" + line)
    with pytest.raises(DataError, match=message) as err:
        list(iter_click_log(p))
    assert f"{p}:3:" in str(err.value)


def test_malformed_line_in_gzip_log_names_line(tmp_path):
    p = tmp_path / "log.tsv.gz"
    with gzip.open(p, "wt") as fh:
        fh.write("a\tk\t1\n" * 5 + "a\tk\n")
    with pytest.raises(DataError, match=rf"{p}:6: expected 3"):
        list(iter_click_log(p))


def test_non_utf8_and_missing_file_named(tmp_path):
    p = tmp_path / "log.tsv"
    p.write_bytes(b"ok\tk\t1\ncaf\xe9\tk\t1\n")
    with pytest.raises(DataError, match=rf"{p}:2: not UTF-8"):
        list(iter_click_log(p))
    with pytest.raises(DataError, match="missing file"):
        list(iter_click_log(tmp_path / "nope.tsv"))


@pytest.mark.parametrize("bad, message", [
    (("dog", "k1", 0), ">= 1"), (("dog", "k1", -3), ">= 1"), (("dog", "k1", 2.0), "integer"),
    (("dog", "k1", "2"), "integer"), (("dog", "k1", True), "integer"), (("do\tg", "k1", 1), "tab"),
    (("dog", "", 1), "non-empty"), (("dog", "k1"), "expected"),
])
def test_invalid_record_leaves_no_file(tmp_path, bad, message):
    target = tmp_path / "out.tsv"
    with pytest.raises(DataError, match=message) as err:
        write_click_log([("ok", "k0", 1), bad], target)
    assert "record 1" in str(err.value)
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary file


def test_failed_rewrite_keeps_previous_log(tmp_path):
    target = tmp_path / "out.tsv"
    write_click_log([("a", "k", 1)], target)
    with pytest.raises(DataError):
        write_click_log([("b", "k", 2), ("c", "k", 0)], target)
    assert target.read_text() == "a\tk\t1\n" and len(list(tmp_path.iterdir())) == 1


def _traced_peaks(path: Path, n: int) -> tuple[int, int, int]:
    """(write peak, read peak) of traced memory for an n-row log, and the total clicks read."""
    records = (ClickRecord(f"query number {i % 997}", f"IMAGEKEY{i:010d}", 1 + i % 13) for i in range(n))
    tracemalloc.start()
    try:
        assert write_click_log(records, path) == n
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        total = sum(rec.clicks for rec in iter_click_log(path))
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == sum(1 + i % 13 for i in range(n))
    return write_peak, read_peak, path.stat().st_size


def test_click_log_streams_in_bounded_memory(tmp_path):
    """Peak memory does not grow with the log: 4x the rows, about the same peak, << file size."""
    w_small, r_small, _ = _traced_peaks(tmp_path / "small.tsv", 5_000)
    w_big, r_big, _ = _traced_peaks(tmp_path / "big.tsv", 20_000)
    size = (tmp_path / "big.tsv").stat().st_size
    assert size > 700_000
    assert r_big < 1.5 * r_small + 65_536 and r_big < size / 10, (r_small, r_big, size)
    assert w_big < 1.5 * w_small + 65_536 and w_big < size / 5, (w_small, w_big, size)


# ---------------------------------------------------------------- Dev judgments
def test_read_dev_maps_judgments_to_relevance():
    dev = clickture.read_dev(FIX / "DevSetLabel.tsv")
    assert list(dev.columns) == ["query", "key", "relevance", "judgment"]
    assert len(dev) == 6 and dev["query"].nunique() == 2
    assert dict(zip(dev["judgment"], dev["relevance"])) == {"Excellent": 3, "Good": 2, "Bad": 0}
    chin = dev[dev["query"] == "japanese chin"].set_index("key")["relevance"].to_dict()
    assert chin == {"RGV2SW1hZ2VPbmU=": 0, "RGV2SW1hZ2VUd28=": 3, "RGV2SW1hZ2VUaHJl": 2}


def test_read_dev_header_column_order_and_integer_grades(tmp_path):
    p = tmp_path / "dev.tsv"
    p.write_text("Key\tQuery\tJudgment\nk1\tcat\tgood\nk2\tcat\t3\n")
    dev = clickture.read_dev(p, columns=("key", "query", "judgment"))
    assert dev[["query", "key", "relevance"]].values.tolist() == [["cat", "k1", 2], ["cat", "k2", 3]]


@pytest.mark.parametrize("line, message", [
    ("cat\tk9\tFair\n", "judgment must be"), ("cat\tk9\n", "expected 3"),
    ("chihuahua\tRGV2SW1hZ2VPbmU=\tGood\n", "already judged on line 1"),
])
def test_read_dev_bad_line_named(tmp_path, line, message):
    p = tmp_path / "dev.tsv"
    p.write_text((FIX / "DevSetLabel.tsv").read_text() + line)
    with pytest.raises(DataError, match=message) as err:
        clickture.read_dev(p)
    assert f"{p}:7:" in str(err.value)


# ---------------------------------------------------------------- images (key \t base64 JPEG)
def test_iter_images_decodes_fixture():
    images = dict(clickture.iter_images(FIX / "TrainImageSet.tsv"))
    assert list(images) == ["M1hZc2VhcmNoRG9n", "Q2hpaHVhaHVhUHVw", "U3BhbmllbFBob3Rv", "RG9nU2hvd1dpbm5l"]
    assert all(im.size == (8, 8) and im.format == "JPEG" for im in images.values())
    # chihuahua images are red, spaniel images blue (see make_fixtures.COLOURS)
    red = np.asarray(images["M1hZc2VhcmNoRG9n"].convert("RGB"), float).mean(axis=(0, 1))
    blue = np.asarray(images["U3BhbmllbFBob3Rv"].convert("RGB"), float).mean(axis=(0, 1))
    assert red[0] > 150 > red[2] and blue[2] > 150 > blue[0]
    assert [k for k, _ in clickture.iter_images(FIX / "TrainImageSet.tsv", keys={"U3BhbmllbFBob3Rv"})] \
        == ["U3BhbmllbFBob3Rv"]


def test_load_clickture_images_writes_files_and_resumes(tmp_path):
    out = tmp_path / "imgs"
    labels = {"M1hZc2VhcmNoRG9n": "Chihuahua"}
    s = clickture.load_clickture_images(FIX / "TrainImageSet.tsv", out, labels=labels)
    assert len(s) == 4 and s.items["label"].tolist() == ["Chihuahua", "", "", ""]
    payload = (FIX / "TrainImageSet.tsv").read_text().splitlines()[0].split("\t")[1]
    first = Path(s.items["path"][0])
    assert first.read_bytes() == base64.b64decode(payload)  # original JPEG bytes, not re-encoded
    assert np.asarray(s.load_image(0)).shape == (8, 8, 3)
    stamp = first.stat().st_mtime_ns
    again = clickture.load_clickture_images(FIX / "TrainImageSet.tsv", out, labels=labels)
    assert first.stat().st_mtime_ns == stamp and again.items["path"].tolist() == s.items["path"].tolist()


def test_dev_set_images_and_judgments(tmp_path):
    dev, images = clickture.read_dev_set(FIX / "DevSetLabel.tsv", FIX / "DevSetImage.tsv", tmp_path)
    assert set(dev["key"]) == set(images.items["key"]) and (images.items["split"] == "test").all()


def test_unsafe_key_gets_hashed_file_name(tmp_path):
    p = tmp_path / "img.tsv"
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(buf, "PNG")
    p.write_text(f"../evil/key\t{base64.b64encode(buf.getvalue()).decode()}\n")
    s = clickture.load_clickture_images(p, tmp_path / "out")
    path = Path(s.items["path"][0])
    assert path.parent == tmp_path / "out" and path.name.startswith("k_") and path.suffix == ".png"


@pytest.mark.parametrize("payload, message", [
    ("not*base64!", "corrupt base64"),
    (base64.b64encode(b"\xff\xd8\xff\xe0 garbage, not a jpeg").decode(), "corrupt or undecodable image"),
])
def test_corrupt_image_names_file_line_and_key(tmp_path, payload, message):
    d = _tmp_copy(tmp_path)
    p = d / "TrainImageSet.tsv"
    p.write_text(p.read_text() + f"QmFkSW1hZ2VLZXk\t{payload}\n")
    with pytest.raises(DataError, match=message) as err:
        clickture.load_clickture_images(p, tmp_path / "out")
    assert f"{p}:5:" in str(err.value) and "QmFkSW1hZ2VLZXk" in str(err.value)
    with pytest.raises(DataError, match=message):
        list(clickture.iter_images(p))


def test_image_file_bad_lines(tmp_path):
    p = tmp_path / "img.tsv"
    p.write_text("onlykey\n")
    with pytest.raises(DataError, match=rf"{p}:1: expected 2"):
        list(clickture.iter_image_bytes(p))
    p.write_text((FIX / "TrainImageSet.tsv").read_text().splitlines()[0] + "\n" +
                 (FIX / "TrainImageSet.tsv").read_text().splitlines()[0] + "\n")
    with pytest.raises(DataError, match=rf"{p}:2: image key 'M1hZc2VhcmNoRG9n' repeats line 1"):
        clickture.load_clickture_images(p, tmp_path / "out")
    with pytest.raises(DataError, match="requested image keys not in the file"):
        clickture.load_clickture_images(FIX / "TrainImageSet.tsv", tmp_path / "o2", keys={"absent"})
