"""Every document the workbook points a reader to exists in the repository.

Scanned: the Markdown cells of ``notebooks/**/*.ipynb``; the docstrings, other string
literals and comments of ``lib/clickvision/**/*.py``; and the Markdown files at the root and
in ``docs/``. A reference is any word naming a Markdown file (``docs/DESIGN.md``,
``../../docs/READING-NOTES.md#paper-a-mtmdd-vm``) or one of the project's notes by name
(``READING-NOTES``, ``IMPLEMENTATION-FACTS``), with or without ``.md``.

A reference resolves when it is a path, relative to the referring file's folder or to the
repository root, of a file inside the repository; an ``#anchor`` must match a heading of
that file (GitHub's heading ids). A bare name such as ``READING-NOTES`` or ``DESIGN.md`` in
``lib/`` does not resolve: write ``docs/READING-NOTES.md`` (from the repository root). Paths
outside the repository (``../shared/...``, absolute paths) and URLs do not count as the
repository's documents: the reader of a clone does not have them.
"""
from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTE_NAMES = ("READING-NOTES", "IMPLEMENTATION-FACTS")
WORD = re.compile(r"[\w./#-]+")


def references(text: str) -> list[str]:
    """The document references in ``text`` (see the module docstring), in order."""
    return [word for _, word in located_references(text)]


def located_references(text: str) -> list[tuple[int, str]]:
    """(offset in ``text``, reference) of every document reference in ``text``."""
    out = []
    for m in WORD.finditer(text):
        start = m.start()
        if start >= 1 and text[start - 1] == ":":
            continue  # part of a URL (scheme:...) or a Sphinx role
        word = m.group(0).rstrip(".-")
        path = word.split("#", 1)[0]
        if not path or word.startswith("#"):
            continue
        if re.search(r"[\w-]\.md$", path) or any(name in path for name in NOTE_NAMES):
            out.append((start, word))
    return out


def github_anchor(heading: str) -> str:
    """GitHub's id of a Markdown heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"`|\*\*|\*|_(?=\W)|(?<=\W)_", "", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found, in_code = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and re.match(r"#{1,6} ", line):
            found.add(github_anchor(line.lstrip("#")))
    return found


def resolve(ref: str, folder: Path) -> str | None:
    """None when ``ref`` (seen in a file in ``folder``) resolves, else why it does not."""
    path, _, anchor = ref.partition("#")
    if path.startswith("/"):
        return "an absolute path, not a file of the repository"
    for base in (folder, ROOT):
        target = (base / path).resolve()
        if target.is_file() and target.is_relative_to(ROOT):
            if anchor and target.suffix == ".md" and anchor not in anchors(target):
                return f"{target.relative_to(ROOT)} has no heading with id #{anchor}"
            return None
    if "/" not in path:
        stem = path[:-3] if path.endswith(".md") else path
        hint = f"docs/{stem}.md" if (ROOT / "docs" / f"{stem}.md").is_file() else "docs/READING-NOTES.md"
        return f"a bare name: give the path from the repository root, e.g. {hint}"
    if any(p == ".." for p in Path(path).parts):
        outside = (folder / path).resolve()
        if not outside.is_relative_to(ROOT):
            return "a path outside the repository"
    return "no such file in the repository"


# ------------------------------------------------------------------------------ sources

def notebook_refs() -> list[tuple[str, str, Path]]:
    """(where, reference, folder) for every reference in a notebook's Markdown cells."""
    out = []
    for nb in sorted((ROOT / "notebooks").rglob("*.ipynb")):
        if any(part.startswith(".") for part in nb.relative_to(ROOT).parts):
            continue  # hidden scratch copies, ignored by pytest too
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        for i, cell in enumerate(cells):
            if cell.get("cell_type") != "markdown":
                continue
            text = "".join(cell.get("source", []))
            for pos, ref in located_references(text):
                line = text.count("\n", 0, pos) + 1
                out.append((f"{nb.relative_to(ROOT)} (markdown cell {i}, line {line})", ref, nb.parent))
    return out


