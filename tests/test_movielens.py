"""MovieLens: the R lazy-load reader, the embedded build, and the original GroupLens layouts."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clickvision import paths
from clickvision.data import manifest, movielens
from clickvision.data.base import DataError, MissingSourceError

FIXTURES = Path(__file__).parent / "fixtures" / "movielens"
LAZYLOAD = FIXTURES / "lazyload"
# The six invented ratings every original-layout fixture holds (user, item, timestamp).
EXPECTED_EVENTS = [(1, 1, 874965758), (1, 3, 876893171), (2, 1, 888550871),
                   (2, 2, 880606923), (3, 4, 884182806), (3, 2, 879372434)]
INTEGER_RATINGS = [5.0, 3.0, 4.0, 2.0, 1.0, 4.0]
HALF_STAR_RATINGS = [5.0, 3.5, 4.0, 2.0, 0.5, 4.0]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A scratch project root: builds and the manifest go there, not into data/."""
    for name, rel in (("PROJ_ROOT", ""), ("DATA_DIR", "data"), ("RAW_DIR", "data/raw"),
                      ("PROCESSED_DIR", "data/processed")):
        monkeypatch.setattr(paths, name, tmp_path / rel)
    monkeypatch.setattr(manifest, "MANIFEST", tmp_path / "data" / "MANIFEST.json")
    return tmp_path


# --------------------------------------------------------------------------- lazy-load store
def test_lazyload_fixture_reads_the_movielens_frame():
    frame = movielens.read_lazyload_object(LAZYLOAD / "Rdata", "movielens")
    events, items = movielens.dslabs_to_tables(frame)
    assert list(events.columns) == ["user", "item", "rating", "timestamp"]
    assert events["user"].tolist() == [1, 1, 2, 2, 3, 3]
    assert events["item"].tolist() == [1, 2, 2, 3, 1, 4]
    assert events["rating"].tolist() == [4.0, 3.5, 0.5, 5.0, 2.5, 3.0]
    assert events["timestamp"].iloc[-1] == 1476640644
    assert items["item"].tolist() == [1, 2, 3, 4]
    assert items["title"].tolist() == ["Toy Story", "Jumanji", "Heat", ""]  # R NA -> ""
    assert items["year"].iloc[0] == 1995 and pd.isna(items["year"].iloc[3])
    assert items["genres"].iloc[3] == "(no genres listed)"


def test_lazyload_other_object_and_unknown_name():
    other = movielens.read_lazyload_object(LAZYLOAD / "Rdata", "admissions")
    assert other["applicants"].tolist() == [10, 20]
    with pytest.raises(DataError, match=r"Rdata\.rdx: no object 'nope'"):
        movielens.read_lazyload_object(LAZYLOAD / "Rdata", "nope")


def test_lazyload_corrupt_store_names_the_file(tmp_path):
    shutil.copy(LAZYLOAD / "Rdata.rdx", tmp_path / "Rdata.rdx")
    blob = bytearray((LAZYLOAD / "Rdata.rdb").read_bytes())
    blob[-40:-20] = b"\x00" * 20  # inside the last object (movielens)
    (tmp_path / "Rdata.rdb").write_bytes(bytes(blob))
    with pytest.raises(DataError, match=r"Rdata\.rdb"):
        movielens.read_lazyload_object(tmp_path / "Rdata", "movielens")
    (tmp_path / "Rdata.rdb").write_bytes(bytes(blob[:100]))  # truncated
    with pytest.raises(DataError, match=r"Rdata\.rdb: truncated"):
        movielens.read_lazyload_object(tmp_path / "Rdata", "movielens")


