"""Loader and builder integrity: every fault in the input or the built data is a DataError
naming the file (and line), damaged built images are found and repaired, duplicates warn.

One section per fault; every data file lives under ``tmp_path`` (never the real ``data/``).
"""
from __future__ import annotations

import base64
import gzip
import io
import json
import random
import shutil
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from clickvision import paths
from clickvision.click import log as click_log
from clickvision.click.log import iter_click_log, iter_lines, open_text, write_click_log
from clickvision.data import build, emoji, manifest
from clickvision.data.__main__ import main
from clickvision.data.base import DataError
from clickvision.data.originals import clickture, iter_metadata, iter_reviews, load_amazon, load_cub

FIXTURES = Path(__file__).parent / "fixtures"
EMOJI = FIXTURES / "emoji"
ROOTS = {"google": EMOJI / "emoji-datasource-google" / "package",
         "twitter": EMOJI / "emoji-datasource-twitter" / "package",
         "openmoji": EMOJI / "openmoji" / "package"}
ORIGINALS = FIXTURES / "originals"
MAX_CLICKS = 10**9   # the documented bound on one triad's click count (click.log.MAX_CLICKS)


# ============================================================== 1. built images vs their hashes
EMOJI_BUILDER = f'''
from pathlib import Path
from clickvision.data import emoji

ROOTS = {{k: Path(v) for k, v in {json.dumps({k: str(v) for k, v in ROOTS.items()})}.items()}}

def build_emoji(force=False):
    return emoji.build(force=force, package_roots=ROOTS, workers=1)
'''


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A scratch project root (manifest and builds there) whose only builder is the emoji
    builder on the npm fixtures."""
    for name, rel in (("PROJ_ROOT", "."), ("DATA_DIR", "data"), ("RAW_DIR", "data/raw"),
                      ("PROCESSED_DIR", "data/processed")):
        monkeypatch.setattr(paths, name, tmp_path / rel)
    monkeypatch.setattr(manifest, "MANIFEST", tmp_path / "data" / "MANIFEST.json")
    (tmp_path / "fake_emoji_builder_cv.py").write_text(textwrap.dedent(EMOJI_BUILDER))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(build, "BUILDERS", (("emoji", "fake_emoji_builder_cv:build_emoji"),))
    assert main(["build"]) == 0
    return tmp_path


def _out(project: Path) -> Path:
    return project / "data" / "processed" / "emoji"


def _mtimes(out: Path) -> dict[str, int]:
    return {p.relative_to(out).as_posix(): p.stat().st_mtime_ns for p in (out / "img").rglob("*.png")}


def _flip_one_byte(path: Path) -> None:
    """Same size, other bytes: only a re-hash can tell."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_fault1_garbage_image_is_caught_by_status_and_load(project, capsys):
    out = _out(project)
    bad = out / "img/google/1f600.png"
    good = bad.read_bytes()
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage, not an image")   # other size: the cheap check sees it
    capsys.readouterr()
    main(["status"])
    text = capsys.readouterr().out
    assert "DAMAGED" in text and "img/google/1f600.png" in text
    assert not manifest.is_built("emoji")
    with pytest.raises(DataError, match="img/google/1f600.png"):
        emoji.load_emoji(min_concepts_per_class=1, exclude_classes=())
    # the reader of one image names the file when it cannot be decoded
    s = emoji.load_emoji(min_concepts_per_class=1, exclude_classes=(), verify="none")
    i = s.items.index[s.items["path"].str.endswith("google/1f600.png")][0]
    with pytest.raises(DataError, match="1f600.png"):
        s.load_image(int(i))
    bad.write_bytes(good)
    assert emoji.load_emoji(min_concepts_per_class=1, exclude_classes=()).meta["images_present"]


def test_fault1_status_verify_rehashes_images(project, capsys):
    out = _out(project)
    _flip_one_byte(out / "img/twitter/1f603.png")
    capsys.readouterr()
    assert main(["status"]) == 0                       # same size: the cheap check passes it
    assert "DAMAGED" not in capsys.readouterr().out
    assert main(["status", "--verify"]) == 1
    text = capsys.readouterr().out
    assert "DAMAGED" in text and "img/twitter/1f603.png" in text and "sha256" in text
    assert [rel for rel, _ in build.damaged_images(out, verify=True)] == ["img/twitter/1f603.png"]
    with pytest.raises(DataError, match="img/twitter/1f603.png"):
        emoji.load_emoji(min_concepts_per_class=1, exclude_classes=(), verify="sha256")


