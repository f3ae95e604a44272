"""WordNet for nltk: lexnames, the nltk_data copy, the lemmatizer, and the stop-word list."""
from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from clickvision import paths
from clickvision.data import manifest
from clickvision.data import wordnet as wn
from clickvision.data.base import MissingSourceError

MAN_PAGE = Path("/usr/share/man/man5/lexnames.5WN.gz")
HAS_WORDNET = all((wn.WORDNET_DIR / f).is_file() for f in wn.REQUIRED_FILES)
needs_wordnet = pytest.mark.skipif(not HAS_WORDNET, reason="Debian package wordnet-base not installed")


def _isolate(mp: pytest.MonkeyPatch, root: Path) -> None:
    for name, rel in (("PROJ_ROOT", ""), ("DATA_DIR", "data"), ("RAW_DIR", "data/raw"),
                      ("PROCESSED_DIR", "data/processed")):
        mp.setattr(paths, name, root / rel)
    mp.setattr(manifest, "MANIFEST", root / "data" / "MANIFEST.json")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The real Debian WordNet built once into a scratch project (nltk.data.path restored after)."""
    import nltk

    if not HAS_WORDNET:
        pytest.skip("Debian package wordnet-base not installed")
    root = tmp_path_factory.mktemp("project")
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, root)
        mp.setattr(nltk.data, "path", list(nltk.data.path))
        entry = wn.build()
        yield root, entry
    wn._reader.cache_clear()


def test_lexnames_has_45_numbered_lines_with_consistent_categories():
    lines = wn.lexnames_text().splitlines()
    assert len(lines) == 45
    category = {"noun": "1", "verb": "2", "adj": "3", "adv": "4"}
    for i, line in enumerate(lines):
        number, name, cat = line.split("\t")
        assert number == f"{i:02d}" and cat == category[name.split(".")[0]]
    assert lines[0] == "00\tadj.all\t3" and lines[3] == "03\tnoun.Tops\t1"
    assert lines[43] == "43\tverb.weather\t2" and lines[44] == "44\tadj.ppl\t3"


@pytest.mark.skipif(not MAN_PAGE.exists(), reason="lexnames(5WN) man page not installed")
def test_lexnames_match_the_man_page():
    text = gzip.decompress(MAN_PAGE.read_bytes()).decode("utf-8", "replace")
    rows = re.findall(r"^(\d\d)\t(\S+)", text, flags=re.M)
    assert [(int(n), name) for n, name in rows] == [(i, name) for i, (name, _) in enumerate(wn.LEXNAMES)]


def test_missing_package_says_how_to_install(tmp_path, monkeypatch):
    _isolate(monkeypatch, tmp_path)
    monkeypatch.setattr(wn, "WORDNET_DIR", tmp_path / "absent")
    with pytest.raises(MissingSourceError, match="apt-get install --no-install-recommends wordnet-base"):
        wn.build()
    assert not (tmp_path / "data").exists()


@needs_wordnet
def test_build_copies_database_and_records_wordnet_30_counts(built):
    root, entry = built
    corpus = root / "data/raw/nltk_data/corpora/wordnet"
    assert (corpus / "lexnames").read_text() == wn.lexnames_text()
    assert (corpus / "index.sense").read_text() == ""
    assert (corpus / "data.noun").stat().st_size == (wn.WORDNET_DIR / "data.noun").stat().st_size
    # Princeton's published WordNet 3.0 synset counts
    assert entry["counts"]["synsets_noun"] == 82_115 and entry["counts"]["synsets_verb"] == 13_767
    assert entry["counts"]["synsets_adj"] == 18_156 and entry["counts"]["synsets_adv"] == 3_621
    assert entry["source"].startswith("Debian wordnet-base") and entry["committed"] is False
    assert "data/raw/nltk_data/corpora/wordnet/lexnames" in entry["artifacts"]
    stamp = (corpus / "data.noun").stat().st_mtime_ns
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, root)
        assert wn.build() == entry  # skipped: nothing rewritten
    assert (corpus / "data.noun").stat().st_mtime_ns == stamp


@needs_wordnet
def test_lemmatizer_reads_the_built_copy(built):
    import nltk
    from nltk.stem import WordNetLemmatizer

    root, _ = built
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, root)
        mp.setattr(nltk.data, "path", list(nltk.data.path))
        lemmatizer = wn.get_lemmatizer()
        # nltk 3.10's path sandbox (nltk.pathsec) reads only below nltk.data.path
        assert nltk.data.path[0] == str(root / "data/raw/nltk_data")
        wordnet = wn.get_wordnet()
        assert isinstance(lemmatizer, WordNetLemmatizer)
        assert lemmatizer.lemmatize("dogs") == "dog"
        assert lemmatizer.lemmatize("geese") == "goose"  # noun.exc
        assert lemmatizer.lemmatize("running", pos="v") == "run"
        assert lemmatizer.lemmatize("running") == "running"  # a noun already
        assert lemmatizer.lemmatize("xyzzyqq") == "xyzzyqq"
        dog = wordnet.synsets("dog")[0]
        assert dog.name() == "dog.n.01" and dog.lexname() == "noun.animal"  # lexnames numbering
        assert wordnet.synset("run.v.01").lexname() == "verb.motion"


def test_stop_words_are_scikit_learns_english_list():
    from sklearn.feature_extraction.text import TfidfVectorizer

    words = wn.english_stop_words()
    assert words == frozenset(TfidfVectorizer(stop_words="english").get_stop_words())
    assert len(words) == 318 and {"the", "and", "of", "a"} <= words and "dog" not in words
