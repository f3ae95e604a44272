"""WordNet 3.0 for nltk (Debian ``wordnet-base``) and the English stop-word list.

Debian installs the WordNet database in ``/usr/share/wordnet``, but nltk 3.10 cannot read
that folder as it is: it looks for ``corpora/wordnet`` under an ``nltk_data`` folder and
opens ``lexnames`` and ``index.sense``, which the package lacks. :func:`build` copies the
database to ``data/raw/nltk_data/corpora/wordnet/``, writes ``lexnames`` (the 45
lexicographer files of ``lexnames(5WN)``: number, name, syntactic category) and an empty
``index.sense`` (enough for lemmatising and synsets; sense-key look-ups such as
``lemma_from_key`` need the real file). Nothing is downloaded.

:func:`get_wordnet` returns an nltk ``WordNetCorpusReader`` on that folder and
:func:`get_lemmatizer` a ``WordNetLemmatizer`` bound to it; both load once per process.

Stop words: nltk's ``stopwords`` corpus is not installed here, so :func:`english_stop_words`
returns scikit-learn's ``ENGLISH_STOP_WORDS`` (318 words, from the Glasgow Information
Retrieval Group's list), the same list ``TfidfVectorizer(stop_words="english")`` uses.
"""
from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import Any

from .. import paths
from ..io import atomic_path, atomic_write_text
from . import manifest
from .base import MissingSourceError