# --------------------------------------------------------------------------- build / load
def test_build_writes_tables_records_manifest_and_skips(project, monkeypatch):
    monkeypatch.setattr(movielens, "DSLABS_DATA_DIR", LAZYLOAD)
    entry = movielens.build()
    assert entry["counts"] == {"ratings": 6, "users": 3, "items": 4, "genres": 9}
    assert entry["committed"] is False and "forbidden" in entry["redistribution"]
    assert entry["source"].startswith("Debian r-cran-dslabs")
    assert set(entry["artifacts"]) == {"data/processed/movielens/events.csv",
                                       "data/processed/movielens/items.csv"}
    events_csv = project / "data/processed/movielens/events.csv"
    stamp = events_csv.stat().st_mtime_ns
    assert movielens.build() == entry and events_csv.stat().st_mtime_ns == stamp  # skipped
    data = movielens.load_movielens()
    assert (len(data.events), data.n_users, data.n_items) == (6, 3, 4)
    assert data.events["rating"].tolist() == [4.0, 3.5, 0.5, 5.0, 2.5, 3.0]
    assert data.items["title"].tolist() == ["Toy Story", "Jumanji", "Heat", ""]
    events_csv.write_text("user,item,rating,timestamp\n")  # tampered artifact -> rebuilt
    assert len(movielens.load_movielens().events) == 6


def test_build_missing_package_says_how_to_install(project, monkeypatch):
    monkeypatch.setattr(movielens, "DSLABS_DATA_DIR", project / "absent")
    with pytest.raises(MissingSourceError, match="apt-get install --no-install-recommends r-cran-dslabs"):
        movielens.build()
    assert not (project / "data").exists()  # nothing half-written


@pytest.mark.skipif(not (movielens.DSLABS_DATA_DIR / "Rdata.rdx").exists(),
                    reason="Debian package r-cran-dslabs not installed")
def test_real_dslabs_extract_counts():
    frame = movielens.read_lazyload_object(movielens.DSLABS_DATA_DIR / "Rdata", "movielens")
    events, items = movielens.dslabs_to_tables(frame)
    assert len(events) == 100_004
    assert events["user"].nunique() == 671 and len(items) == 9_066
    assert events["rating"].min() == 0.5 and events["rating"].max() == 5.0
    years = pd.to_datetime(events["timestamp"], unit="s").dt.year
    assert (years.min(), years.max()) == (1995, 2016)
    genres = {g for s in items["genres"] for g in s.split("|")}
    assert len(genres) == 20 and "Film-Noir" in genres and "(no genres listed)" in genres


# --------------------------------------------------------------------------- original layouts
@pytest.mark.parametrize("folder, fmt, ratings", [
    ("ml-100k", "ml-100k", INTEGER_RATINGS),
    ("ml-1m", "ml-1m", INTEGER_RATINGS),
    ("ml-10m", "ml-1m", HALF_STAR_RATINGS),
    ("ml-latest-small", "ml-latest", HALF_STAR_RATINGS),
])
def test_original_layouts_give_the_same_interactions(folder, fmt, ratings):
    data = movielens.load_movielens_files(FIXTURES / folder)
    assert data.meta["format"] == fmt == movielens.detect_format(FIXTURES / folder)
    ev = data.events
    assert list(ev.columns) == ["user", "item", "rating", "timestamp"]
    assert list(zip(ev["user"], ev["item"], ev["timestamp"])) == EXPECTED_EVENTS
    assert ev["rating"].tolist() == ratings
    assert ev["user"].dtype == np.int64 and ev["rating"].dtype == np.float64
    items = data.items.set_index("item")
    assert items.loc[3, "title"] == "American President, The"  # comma kept, year stripped
    assert items.loc[4, "title"] == "Misérables, Les"  # latin-1 and UTF-8 both decoded
    assert items.loc[1:4, "year"].tolist() == [1995] * 4
    assert "Drama" in items.loc[4, "genres"].split("|")


def test_ml100k_genre_flags_and_unknown_movie():
    items = movielens.load_movielens_files(FIXTURES / "ml-100k").items.set_index("item")
    assert items.loc[1, "genres"] == "Animation|Children's|Comedy"
    assert items.loc[5, "title"] == "unknown" and items.loc[5, "genres"] == "unknown"
    assert pd.isna(items.loc[5, "year"])