def test_fault1_build_repairs_only_damaged_images(project, capsys):
    out = _out(project)
    index_before = (out / build.INDEX_NAME).read_text()
    before = _mtimes(out)
    victim = out / "img/openmoji/1f604.png"
    victim.write_bytes(b"truncated")
    results = build.build_all(echo=None)
    assert [r.status for r in results] == ["repaired"]
    assert "img/openmoji/1f604.png" in results[0].message
    assert manifest.is_built("emoji") and not build.damaged_images(out, verify=True)
    after = _mtimes(out)
    changed = sorted(k for k in before if after[k] != before[k])
    assert changed == ["img/openmoji/1f604.png"]       # nothing else was rewritten
    assert (out / build.INDEX_NAME).read_text() == index_before
    # a same-size corruption needs `build --verify`; a plain build leaves it (cheap check only)
    _flip_one_byte(out / "img/google/1f603.png")
    assert [r.status for r in build.build_all(echo=None)] == ["up to date"]
    assert main(["build", "--verify"]) == 0
    assert "repaired" in capsys.readouterr().out
    assert not build.damaged_images(out, verify=True)


def test_fault1_image_index_records_sizes_backward_compatibly(tmp_path):
    (tmp_path / "img").mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / "img" / name).write_bytes(name.encode() * 10)
    build.write_image_index(tmp_path, ["img/b.png", "img/a.png"])
    assert build.damaged_images(tmp_path) == []
    (tmp_path / "img" / "a.png").write_bytes(b"short")
    assert [rel for rel, _ in build.damaged_images(tmp_path)] == ["img/a.png"]
    assert not build.images_present(tmp_path)
    # an index written before sizes were recorded still works (existence is checked cheaply)
    (tmp_path / build.SIZES_NAME).unlink()
    assert build.damaged_images(tmp_path) == [] and build.images_present(tmp_path)
    assert [rel for rel, _ in build.damaged_images(tmp_path, verify=True)] == ["img/a.png"]


# ============================================================== 2. damaged gzip streams
def _damaged_gzip(path: Path) -> Path:
    rng = random.Random(0)
    text = "".join(f"query {rng.randint(0, 10**6)}\tkey{rng.randint(0, 10**9)}\t{rng.randint(1, 50)}\n"
                   for _ in range(5000))
    blob = bytearray(gzip.compress(text.encode(), mtime=0))
    for j in range(8):
        blob[100 + j] ^= 0xFF                 # inside the deflate stream: zlib.error, not OSError
    path.write_bytes(bytes(blob))
    return path


def test_fault2_damaged_gzip_is_a_data_error_naming_file_and_line(tmp_path):
    p = _damaged_gzip(tmp_path / "log.tsv.gz")
    with pytest.raises(DataError, match=rf"{p}:1: ") as err:
        list(iter_click_log(p))
    assert "zlib" in str(err.value) or "decompress" in str(err.value)
    with pytest.raises(DataError, match=str(p)):
        list(iter_lines(p))
    with pytest.raises(DataError, match=str(p)):
        with open_text(p) as fh:
            fh.read()
    reviews = _damaged_gzip(tmp_path / "reviews.json.gz")
    with pytest.raises(DataError, match=rf"{reviews}:1: "):
        load_amazon(reviews)


def test_fault2_truncated_gzip_names_the_line_reached(tmp_path):
    p = tmp_path / "log.tsv.gz"
    blob = gzip.compress(b"".join(b"q%d\tk%d\t1\n" % (i, i) for i in range(20000)), mtime=0)
    p.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=rf"{p}:\d+: ") as err:
        list(iter_click_log(p))
    assert f"{p}:1:" not in str(err.value)            # the line reached, not the first


# ============================================================== 3. deeply nested Amazon JSON
@pytest.mark.parametrize("reader", ["reviews", "metadata"])
def test_fault3_deeply_nested_amazon_line_names_file_and_line(tmp_path, reader):
    p = tmp_path / "reviews.json"
    good = json.dumps({"reviewerID": "A1", "asin": "B1", "overall": 5.0, "unixReviewTime": 1})
    deep = '{"reviewerID": "A2", "asin": "B2", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    p.write_text(good + "\n" + deep + "\n")
    with pytest.raises(DataError, match=rf"{p}:2: .*nest"):
        list(iter_reviews(p) if reader == "reviews" else iter_metadata(p))
    loose = "{'asin': 'B3', 'x': " + "[" * 100_000 + "]" * 100_000 + "}"
    p.write_text(good + "\n" + loose + "\n")
    with pytest.raises(DataError, match=rf"{p}:2: "):
        list(iter_reviews(p) if reader == "reviews" else iter_metadata(p))