NAME = "wordnet"
DEBIAN_PACKAGE = "wordnet-base"
WORDNET_DIR = Path("/usr/share/wordnet")
INSTALL_COMMAND = f"sudo apt-get install --no-install-recommends {DEBIAN_PACKAGE}"
LICENCE = "WordNet 3.0 licence (Princeton University; permissive, keep the copyright notice)"
BUILD_PARAMS: dict[str, Any] = {"layout": 1}
# Files nltk's WordNetCorpusReader opens (besides lexnames and index.sense).
REQUIRED_FILES = tuple(f"{kind}.{pos}" for kind in ("index", "data") for pos in ("noun", "verb", "adj", "adv")) + \
    tuple(f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv"))
# lexnames(5WN): lexicographer file number (= position), name, syntactic category
# (1 noun, 2 verb, 3 adjective, 4 adverb).
LEXNAMES = (
    ("adj.all", 3), ("adj.pert", 3), ("adv.all", 4), ("noun.Tops", 1), ("noun.act", 1),
    ("noun.animal", 1), ("noun.artifact", 1), ("noun.attribute", 1), ("noun.body", 1),
    ("noun.cognition", 1), ("noun.communication", 1), ("noun.event", 1), ("noun.feeling", 1),
    ("noun.food", 1), ("noun.group", 1), ("noun.location", 1), ("noun.motive", 1),
    ("noun.object", 1), ("noun.person", 1), ("noun.phenomenon", 1), ("noun.plant", 1),
    ("noun.possession", 1), ("noun.process", 1), ("noun.quantity", 1), ("noun.relation", 1),
    ("noun.shape", 1), ("noun.state", 1), ("noun.substance", 1), ("noun.time", 1),
    ("verb.body", 2), ("verb.change", 2), ("verb.cognition", 2), ("verb.communication", 2),
    ("verb.competition", 2), ("verb.consumption", 2), ("verb.contact", 2), ("verb.creation", 2),
    ("verb.emotion", 2), ("verb.motion", 2), ("verb.perception", 2), ("verb.possession", 2),
    ("verb.social", 2), ("verb.stative", 2), ("verb.weather", 2), ("adj.ppl", 3),
)




def nltk_data_dir() -> Path:
    """``data/raw/nltk_data`` (git-ignored): put it on ``nltk.data.path``."""
    return paths.RAW_DIR / "nltk_data"


def corpus_dir() -> Path:
    """``data/raw/nltk_data/corpora/wordnet``: where :func:`build` puts the database."""
    return nltk_data_dir() / "corpora" / "wordnet"


def lexnames_text() -> str:
    """The ``lexnames`` file: ``NN<TAB>name<TAB>category`` per line, 45 lines."""
    return "".join(f"{i:02d}\t{name}\t{cat}\n" for i, (name, cat) in enumerate(LEXNAMES))


def _count_synsets(data_file: Path) -> int:
    """Synset lines of a ``data.<pos>`` file (its licence header lines start with spaces)."""
    with open(data_file, "rb") as fh:
        return sum(1 for line in fh if line[:1] not in (b" ", b"\n"))


def build(force: bool = False) -> dict[str, Any]:
    """Copy the Debian WordNet database into ``nltk_data`` and add ``lexnames`` / ``index.sense``.

    Skips when built (manifest entry with unchanged artifacts). Raises
    :class:`MissingSourceError` with the ``apt-get`` command when the package is absent.
    Returns the manifest entry.
    """
    if not force and manifest.is_built(NAME, BUILD_PARAMS):
        return manifest.load_manifest()[NAME]
    missing = [f for f in REQUIRED_FILES if not (WORDNET_DIR / f).is_file()]
    if missing:
        raise MissingSourceError(f"WordNet source missing: {WORDNET_DIR / missing[0]} not found (Debian "
                                 f"package {DEBIAN_PACKAGE}). Install it with:\n    {INSTALL_COMMAND}")
    out = corpus_dir()
    artifacts = []
    for src in sorted(p for p in WORDNET_DIR.iterdir() if p.is_file()):
        with atomic_path(out / src.name) as tmp:
            shutil.copyfile(src, tmp)
        artifacts.append(out / src.name)
    if not (WORDNET_DIR / "lexnames").is_file():
        artifacts.append(atomic_write_text(out / "lexnames", lexnames_text()))
    if not (WORDNET_DIR / "index.sense").is_file():
        artifacts.append(atomic_write_text(out / "index.sense", ""))
    version = manifest.debian_version(DEBIAN_PACKAGE)
    counts = {f"synsets_{pos}": _count_synsets(out / f"data.{pos}") for pos in ("noun", "verb", "adj", "adv")}
    entry = {
        "source": f"Debian {DEBIAN_PACKAGE} {version} ({WORDNET_DIR}), plus lexnames "
                  "(from lexnames(5WN)) and an empty index.sense",
        "version": version, "licence": LICENCE, "simulated": False, "committed": False,
        "counts": {"files": len(artifacts), "lexnames": len(LEXNAMES), **counts},
        "params": BUILD_PARAMS,
    }
    return manifest.record_build(NAME, entry, artifacts)


@functools.lru_cache(maxsize=4)
def _reader(root: str):
    """Build if needed, then load (once per process and folder)."""
    from nltk.corpus.reader import CorpusReader, WordNetCorpusReader
    from nltk.corpus.util import LazyCorpusLoader

    build()

    # Same Open Multilingual WordNet hook as nltk.corpus.wordnet (lazy: only used if installed).
    omw = LazyCorpusLoader("omw-2.0", CorpusReader, r".*/wn-data-.*\.tab", encoding="utf8")
    return WordNetCorpusReader(root, omw)


def get_wordnet():
    """nltk ``WordNetCorpusReader`` on the built copy (built on first use; loads in 2-5 s).

    Puts ``data/raw/nltk_data`` first on ``nltk.data.path``: nltk 3.10's path sandbox
    (``nltk.pathsec``) refuses to read files outside it, so it must stay there while the
    reader is used. ``nltk.corpus.wordnet`` then finds the same database, but loads a second
    copy: use this reader instead.
    """
    import nltk

    data_dir = str(nltk_data_dir())
    if data_dir not in nltk.data.path:
        nltk.data.path.insert(0, data_dir)
    return _reader(str(corpus_dir()))


@functools.cache
def _bound_lemmatizer_class():
    from nltk.stem import WordNetLemmatizer

    class BoundWordNetLemmatizer(WordNetLemmatizer):
        """nltk's ``WordNetLemmatizer`` whose morphy uses a given reader, not ``nltk.corpus.wordnet``."""

        def __init__(self, wordnet) -> None:
            self.wordnet = wordnet

        def _morphy(self, form, pos, check_exceptions=True):
            return self.wordnet._morphy(form, pos, check_exceptions)

        def morphy(self, form, pos=None, check_exceptions=True):
            return self.wordnet.morphy(form, pos, check_exceptions)

    return BoundWordNetLemmatizer


def get_lemmatizer():
    """An nltk ``WordNetLemmatizer`` reading the built WordNet copy (no download).

    ``get_lemmatizer().lemmatize("geese")`` -> ``"goose"``; pass ``pos="v"`` for verbs.
    """
    return _bound_lemmatizer_class()(get_wordnet())


def english_stop_words() -> frozenset[str]:
    """scikit-learn's ``ENGLISH_STOP_WORDS`` (318 lower-case words): nltk's stopwords corpus
    is not installed here, and this list matches ``TfidfVectorizer(stop_words="english")``."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)