def _copy(folder: str, tmp_path: Path) -> Path:
    dst = tmp_path / folder
    shutil.copytree(FIXTURES / folder, dst)
    return dst


def _replace_line(path: Path, lineno: int, text: str, encoding: str = "utf-8") -> None:
    lines = path.read_bytes().decode(encoding).split("\n")
    lines[lineno - 1] = text
    path.write_bytes("\n".join(lines).encode(encoding))


@pytest.mark.parametrize("folder, file, lineno, line, message", [
    ("ml-100k", "u.data", 3, "2\t1\t4", r"u\.data, line 3: expected 4 fields"),
    ("ml-1m", "ratings.dat", 2, "1::3::four::876893171", r"ratings\.dat, line 2: rating must be a number"),
    ("ml-10m", "ratings.dat", 4, "2::2::7::880606923", r"ratings\.dat, line 4: rating must be a number in 0\.5-5"),
    ("ml-10m", "ratings.dat", 5, "3::4::nan::884182806", r"ratings\.dat, line 5: rating"),
    ("ml-1m", "ratings.dat", 6, "3::2::4::-5", r"ratings\.dat, line 6: timestamp must be a non-negative integer"),
    ("ml-latest-small", "ratings.csv", 1, "user,movie,rating,timestamp", r"ratings\.csv, line 1: expected header"),
    ("ml-latest-small", "ratings.csv", 3, "1,99,3.5,876893171", r"ratings\.csv, line 3: movie id 99 is not in"),
    ("ml-latest-small", "movies.csv", 4, '3,"American President, The (1995)"', r"movies\.csv, line 4: expected 3"),
    ("ml-1m", "movies.dat", 3, "2::Jumanji (1995)::Fantasy", r"movies\.dat, line 3: movie id 2 appears twice"),
])
def test_malformed_line_names_file_and_line(tmp_path, folder, file, lineno, line, message):
    root = _copy(folder, tmp_path)
    enc = "latin-1" if folder in ("ml-100k", "ml-1m") else "utf-8"
    _replace_line(root / file, lineno, line, enc)
    with pytest.raises(DataError, match=message):
        movielens.load_movielens_files(root)


def test_bad_genre_flag_and_empty_ratings_file(tmp_path):
    root = _copy("ml-100k", tmp_path)
    path = root / "u.item"
    row = path.read_bytes().decode("latin-1").split("\n")[1]
    _replace_line(path, 2, row[:-1] + "2", "latin-1")
    with pytest.raises(DataError, match=r"u\.item, line 2: genre flags must be 0 or 1"):
        movielens.load_movielens_files(root)
    (root / "u.data").write_text("\n")
    with pytest.raises(DataError, match=r"u\.data: no data lines"):
        movielens.load_movielens_files(root)


def test_folder_without_ratings_is_rejected(tmp_path):
    with pytest.raises(DataError, match="no MovieLens ratings file"):
        movielens.load_movielens_files(tmp_path)
    with pytest.raises(ValueError, match="fmt must be"):
        movielens.load_movielens_files(FIXTURES / "ml-1m", fmt="ml-20x")


@pytest.mark.parametrize("file, sep, header", [("ml-100k/u.data", "\t", False),
                                               ("ml-10m/ratings.dat", "::", False),
                                               ("ml-latest-small/ratings.csv", ",", True)])
def test_fast_parser_agrees_with_line_parser(file, sep, header):
    fast, no_lines = movielens._ratings(FIXTURES / file, sep, header)
    slow, linenos = movielens._ratings(FIXTURES / file, sep, header, fast=False)
    assert no_lines is None
    assert linenos.tolist() == list(range(2, 8) if header else range(1, 7))
    pd.testing.assert_frame_equal(fast, slow)
