#!/usr/bin/env python
"""Write, in every notebook's first Markdown cell, the full reference of the notebook's paper.

    python tools/notebook_refs.py --check                 # exit 1 listing notebooks whose block is missing or stale
    python tools/notebook_refs.py --apply [--only TEXT]   # write/refresh the blocks (--only: paths containing TEXT)
    python tools/notebook_refs.py --show A                # print the block of paper A (or 00 for the workbook's)

The references come from one place: the ``references`` of ``CITATION.cff`` (the paper
behind each notebook folder is named in an entry's ``notes``: ``notebooks/A-mtmdd-vm/``).
A link is given only from the entry's ``doi`` (or ``url``), and an entry carries one only where
the paper's own text prints it (docs/REFERENCES.md says, per paper, where each link comes
from); an entry without one is cited by venue and year.

The block sits right under the notebook's title line, between two HTML comments (invisible
in JupyterLab and in the built book):

    <!-- paper-reference: written by tools/notebook_refs.py from CITATION.cff; edit there -->
    ...
    <!-- /paper-reference -->

A paper notebook's block names its paper; a ``00-workbook`` notebook's names the four. The
tool changes only that Markdown cell's source (never code, outputs or metadata), writes a
notebook only when its block changes (so a second run changes nothing), and refuses a
notebook whose JSON it could not write back byte for byte apart from that cell.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CITATION = ROOT / "CITATION.cff"
BEGIN = "<!-- paper-reference: written by tools/notebook_refs.py from CITATION.cff; edit there -->"
END = "<!-- /paper-reference -->"
BLOCK_RE = re.compile(r"\n*<!-- paper-reference\b.*?<!-- /paper-reference -->\n*", re.DOTALL)
WORKBOOK_FOLDER = "00-workbook"


class RefsError(RuntimeError):
    """CITATION.cff or a notebook cannot be read as this tool expects."""


# ------------------------------------------------------------------------------ references

def load_references(path: Path = CITATION) -> dict[str, dict[str, Any]]:
    """Notebook folder name -> its paper's CITATION.cff entry, with ``letter`` added ("A".."D")."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise RefsError(f"{path}: cannot read the references ({err})") from err
    out: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(data.get("references") or []):
        notes = str(entry.get("notes", ""))
        letter = re.search(r"\bPaper ([A-Z])\b", notes)
        folder = re.search(r"notebooks/([^/\s]+)/", notes)
        if not (letter and folder):
            raise RefsError(f"{path}: references[{i}] ({entry.get('title')!r}) has no 'Paper X' and "
                            "'notebooks/<folder>/' in its notes")
        out[folder.group(1)] = {**entry, "letter": letter.group(1)}
    if not out:
        raise RefsError(f"{path}: no references")
    return dict(sorted(out.items(), key=lambda kv: kv[1]["letter"]))


def _authors(entry: dict[str, Any]) -> str:
    names = []
    for a in entry.get("authors", []):
        names.append(" ".join(p for p in (a.get("given-names"), a.get("family-names")) if p) or a.get("name", ""))
    return ", ".join(names)


def _venue(entry: dict[str, Any]) -> str:
    if entry.get("journal"):
        v = f"*{entry['journal']}*"
        if entry.get("volume"):
            v += f" {entry['volume']}" + (f"({entry['issue']})" if entry.get("issue") else "")
            if entry.get("start"):
                v += f":{entry['start']}" + (f"-{entry['end']}" if entry.get("end") else "")
        return v
    conference = (entry.get("conference") or {}).get("name", "")
    collection = entry.get("collection-title", "")
    if collection and conference and conference in collection:
        parts = [f"*{collection}*"]
    else:
        parts = [f"*{p}*" for p in (conference, collection) if p]
        if collection and entry.get("volume"):
            parts[-1] += f" vol. {entry['volume']}"
    return ", ".join(parts)


def _link(entry: dict[str, Any]) -> str:
    if entry.get("doi"):
        doi = str(entry["doi"])
        return f"DOI [{doi}](https://doi.org/{doi})"
    if entry.get("url"):
        return f"<{entry['url']}>"
    return "(the paper's text prints no DOI or preprint link: cited by venue and year)"


def reference_line(entry: dict[str, Any]) -> str:
    """One paper's full reference in Markdown: authors. title. venue, year. link."""
    title = str(entry["title"]).rstrip(".")
    return f"{_authors(entry)}. {title}. {_venue(entry)}, {entry['year']}. {_link(entry)}"


