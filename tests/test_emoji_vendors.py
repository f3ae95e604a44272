"""Iconify emoji vendors: pack parsing, SVG wrapping, the join to base concepts, split
inheritance and the invariance of the base set, on small fixture packs (no network)."""
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clickvision import paths
from clickvision.data import emoji, manifest
from clickvision.data.base import DataError
from clickvision.data.build import render_svg

FIXTURES = Path(__file__).parent / "fixtures"
BASE = {"google": FIXTURES / "emoji/emoji-datasource-google/package",
        "twitter": FIXTURES / "emoji/emoji-datasource-twitter/package",
        "openmoji": FIXTURES / "emoji/openmoji/package"}
PACKS = {"fluent-flat": FIXTURES / "iconify/fluent-emoji-flat/package",
         "fluent-hc": FIXTURES / "iconify/fluent-emoji-high-contrast/package",
         "emojione-mono": FIXTURES / "iconify/emojione-monotone/package"}
ROOTS = {**BASE, **PACKS}
VENDORS = tuple(PACKS)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A scratch project root: builds and the manifest go there, not into data/."""
    for name, rel in (("PROJ_ROOT", "."), ("DATA_DIR", "data"), ("RAW_DIR", "data/raw"),
                      ("PROCESSED_DIR", "data/processed")):
        monkeypatch.setattr(paths, name, tmp_path / rel)
    monkeypatch.setattr(manifest, "MANIFEST", tmp_path / "data" / "MANIFEST.json")
    return tmp_path


def _concepts() -> pd.DataFrame:
    """The fixture base concepts with their join keys (CLDR annotation, Unicode name, short names)."""
    return pd.DataFrame({"concept": ["1F600", "1F603", "1F604", "00A9-FE0F"],
                         "annotation": ["grinning face", "grinning face with big eyes",
                                        "grinning face with smiling eyes", "copyright"],
                         "name": ["GRINNING FACE", "GRINNING FACE WITH BIG EYES", "GRINNING FACE WITH SMILING EYES",
                                  "COPYRIGHT SIGN"],
                         "short_names": ["grinning", "smiley", "smile", "copyright"]})


def test_read_iconify_and_wrap_a_body_as_a_square_svg():
    pack = emoji.read_iconify(PACKS["fluent-flat"])
    assert pack.prefix == "fluent-emoji-flat" and (pack.width, pack.height) == (32.0, 32.0)
    assert pack.chars["00a9"] == "copyright" and pack.aliases["grinning"] == {"parent": "grinning-face"}
    svg = emoji.iconify_svg(pack, "grinning-face").decode()
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"') and svg.endswith("</svg>")
    assert 'viewBox="0 0 32 32"' in svg and '<circle cx="16"' in svg and "color=" not in svg
    # a 32 x 16 icon is padded to a square view box around its centre (no stretching)
    assert 'viewBox="0 -8 32 32"' in emoji.iconify_svg(pack, "copyright").decode()
    assert emoji.iconify_svg(pack, "grinning") == emoji.iconify_svg(pack, "grinning-face")   # alias -> parent
    mono = emoji.read_iconify(PACKS["emojione-mono"])
    assert 'color="#000000"' in emoji.iconify_svg(mono, "grinning-face", monochrome=True).decode()
    assert 'viewBox="0 0 64 64"' in emoji.iconify_svg(mono, "smile-1").decode()   # width 48 at left 8 -> padded
    assert emoji.read_iconify(PACKS["emojione-mono"]).chars == {}


def test_monochrome_render_is_black_line_art_not_blank():
    pack = emoji.read_iconify(PACKS["fluent-hc"])
    im = np.asarray(render_svg(emoji.iconify_svg(pack, "grinning-face", monochrome=True), 64, 64))
    assert im.shape == (64, 64, 3)
    assert tuple(im[0, 0]) == (255, 255, 255)   # white background
    dark = (im.max(axis=2) < 64).mean()
    assert 0.05 < dark < 0.6   # a drawn ring, neither blank nor filled
    assert (im[..., 0] == im[..., 2]).all()   # grey levels only: black ink on white


def test_normalise_name():
    assert emoji.normalise_name("Flag: Japan") == "flag japan"
    assert emoji.normalise_name("GRINNING_FACE-with  big-eyes") == "grinning face with big eyes"
    assert emoji.normalise_name("man’s shoe") == "mans shoe"
    assert emoji.normalise_name("1st-place medal!") == "1st place medal"


def test_code_point_join_counts_variants_hidden_and_failures():
    report = emoji.join_iconify(emoji.read_iconify(PACKS["fluent-flat"]), _concepts())
    assert report.method == "code point" and report.icons == 6
    # 00a9 met 00A9-FE0F (FE0F ignored); 1F604 is not drawn by this pack
    assert report.joined == {"1F600": "grinning-face", "1F603": "grinning-face-with-big-eyes",
                             "00A9-FE0F": "copyright"}
    assert report.variants == ["waving-hand-light"] and report.hidden == ["grinning-face-old"]
    assert report.failed == ["zebra"]   # a code point outside the base set: counted, dropped
    summary = report.summary(4)
    assert summary["join_rate"] == 0.75 and summary["failed"] == 1 and summary["failed_examples"] == ["zebra"]


def test_name_join_compact_names_aliases_numbered_variants():
    report = emoji.join_iconify(emoji.read_iconify(PACKS["emojione-mono"]), _concepts())
    assert report.method == "name"
    assert report.joined == {"1F600": "grinning-face",               # CLDR name
                             "1F603": "grinningfacewithbigeyes",      # the same key without spaces
                             "1F604": "smile-1",                      # '-1' is the base drawing of 'smile'
                             "00A9-FE0F": "c-mark"}                   # through its alias 'copyright-sign'
    assert sorted(report.variants) == ["grinning-face-medium-skin-tone", "smile-2"]
    assert report.failed == ["unicorn-face"]


def test_ambiguous_name_keys_are_dropped_not_guessed():
    concepts = _concepts()
    concepts.loc[1, "short_names"] = "grinning"   # 'grinning' now names two concepts among the short names
    pack = emoji.IconifyPack("x", {"grinning": {"body": "<path d='M0 0h1v1z'/>"}})
    assert emoji.join_iconify(pack, concepts).failed == ["grinning"]


def test_damaged_packs_name_the_file(tmp_path):
    bad = tmp_path / "bad" / "package"
    shutil.copytree(PACKS["fluent-flat"], bad)
    (bad / "icons.json").write_text('{"prefix": "x", "icons": {\n "a": {"body": "<g/>"},,}}')
    with pytest.raises(DataError, match=r"icons.json line 2: not valid JSON"):
        emoji.read_iconify(bad)
    (bad / "icons.json").write_text(json.dumps({"prefix": "x", "icons": {"a": {"width": 3}}}))
    with pytest.raises(DataError, match=r"icons.json: icon 'a' has no SVG 'body'"):
        emoji.read_iconify(bad)
    (bad / "icons.json").write_text(json.dumps({"prefix": "x", "icons": {"a": {"body": "<g/>"}},
                                                "aliases": {"b": {"parent": "nope"}}}))
    with pytest.raises(DataError, match=r"icons.json: alias 'b' names no existing parent"):
        emoji.read_iconify(bad)
    (bad / "icons.json").write_text(json.dumps({"prefix": "x", "icons": {"a": {"body": "<g/>"}}}))
    (bad / "chars.json").write_text('{"1f600": "a"')
    with pytest.raises(DataError, match=r"chars.json line 1"):
        emoji.read_iconify(bad)
    (bad / "chars.json").write_text('{"zz": "a"}')
    with pytest.raises(DataError, match=r"chars.json: 'zz' is not a code-point sequence"):
        emoji.read_iconify(bad)
    (bad / "icons.json").unlink()
    with pytest.raises(DataError, match=r"icons.json missing"):
        emoji.read_iconify(bad)


def test_build_vendors_inherits_splits_and_leaves_the_base_set_alone(project):
    base_entry = emoji.build(package_roots=BASE, workers=1)
    out = project / "data/processed/emoji"
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    base_load = emoji.load_emoji(min_concepts_per_class=1, exclude_classes=())
    entry = emoji.build_vendors(package_roots=ROOTS, vendors=VENDORS, workers=1, echo=None)
    recorded = manifest.load_manifest()
    assert recorded["emoji"] == base_entry   # the base entry, its rows, splits and images: untouched
    assert all((out / rel).read_bytes() == data for rel, data in before.items())
    assert emoji.load_emoji(min_concepts_per_class=1, exclude_classes=()).items.equals(base_load.items)
    items = emoji.read_table(out / emoji.VENDOR_ITEMS, emoji.VENDORS_NAME)
    assert entry["counts"]["images_per_vendor"] == {"fluent-flat": 3, "fluent-hc": 2, "emojione-mono": 4}
    base_items = emoji.read_table(out / "items.csv", "emoji").drop_duplicates("concept").set_index("concept")
    for col in ("split", "label", "group", "text", "name"):   # inherited from the concept
        assert (items[col].to_numpy() == base_items.loc[items.concept, col].to_numpy()).all(), col
    report = entry["vendors"]
    assert report["fluent-flat"]["join_rate"] == 0.75 and report["fluent-flat"]["failed_examples"] == ["zebra"]
    assert report["emojione-mono"]["join"] == "name" and report["emojione-mono"]["failed"] == 1
    assert report["google"]["entry"] == "emoji" and report["fluent-hc"]["style"] == "monochrome"
    assert "MIT" in entry["licence"] and entry["committed"] is False
    # images: 64 px RGB on white, monochrome ones black
    for rel in items.path:
        with Image.open(out / rel) as im:
            assert im.mode == "RGB" and im.size == (64, 64) and im.getpixel((0, 0)) == (255, 255, 255)
    with Image.open(out / "img/fluent-hc/1f600.png") as im:
        assert np.asarray(im).min() < 40
    # a second build does nothing; the loader mixes vendors with the base class set
    assert emoji.build_vendors(package_roots=ROOTS, vendors=VENDORS, workers=1, echo=None) == entry
    mixed = emoji.load_emoji(vendors=("google", "fluent-hc"), min_concepts_per_class=1, exclude_classes=())
    assert mixed.name == "emoji[google+fluent-hc]" and len(mixed) == 4 + 2
    assert list(mixed.items.domain) == ["google"] * 4 + ["fluent-hc"] * 2
    one = emoji.load_emoji(vendors="fluent-hc", min_concepts_per_class=3, exclude_classes=())
    assert one.classes == ["face-smiling"] and len(one) == 2   # classes counted over base concepts
    assert one.load_image(0).size == (64, 64)
    with pytest.raises(ValueError, match="vendors"):
        emoji.load_emoji(vendors=("google", "google"))


def test_all_vendors_and_a_damaged_vendor_image(project):
    emoji.build_vendors(package_roots=ROOTS, vendors=VENDORS, workers=1, echo=None)
    with pytest.raises(Exception, match=r"streamline|not built"):
        emoji.load_emoji(vendors="all")   # streamline etc. were not built here
    img = project / "data/processed/emoji/img/fluent-flat/1f603.png"
    img.write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match=r"(?s)1f603.png.*build --only emoji_vendors"):
        emoji.load_emoji(vendors=("fluent-flat",), min_concepts_per_class=1, exclude_classes=())
    emoji.build_vendors(package_roots=ROOTS, vendors=VENDORS, workers=1, echo=None)   # damaged -> rebuilt
    assert len(emoji.load_emoji(vendors=("fluent-flat",), min_concepts_per_class=1, exclude_classes=())) == 3


def test_base_rebuild_keeps_the_vendor_folders(project):
    emoji.build_vendors(package_roots=ROOTS, vendors=VENDORS, workers=1, echo=None)
    emoji.build(package_roots=BASE, force=True, workers=1)
    assert manifest.is_built(emoji.VENDORS_NAME)   # img/<vendor>/ and img/images.sha256 survived


def test_tarball_names_of_scoped_packages(project):
    assert emoji.tarball_name("@iconify-json/fluent-emoji-flat", "1.2.6") == "iconify-json-fluent-emoji-flat-1.2.6.tgz"
    assert emoji.tarball_name("openmoji", "17.0.0") == "openmoji-17.0.0.tgz"
    npm = project / "data/raw/npm"
    npm.mkdir(parents=True)
    with tarfile.open(npm / "iconify-json-noto-1.2.9.tgz", "w:gz") as tar:
        tar.add(PACKS["fluent-flat"], arcname="package")
    assert emoji.fetch_npm_tarball("noto", npm) == npm / "iconify-json-noto-1.2.9.tgz"   # kept, not refetched


def test_vendor_gap_table_against_an_oracle():
    """Two vendors on synthetic features: vendor 'b' is 'a' shifted and noisier, so a probe trained
    on 'a' loses accuracy on 'b'; every cell equals a probe fitted and scored by hand."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from clickvision.experiments import data_tour as tour

    rng = np.random.default_rng(0)
    n, classes = 240, 4
    concept = np.array([f"c{i:03d}" for i in range(n)])
    label = np.array([f"k{i % classes}" for i in range(n)])
    split = np.array(["train", "val", "test", "train", "train"] * (n // 5))
    centres = rng.normal(size=(classes, 8)) * 2
    xa = centres[np.arange(n) % classes] + rng.normal(size=(n, 8))
    xb = xa + 1.5 + rng.normal(size=(n, 8)) * 1.5
    keep_b = np.arange(n) % 6 != 0   # 'b' lacks some concepts
    items = pd.concat([pd.DataFrame({"domain": "a", "concept": concept, "label": label, "split": split}),
                       pd.DataFrame({"domain": "b", "concept": concept, "label": label, "split": split})[keep_b]],
                      ignore_index=True)
    feats = np.vstack([xa, xb[keep_b]])
    table = tour.vendor_gap_table(items, feats, n_resamples=500).set_index(["train", "test"])
    assert len(table) == 4
    # oracle: the probe with the C the table chose, fitted and scored by hand
    tr, te_b = (items.domain == "a") & (items.split == "train"), (items.domain == "b") & (items.split == "test")
    te_a = (items.domain == "a") & (items.split == "test")
    c = table.loc[("a", "b"), "C"]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000)).fit(feats[tr], label[:n][
        np.flatnonzero(tr)])
    acc_b = (model.predict(feats[te_b]) == items.label[te_b]).mean()
    acc_a = (model.predict(feats[te_a]) == items.label[te_a]).mean()
    assert table.loc[("a", "b"), "accuracy"] == pytest.approx(acc_b)
    assert table.loc[("a", "b"), "in_domain"] == pytest.approx(acc_a) == table.loc[("a", "a"), "accuracy"]
    assert table.loc[("a", "b"), "n_test"] == te_b.sum() and table.loc[("a", "b"), "n_paired"] == te_b.sum()
    row = table.loc[("a", "b")]
    assert row.lo <= row.accuracy <= row.hi and row.gap_lo <= row.gap <= row.gap_hi
    # gap on the paired concepts = in-domain minus cross accuracy there, and a real drop here
    paired = set(items.concept[te_b])
    own = pd.Series(model.predict(feats[te_a]) == items.label[te_a].to_numpy(), index=items.concept[te_a])
    assert row.gap == pytest.approx(own[list(paired)].mean() - acc_b)
    assert row.gap_lo > 0
    assert table.loc[("a", "a"), "gap"] == 0.0
