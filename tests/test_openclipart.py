"""Open Clip Art builder and loader on a tiny tree in the Debian layout (links, copies, bad files)."""
import logging
from pathlib import Path

import pytest
from PIL import Image

from clickvision import paths
from clickvision.data import manifest, openclipart
from clickvision.data.base import MissingSourceError

FIXTURE = Path(__file__).parent / "fixtures" / "openclipart"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A scratch project root: builds and the manifest go there, not into data/."""
    for name, rel in (("PROJ_ROOT", "."), ("DATA_DIR", "data"), ("RAW_DIR", "data/raw"),
                      ("PROCESSED_DIR", "data/processed")):
        monkeypatch.setattr(paths, name, tmp_path / rel)
    monkeypatch.setattr(manifest, "MANIFEST", tmp_path / "data" / "MANIFEST.json")
    return tmp_path


def _items(project):
    return openclipart.read_table(project / "data/processed/openclipart/items.csv", "openclipart").set_index("key")


def test_svg_metadata_title_and_normalised_keywords():
    title, keywords, problem = openclipart.read_svg_metadata(FIXTURE / "svg/animals/cat_a_01.svg")
    assert (title, problem) == ("Cat", "")
    # lower-cased, '_' as space, 'Rome,Italy' split, empty and 'hash' dropped; the Agent's title ignored
    assert keywords == ["cat", "animal", "rome", "italy", "lemon theme icon"]
    assert openclipart.read_svg_metadata(FIXTURE / "svg/animals/mammals/dog_b_01.svg") == ("Dog", [], "")
    title, keywords, problem = openclipart.read_svg_metadata(FIXTURE / "svg/shapes/hopeless_e_01.svg")
    assert (title, keywords) == ("", []) and problem.startswith("malformed SVG") and "hopeless_e_01.svg" in problem
    assert openclipart.read_svg_metadata(FIXTURE / "svg/nope.svg")[2].startswith("missing SVG")


def test_png_size_reads_the_header_only():
    assert openclipart.png_size(FIXTURE / "png/shapes/star_f_01.png") == (120, 80)
    assert openclipart.png_size(FIXTURE / "png/shapes/hopeless_e_01.png") is None


def test_build_dedups_links_and_copies_and_survives_bad_files(project, caplog):
    with caplog.at_level(logging.WARNING, logger="clickvision.data.openclipart"):
        entry = openclipart.build(source_root=FIXTURE, min_images_per_class=1, workers=1)
    items = _items(project)
    # 8 PNG paths: one symlink and one byte copy of the apple, one hopeless file -> 5 images
    assert entry["counts"]["png_paths"] == 8 and entry["counts"]["links"] == 1
    assert entry["counts"]["unique_images"] == 6 and entry["counts"]["images"] == 5
    assert sorted(items.index) == ["animals/cat_a_01", "animals/mammals/dog_b_01", "food/broken_d_01",
                                   "food/fruit/apple_c_01", "shapes/star_f_01"]
    apple = items.loc["food/fruit/apple_c_01"]   # the real file is canonical, not the link
    assert apple.label == "food/fruit" and apple.group == "food"
    assert apple.folders == "food|food/fruit|shapes" and apple.n_copies == "3"
    assert apple.text == "red apple, apple, fruit, food" and apple.labels == "apple|fruit|food"
    cat = items.loc["animals/cat_a_01"]
    assert cat.labels == "cat|animal|rome|italy|lemon theme icon" and cat.title == "Cat"
    # the corrupt PNG was rasterised from its SVG; the hopeless one skipped with a reason
    assert (entry["counts"]["from_png"], entry["counts"]["from_svg"], entry["counts"]["skipped"]) == (4, 1, 1)
    log = openclipart.read_table(project / "data/processed/openclipart/render_log.csv", "openclipart")
    assert set(log.rel) == {"food/broken_d_01.png", "shapes/hopeless_e_01.png"}
    reason = log.set_index("rel").loc["shapes/hopeless_e_01.png", "reason"]
    assert "not a PNG" in reason and "SVG failed" in reason
    assert "hopeless_e_01.png" in caplog.text
    assert entry["counts"]["share_with_title"] == 1.0 and entry["counts"]["share_with_keywords"] == 0.8
    # thumbnails: max side 128, never enlarged, aspect kept, RGB on white
    out = project / "data/processed/openclipart"
    with Image.open(out / items.loc["animals/cat_a_01", "path"]) as im:
        assert im.size == (40, 20) and im.mode == "RGB" and im.getpixel((0, 0)) == (255, 255, 255)
    with Image.open(out / items.loc["food/broken_d_01", "path"]) as im:
        assert im.size == (64, 32)   # from the PNG header's size, drawn by the SVG
        assert im.getpixel((20, 15)) == (0x33, 0xAA, 0x77)   # the SVG's rect fill #3a7
    assert manifest.is_built("openclipart")


def test_oversized_png_is_rasterised_from_svg(project):
    entry = openclipart.build(source_root=FIXTURE, max_png_pixels=5000, size=60, workers=1)
    log = openclipart.read_table(project / "data/processed/openclipart/render_log.csv", "openclipart")
    row = log.set_index("rel").loc["shapes/star_f_01.png"]
    assert row.route == "svg" and row.reason == "PNG 120x80 over 5000 pixels"
    with Image.open(project / "data/processed/openclipart/img/shapes/star_f_01.png") as im:
        assert im.size == (60, 40)
    assert entry["counts"]["from_svg"] == 2


def test_second_build_is_a_no_op(project):
    first = openclipart.build(source_root=FIXTURE, workers=1)
    items_csv = project / "data/processed/openclipart/items.csv"
    stamp = items_csv.stat().st_mtime_ns
    assert openclipart.build(source_root=FIXTURE, workers=1) == first
    assert items_csv.stat().st_mtime_ns == stamp
    forced = openclipart.build(source_root=FIXTURE, workers=1, force=True)
    assert forced["artifacts"] == first["artifacts"]   # same input, same bytes


def test_missing_source_says_apt_get(project, tmp_path):
    apt = "apt-get install --no-install-recommends openclipart-png openclipart-svg"
    with pytest.raises(MissingSourceError, match=apt):
        openclipart.build(source_root=tmp_path / "absent")
    with pytest.raises(MissingSourceError, match="python -m clickvision.data build"):
        openclipart.load_openclipart()


def test_loader_min_images_and_label_depth(project):
    openclipart.build(source_root=FIXTURE, workers=1)
    assert len(openclipart.load_openclipart()) == 0   # default 20 per class: the fixture is tiny
    every = openclipart.load_openclipart(min_images_per_class=1)
    assert len(every) == 5 and "animals/mammals" in every.classes
    merged = openclipart.load_openclipart(min_images_per_class=2, label_depth=1)
    assert merged.classes == ["animals", "food"]
    assert merged.load_image(0).mode == "RGB"
    assert set(every.items.split) <= {"train", "val", "test"}
    with pytest.raises(ValueError, match="label_depth"):
        openclipart.load_openclipart(label_depth=0)
