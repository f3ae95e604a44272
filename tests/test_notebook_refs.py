"""Every notebook names its paper with the full reference and link (tools/notebook_refs.py),
and the tool that writes those blocks is idempotent and touches only the title cell."""
from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("notebook_refs", ROOT / "tools" / "notebook_refs.py")
refs_tool = importlib.util.module_from_spec(_spec)
sys.modules["notebook_refs"] = refs_tool
_spec.loader.exec_module(refs_tool)


def test_every_notebook_has_an_up_to_date_reference_block():
    """Fails until the tool has been applied to every notebook:
    ``.venv/bin/python tools/notebook_refs.py --apply``."""
    stale = [str(p.relative_to(ROOT)) for p in refs_tool.stale()]
    assert not stale, "missing or stale paper-reference blocks (run tools/notebook_refs.py --apply): " + ", ".join(stale)


def test_references_cover_the_four_paper_folders():
    refs = refs_tool.load_references()
    folders = {p.name for p in (ROOT / "notebooks").iterdir() if p.is_dir() and not p.name.startswith(".")}
    assert set(refs) == folders - {refs_tool.WORKBOOK_FOLDER}
    assert [e["letter"] for e in refs.values()] == ["A", "B", "C", "D"]


def test_links_are_only_the_dois_the_papers_print():
    """A link only where the paper's own text prints the identifier (papers A and D print their
    DOI); B and C print none, so they are cited by venue and year."""
    refs = {e["letter"]: e for e in refs_tool.load_references().values()}
    assert "https://doi.org/10.1109/TIP.2019.2921861" in refs_tool.reference_line(refs["A"])
    assert "https://doi.org/10.1145/3511808.3557260" in refs_tool.reference_line(refs["D"])
    for letter in "BC":
        line = refs_tool.reference_line(refs[letter])
        assert "http" not in line and "prints no DOI" in line
        assert str(refs[letter]["year"]) in line


def _copy_notebooks(tmp_path: Path, monkeypatch, names: list[str]) -> list[Path]:
    out = []
    for name in names:
        src = next((ROOT / "notebooks").rglob(name))
        dst = tmp_path / "notebooks" / src.parent.name / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        nb = json.loads(src.read_text())
        first = "".join(nb["cells"][0]["source"])
        nb["cells"][0]["source"] = refs_tool.BLOCK_RE.sub("\n\n", first).splitlines(keepends=True)  # no block yet
        dst.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        out.append(dst)
    monkeypatch.setattr(refs_tool, "ROOT", tmp_path)
    monkeypatch.setattr(refs_tool, "NOTEBOOKS", tmp_path / "notebooks")
    return out


def test_apply_is_idempotent_and_touches_only_the_title_cell(tmp_path, monkeypatch):
    paths = _copy_notebooks(tmp_path, monkeypatch, ["00.01-Workbook-Tour.ipynb", "B.01-Click-Graph.ipynb"])
    before = {p: json.loads(p.read_text()) for p in paths}
    assert sorted(refs_tool.stale()) == sorted(paths)
    assert sorted(refs_tool.apply()) == sorted(paths)
    texts = {p: p.read_text() for p in paths}
    assert refs_tool.apply() == [] and refs_tool.stale() == []  # a second run changes nothing
    assert {p: p.read_text() for p in paths} == texts
    for p in paths:
        after = json.loads(p.read_text())
        expected = copy.deepcopy(before[p])
        expected["cells"][0]["source"] = after["cells"][0]["source"]
        assert after == expected  # code, outputs and metadata untouched
        first = "".join(after["cells"][0]["source"])
        assert first.startswith(before[p]["cells"][0]["source"][0])  # the title stays first
        assert first.count(refs_tool.BEGIN) == 1
    tour = "".join(json.loads(paths[0].read_text())["cells"][0]["source"])
    assert all(f"**{x}.**" in tour for x in "ABCD")  # a 00 notebook lists the four papers
    graph = "".join(json.loads(paths[1].read_text())["cells"][0]["source"])
    assert "**Paper B.**" in graph and "../../docs/REFERENCES.md" in graph


def test_a_stale_block_is_found_and_refreshed(tmp_path, monkeypatch):
    (p,) = _copy_notebooks(tmp_path, monkeypatch, ["D.01-CF-Models.ipynb"])
    refs_tool.apply()
    nb = json.loads(p.read_text())
    nb["cells"][0]["source"] = [line.replace("Bibas", "Bibbas") for line in nb["cells"][0]["source"]]
    p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    assert refs_tool.stale() == [p]
    assert refs_tool.main(["--check"]) == 1
    refs_tool.apply()
    assert refs_tool.main(["--check"]) == 0
    assert "Bibbas" not in p.read_text()


def test_only_filter_and_hidden_copies(tmp_path, monkeypatch):
    paths = _copy_notebooks(tmp_path, monkeypatch, ["00.02-Data-Tour.ipynb", "C.01-Cross-Modal-Data-and-MAP.ipynb"])
    hidden = paths[1].parent / ".C.01-scratch.ipynb"
    hidden.write_text(paths[1].read_text())
    assert refs_tool.apply(only=["C.01-"]) == [paths[1]]
    assert refs_tool.stale() == [paths[0]]  # the hidden scratch copy is not a notebook of the workbook


def test_a_notebook_in_another_json_layout_is_refused(tmp_path, monkeypatch):
    (p,) = _copy_notebooks(tmp_path, monkeypatch, ["00.03-Claims-Ledger.ipynb"])
    p.write_text(json.dumps(json.loads(p.read_text()), indent=2))
    with pytest.raises(refs_tool.RefsError, match="JSON layout"):
        refs_tool.apply()


def test_references_page_agrees_with_citation_cff():
    """docs/REFERENCES.md is written by hand: each paper's title and DOI as in CITATION.cff, and
    no link for a paper whose entry has none."""
    import re

    page = re.sub(r"\s+", " ", (ROOT / "docs" / "REFERENCES.md").read_text(encoding="utf-8"))
    for entry in refs_tool.load_references().values():
        section = page.split(f"## {entry['letter']}. ", 1)[1].split("## ", 1)[0]
        assert str(entry["title"]) in section, entry["letter"]
        if entry.get("doi"):
            assert f"https://doi.org/{entry['doi']}" in section
        elif not entry.get("url"):
            assert "http" not in section.split("Reproduced:", 1)[0], entry["letter"]