def _python_texts(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string literal (docstrings included) and comment of a module."""
    source = path.read_text(encoding="utf-8")
    texts = [(node.lineno, node.value) for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            texts.append((tok.start[0], tok.string))
    return sorted(texts)


def library_refs() -> list[tuple[str, str, Path]]:
    out = []
    for py in sorted((ROOT / "lib" / "clickvision").rglob("*.py")):
        for line, text in _python_texts(py):
            for pos, ref in located_references(text):
                out.append((f"{py.relative_to(ROOT)}:{line + text.count(chr(10), 0, pos)}", ref, py.parent))
    return out


def markdown_refs() -> list[tuple[str, str, Path]]:
    out = []
    for md in sorted([*ROOT.glob("*.md"), *(ROOT / "docs").glob("*.md")]):
        in_code = False
        for n, line in enumerate(md.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("```"):
                in_code = not in_code
                continue
            if in_code:
                continue
            for ref in references(line):
                out.append((f"{md.relative_to(ROOT)}:{n}", ref, md.parent))
    return out


def unresolved(refs: list[tuple[str, str, Path]]) -> list[str]:
    bad = []
    for where, ref, folder in refs:
        why = resolve(ref, folder)
        if why:
            bad.append(f"{where}: {ref!r}: {why}")
    return bad


# -------------------------------------------------------------------------------- tests

@pytest.mark.parametrize("name", ["docs/READING-NOTES.md", "docs/DESIGN.md", "docs/REFERENCES.md",
                                  "DATA-LICENSES.md", "LICENSE", "CITATION.cff"])
def test_reader_documents_exist(name):
    assert (ROOT / name).is_file(), f"{name} is missing"


def test_notebook_markdown_references_resolve():
    bad = unresolved(notebook_refs())
    assert not bad, ("notebook Markdown refers to documents that are not in the repository:\n  "
                     + "\n  ".join(bad))


def test_library_references_resolve():
    bad = unresolved(library_refs())
    assert not bad, ("library docstrings/comments refer to documents that are not in the repository:\n  "
                     + "\n  ".join(bad))


def test_markdown_documents_references_resolve():
    bad = unresolved(markdown_refs())
    assert not bad, "Markdown files refer to documents that are not in the repository:\n  " + "\n  ".join(bad)


def test_citation_and_licence_match_pyproject():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    version = re.search(r'^version\s*=\s*"([^"]+)"', pyproject, re.M).group(1)
    licence = re.search(r'^license\s*=\s*"([^"]+)"', pyproject, re.M).group(1)
    cff = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert re.search(rf"^version:\s*\"?{re.escape(version)}\"?\s*$", cff, re.M), \
        f"CITATION.cff version differs from pyproject.toml's {version}"
    assert re.search(rf"^license:\s*\"?{re.escape(licence)}\"?\s*$", cff, re.M), \
        f"CITATION.cff license differs from pyproject.toml's {licence}"
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith(f"{licence} License"), \
        f"LICENSE is not the {licence} licence named in pyproject.toml"


# ----------------------------------------------------------------- the scanner itself

@pytest.mark.parametrize("text, refs", [
    ("as READING-NOTES pins.", ["READING-NOTES"]),
    ("see DESIGN.md \"Data\"", ["DESIGN.md"]),
    ("[notes](../../docs/READING-NOTES.md#paper-a-mtmdd-vm))", ["../../docs/READING-NOTES.md#paper-a-mtmdd-vm"]),
    ("read https://example.org/x/README.md and /tmp/brief.md", ["/tmp/brief.md"]),
    ("no reference: data/MANIFEST.json, `.md` suffix alone", []),
])
def test_scanner_finds_references(text, refs):
    assert references(text) == refs


def test_resolver():
    docs = ROOT / "docs"
    assert resolve("README.md", ROOT / "lib" / "clickvision") is None  # from the root
    assert resolve("READING-NOTES.md", docs) is None  # beside the referring file
    assert "bare name" in resolve("READING-NOTES", ROOT / "lib" / "clickvision")
    assert "outside the repository" in resolve("../shared/papers/READING-NOTES.md", ROOT)
    assert "absolute" in resolve("/tmp/brief.md", ROOT)
    assert "no heading" in resolve("docs/READING-NOTES.md#no-such-section", ROOT)
    assert resolve("docs/READING-NOTES.md#paper-a-mtmdd-vm", ROOT) is None