# ============================================================== 4. Clickture image outputs
def _png_b64(colour) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), colour).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_fault4_truncated_existing_output_is_rewritten(tmp_path):
    out = tmp_path / "imgs"
    s = clickture.load_clickture_images(ORIGINALS / "clickture" / "TrainImageSet.tsv", out)
    first = Path(s.items["path"][0])
    good = first.read_bytes()
    first.write_bytes(good[: len(good) // 3])          # an interrupted earlier copy
    again = clickture.load_clickture_images(ORIGINALS / "clickture" / "TrainImageSet.tsv", out)
    assert first.read_bytes() == good
    assert again.load_image(0).size == (8, 8)
    first.write_bytes(b"x" * len(good))                # same size, garbage
    clickture.load_clickture_images(ORIGINALS / "clickture" / "TrainImageSet.tsv", out)
    assert first.read_bytes() == good


def test_fault4_two_keys_one_file_is_refused_naming_both(tmp_path):
    unsafe = "../evil/key"
    twin = clickture.image_file_name(unsafe)           # a safe key spelled like the hashed name
    p = tmp_path / "img.tsv"
    p.write_text(f"{unsafe}\t{_png_b64((255, 0, 0))}\n{twin}\t{_png_b64((0, 0, 255))}\n")
    with pytest.raises(DataError, match=rf"{p}:2: ") as err:
        clickture.load_clickture_images(p, tmp_path / "out")
    assert unsafe in str(err.value) and twin in str(err.value) and "line 1" in str(err.value)


# ============================================================== 5. CUB paths outside the root
@pytest.mark.parametrize("bad", ["/tmp/001.Black_footed_Albatross/Black_Footed_Albatross_0001_101.jpg",
                                 "../../001.Black_footed_Albatross/Black_Footed_Albatross_0001_101.jpg",
                                 "001.Black_footed_Albatross/../../../001.Black_footed_Albatross/x.jpg"])
def test_fault5_cub_path_outside_root_names_file_and_line(tmp_path, bad):
    root = Path(shutil.copytree(ORIGINALS / "cub", tmp_path / "cub")) / "CUB_200_2011"
    lines = (root / "images.txt").read_text().splitlines()
    lines[1] = f"2 {bad}"
    (root / "images.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"{root / 'images.txt'}:2: .*outside"):
        load_cub(root, verify="none")


# ============================================================== 6. empty logs, huge counts, duplicates
def test_fault6_empty_click_log_is_refused(tmp_path):
    for name, data in (("empty.tsv", b""), ("blank.tsv", b"\n\n"), ("empty.tsv.gz", gzip.compress(b""))):
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(DataError, match=rf"{p}: .*no click"):
            list(iter_click_log(p))


@pytest.mark.parametrize("count", ["1" + "0" * 30, str(MAX_CLICKS + 1), "1e30", "-5", "2.0"])
def test_fault6_implausible_click_count_names_file_and_line(tmp_path, count):
    p = tmp_path / "log.tsv"
    p.write_text(f"dog\tk1\t{MAX_CLICKS}\ndog\tk2\t{count}\n")
    with pytest.raises(DataError) as err:
        list(iter_click_log(p))
    assert f"{p}:2:" in str(err.value)
    assert click_log.MAX_CLICKS == MAX_CLICKS
    with pytest.raises(DataError, match="record 0"):
        write_click_log([("dog", "k", MAX_CLICKS + 1)], tmp_path / "out.tsv")


def test_fault6_duplicate_ratings_warn_with_file_and_line(tmp_path):
    rows = [("A1", "B1", 5.0, 1), ("A2", "B1", 4.0, 2), ("A1", "B2", 3.0, 3), ("A1", "B1", 2.0, 4)]
    p = tmp_path / "reviews.json"
    p.write_text("".join(json.dumps({"reviewerID": u, "asin": i, "overall": r, "unixReviewTime": t}) + "\n"
                         for u, i, r, t in rows))
    with pytest.warns(UserWarning, match=rf"{p}:4: .*'A1'.*'B1'.*line 1"):
        data = load_amazon(p)
    assert len(data.events) == 4                       # kept: the warning says so, the caller decides
    with pytest.raises(DataError, match=rf"{p}:4: "):
        load_amazon(p, duplicates="error")
    csv = tmp_path / "ratings.csv"
    csv.write_text("".join(f"{u},{i},{r},{t}\n" for u, i, r, t in rows))
    with pytest.warns(UserWarning, match=rf"{csv}:4: "):
        load_amazon(csv)
    assert len(load_amazon(csv, duplicates="first").events) == 3
