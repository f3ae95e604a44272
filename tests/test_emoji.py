"""Emoji builder and loader on tiny fixtures in the npm packages' own layout."""
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clickvision import paths
from clickvision.data import emoji, manifest
from clickvision.data.base import DataError, MissingSourceError

FIXTURES = Path(__file__).parent / "fixtures" / "emoji"
ROOTS = {"google": FIXTURES / "emoji-datasource-google" / "package",
         "twitter": FIXTURES / "emoji-datasource-twitter" / "package",
         "openmoji": FIXTURES / "openmoji" / "package"}
FOLDER = {"google": "emoji-datasource-google", "twitter": "emoji-datasource-twitter", "openmoji": "openmoji"}


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A scratch project root: builds and the manifest go there, not into data/."""
    for name, rel in (("PROJ_ROOT", "."), ("DATA_DIR", "data"), ("RAW_DIR", "data/raw"),
                      ("PROCESSED_DIR", "data/processed")):
        monkeypatch.setattr(paths, name, tmp_path / rel)
    monkeypatch.setattr(manifest, "MANIFEST", tmp_path / "data" / "MANIFEST.json")
    return tmp_path


def _tarballs(npm_dir: Path) -> None:
    """Pack each fixture package as npm would (``package/...`` inside a .tgz)."""
    npm_dir.mkdir(parents=True, exist_ok=True)
    for vendor, (package, version) in emoji.PACKAGES.items():
        with tarfile.open(npm_dir / f"{package}-{version}.tgz", "w:gz") as tar:
            tar.add(FIXTURES / FOLDER[vendor] / "package", arcname="package")


def test_read_datasource_keeps_base_emoji_with_images():
    table = emoji.read_datasource(ROOTS["google"], "google")
    assert list(table.unified) == ["1F600", "1F603", "1F604", "00A9-FE0F"]   # flag has no Google image
    assert set(table.label) == {"face-smiling", "other-symbol"}


def test_concept_text_unique_lower_case_phrases():
    text = emoji.concept_text("GRINNING FACE", "grinning|grinning_face", "grinning face", "face, grin", "")
    assert text == "grinning face, grinning, face, grin"


def test_build_from_package_roots(project):
    entry = emoji.build(package_roots=ROOTS, min_concepts_per_class=1, exclude_classes=(), workers=1)
    out = project / "data" / "processed" / "emoji"
    items = emoji.read_table(out / "items.csv", "emoji")
    assert len(items) == 4 * 3
    assert set(items.domain) == {"google", "twitter", "openmoji"}
    assert entry["counts"]["images_per_vendor"] == {"google": 4, "openmoji": 4, "twitter": 4}
    # the FE0F-less OpenMoji hexcode matched the datasource's 00A9-FE0F, with its text
    row = items[(items.concept == "00A9-FE0F") & (items.domain == "openmoji")].iloc[0]
    assert row.key == "openmoji:00A9-FE0F" and row.label == "other-symbol" and row.group == "Symbols"
    assert row.text == "copyright sign, copyright, c"
    # every vendor's drawing of a concept shares one split (no twin leaks)
    assert (items.groupby("concept").split.nunique() == 1).all()
    # images: 64 px RGB on white; the transparent corner became white
    for rel in items.path:
        with Image.open(out / rel) as im:
            assert im.mode == "RGB" and im.size == (64, 64)
            assert im.getpixel((0, 0)) == (255, 255, 255)
    with Image.open(out / "img/openmoji/1f600.png") as im:
        centre = np.asarray(im)[32, 32]
    assert tuple(centre) == (0xFC, 0xEA, 0x2B)   # the SVG's fill colour, rendered
    assert not (out / "img/google/1f600-1f3fb.png").exists()   # no skin variations
    # manifest: licences, params, one hash per artifact, counts
    recorded = manifest.load_manifest()["emoji"]
    assert set(recorded["artifacts"]) == {"data/processed/emoji/items.csv", "data/processed/emoji/images.sha256"}
    assert "CC BY-SA 4.0" in recorded["licence"] and "Apache-2.0" in recorded["licence"]
    assert recorded["params"]["exclude_classes"] == []


def test_second_build_does_nothing_and_change_rebuilds(project):
    first = emoji.build(package_roots=ROOTS, workers=1)
    img = project / "data/processed/emoji/img/google/1f600.png"
    stamp = img.stat().st_mtime_ns
    assert emoji.build(package_roots=ROOTS, workers=1) == first
    assert img.stat().st_mtime_ns == stamp
    img.unlink()   # a lost image means: rebuild
    emoji.build(package_roots=ROOTS, workers=1)
    assert img.exists()
    changed = emoji.build(package_roots=ROOTS, seed=1, workers=1)   # other params: rebuild
    assert changed["params"]["seed"] == 1


def test_build_from_npm_tarballs_extracts_only_what_is_needed(project):
    _tarballs(project / "data" / "raw" / "npm")
    entry = emoji.build(workers=1)
    assert entry["counts"]["concepts"] == 4
    assert all(".tgz sha256:" in s for s in entry["sources"].values())
    raw = project / "data" / "raw" / "emoji"
    google = raw / "emoji-datasource-google-16.0.0" / "package"
    assert sorted(p.name for p in (google / "img/google/64").iterdir()) == [
        "00a9-fe0f.png", "1f600.png", "1f603.png", "1f604.png"]   # the skin-tone PNG stayed packed
    svgs = sorted(p.name for p in (raw / "openmoji-17.0.0/package/color/svg").iterdir())
    assert svgs == ["00A9.svg", "1F600.svg", "1F603.svg", "1F604.svg"]


def test_missing_npm_says_the_command(project, monkeypatch):
    monkeypatch.setattr(emoji.shutil, "which", lambda name: None)
    with pytest.raises(MissingSourceError, match="npm pack emoji-datasource-google@16.0.0"):
        emoji.build(workers=1)
    assert not (project / "data" / "MANIFEST.json").exists()


def test_corrupt_tarball_and_bad_json_name_the_file(project, tmp_path):
    npm = project / "data" / "raw" / "npm"
    npm.mkdir(parents=True)
    (npm / "emoji-datasource-google-16.0.0.tgz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="emoji-datasource-google-16.0.0.tgz"):
        emoji.build(workers=1)
    bad = tmp_path / "bad" / "package"
    bad.mkdir(parents=True)
    (bad / "emoji.json").write_text('[{"unified": "1F600",\n oops}]')
    with pytest.raises(DataError, match=r"emoji.json line 2"):
        emoji.read_datasource(bad, "google")
    (bad / "emoji.json").write_text(json.dumps([{"unified": "1F600", "name": "x", "image": "1f600.png"}]))
    with pytest.raises(DataError, match=r"entry 0 lacks \['category', 'subcategory'\]"):
        emoji.read_datasource(bad, "google")


def test_loader_filters_vendors_and_small_classes(project):
    with pytest.raises(MissingSourceError, match="python -m clickvision.data build"):
        emoji.load_emoji()
    emoji.build(package_roots=ROOTS, workers=1)
    full = emoji.load_emoji(min_concepts_per_class=1, exclude_classes=())
    assert len(full) == 12 and full.classes == ["face-smiling", "other-symbol"]
    two = emoji.load_emoji(vendors=("google", "twitter"), min_concepts_per_class=3)
    assert len(two) == 6 and two.classes == ["face-smiling"]
    assert set(two.items.domain) == {"google", "twitter"}
    assert Path(two.items.path.iloc[0]).is_file()
    assert two.load_image(0).size == (64, 64)
    none = emoji.load_emoji(min_concepts_per_class=1, exclude_classes=("face-smiling", "other-symbol"))
    assert len(none) == 0
    with pytest.raises(ValueError, match="vendors"):
        emoji.load_emoji(vendors=("apple",))


def test_corrupt_image_names_the_file_and_keeps_the_previous_build(project, tmp_path):
    import shutil
    emoji.build(package_roots=ROOTS, workers=1)
    before = manifest.load_manifest()["emoji"]
    broken = tmp_path / "broken-google"
    shutil.copytree(ROOTS["google"], broken)
    (broken / "img/google/64/1f603.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DataError, match="1f603.png"):
        emoji.build(package_roots={**ROOTS, "google": broken}, force=True, workers=1)
    assert manifest.load_manifest()["emoji"] == before
    assert manifest.is_built("emoji", before["params"])
    out = project / "data/processed/emoji"
    assert not [p for p in out.iterdir() if p.name.startswith(".img.staging")]


def test_npm_pack_runs_in_the_npm_folder_and_reports_failure(project, tmp_path, monkeypatch):
    packs = tmp_path / "registry"
    _tarballs(packs)
    fake_npm = tmp_path / "npm"
    # a stand-in for npm: `npm pack NAME@VERSION --silent` drops NAME-VERSION.tgz into the cwd
    fake_npm.write_text(f'#!/bin/sh\nf=$(echo "$2" | tr @ -).tgz\n[ -f "{packs}/$f" ] || '
                        f'{{ echo "404 Not Found: $2" >&2; exit 1; }}\ncp "{packs}/$f" .\n')
    fake_npm.chmod(0o755)
    monkeypatch.setattr(emoji.shutil, "which", lambda name: str(fake_npm))
    npm_dir = project / "data" / "raw" / "npm"
    assert emoji.fetch_npm_tarball("twitter", npm_dir) == npm_dir / "emoji-datasource-twitter-16.0.0.tgz"
    assert [p.name for p in npm_dir.iterdir()] == ["emoji-datasource-twitter-16.0.0.tgz"]   # no temp folder left
    (packs / "openmoji-17.0.0.tgz").unlink()
    with pytest.raises(MissingSourceError, match=r"(?s)404 Not Found: openmoji@17.0.0.*npm pack openmoji@17.0.0"):
        emoji.fetch_npm_tarball("openmoji", npm_dir)
    assert sorted(p.name for p in npm_dir.iterdir()) == ["emoji-datasource-twitter-16.0.0.tgz"]