def block(folder: str, refs: dict[str, dict[str, Any]], depth: int = 2) -> str:
    """The Markdown block of a notebook in ``notebooks/<folder>/`` (``depth`` folders below the root)."""
    up = "../" * depth
    tail = (f"All four papers and where each link comes from: [`docs/REFERENCES.md`]({up}docs/REFERENCES.md); "
            f"to cite this workbook: [`CITATION.cff`]({up}CITATION.cff).")
    if folder == WORKBOOK_FOLDER:
        lines = ["> **The four papers this workbook reproduces**", ">"]
        lines += [f"> - **{e['letter']}.** {reference_line(e)}" for e in refs.values()]
        lines += [">", f"> {tail}"]
    elif folder in refs:
        e = refs[folder]
        lines = [f"> **Paper {e['letter']}.** {reference_line(e)}", ">", f"> {tail}"]
    else:
        raise RefsError(f"notebooks/{folder}/: no CITATION.cff reference names this folder in its notes")
    return "\n".join([BEGIN, *lines, END])


# ------------------------------------------------------------------------------ notebooks

def notebook_paths(only: list[str] | None = None) -> list[Path]:
    """Every committed notebook (hidden scratch copies skipped), filtered by ``only`` substrings."""
    found = sorted(p for p in NOTEBOOKS.rglob("*.ipynb")
                   if not any(part.startswith(".") for part in p.relative_to(NOTEBOOKS).parts))
    if only:
        found = [p for p in found if any(o in str(p.relative_to(NOTEBOOKS)) for o in only)]
    return found


def with_block(text: str, new_block: str) -> str:
    """``text`` (a first Markdown cell) with its reference block replaced or put under the title."""
    m = BLOCK_RE.search(text)
    if m:  # take the block out with the blank lines around it, keeping the rest as it was
        text = text[:m.start()] + ("\n\n" if 0 < m.start() and m.end() < len(text) else "") + text[m.end():]
    lines = text.split("\n")
    if lines and lines[0].startswith("# "):
        title, rest = lines[0], "\n".join(lines[1:]).lstrip("\n")
        return f"{title}\n\n{new_block}" + (f"\n\n{rest}" if rest else "")
    rest = text.lstrip("\n")
    return new_block + (f"\n\n{rest}" if rest else "")


def _dump(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def refreshed(path: Path, refs: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """(current file text, the text with an up-to-date block); equal when nothing is to do."""
    text = path.read_text(encoding="utf-8")
    nb = json.loads(text)
    cells = nb.get("cells", [])
    if not cells or cells[0].get("cell_type") != "markdown":
        raise RefsError(f"{path.relative_to(ROOT)}: the first cell is not a Markdown title cell")
    depth = len(path.relative_to(ROOT).parts) - 1
    folder = path.relative_to(NOTEBOOKS).parts[0]
    source = "".join(cells[0]["source"])
    new_source = with_block(source, block(folder, refs, depth))
    if new_source == source:
        return text, text
    if _dump(nb) != text:
        raise RefsError(f"{path.relative_to(ROOT)}: not in the workbook's JSON layout (indent 1); "
                        "rewrite it with the workbook runner first, so this tool changes only the block")
    cells[0]["source"] = new_source.splitlines(keepends=True)
    return text, _dump(nb)


def write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(suffix=".ipynb", dir=path.parent, prefix=f".{path.stem}.refs.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, os.stat(path).st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def stale(only: list[str] | None = None) -> list[Path]:
    """Notebooks whose block is missing or differs from CITATION.cff's references."""
    refs = load_references()
    return [p for p in notebook_paths(only) if len(set(refreshed(p, refs))) > 1]


def apply(only: list[str] | None = None) -> list[Path]:
    """Write the blocks; return the notebooks changed."""
    refs = load_references()
    changed = []
    for p in notebook_paths(only):
        old, new = refreshed(p, refs)
        if new != old:
            write_atomic(p, new)
            changed.append(p)
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 listing notebooks whose block is missing or stale")
    mode.add_argument("--apply", action="store_true", help="write or refresh the blocks")
    mode.add_argument("--show", metavar="PAPER", help="print the block of paper A-D (00: the workbook notebooks')")
    ap.add_argument("--only", action="append", metavar="TEXT",
                    help="only notebooks whose path under notebooks/ contains TEXT (repeatable)")
    args = ap.parse_args(argv)
    try:
        if args.show:
            refs = load_references()
            folder = WORKBOOK_FOLDER if args.show == "00" else next(
                (f for f, e in refs.items() if e["letter"] == args.show.upper()), None)
            if folder is None:
                raise RefsError(f"--show: no paper {args.show!r} in CITATION.cff (A-D or 00)")
            print(block(folder, refs))
            return 0
        if args.check:
            bad = stale(args.only)
            for p in bad:
                print(f"missing or stale reference block: {p.relative_to(ROOT)}")
            if bad:
                print(f"{len(bad)} notebook(s); fix with: python tools/notebook_refs.py --apply", file=sys.stderr)
            return 1 if bad else 0
        for p in apply(args.only):
            print(f"wrote {p.relative_to(ROOT)}")
        return 0
    except RefsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
