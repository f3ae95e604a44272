"""The executed book: every page has the contents and search sidebar, its own title, previous /
next links; notebook pages name their paper with a link; search finds sections (under Node);
and a page renders with its navigation in headless Chromium (skipped where none is installed)."""
from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from clickvision import book, paths

CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.fixture(scope="module")
def site(tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setattr(paths, "RESULTS_DIR", paths.PROJ_ROOT / "results")  # the committed claims
    out = tmp_path_factory.mktemp("book")
    index = book.build_book(out, mathjax="cdn")
    return out, index


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _search_index(out: Path) -> list[dict]:
    text = (out / "static" / "search-index.js").read_text()
    assert text.startswith("window.CV_SEARCH = ")
    return json.loads(text[len("window.CV_SEARCH = "):].rstrip().rstrip(";"))


def test_every_page_has_navigation_title_and_pager(site):
    out, index = site
    pages = book.book_pages()
    notebooks = [p for p in pages if p.kind == "notebook"]
    from clickvision.workbook import notebooks as all_notebooks

    assert len(notebooks) == len(all_notebooks())
    for i, page in enumerate(pages):
        text = (out / page.href).read_text()
        title = re.search(r"<title>(.*?)</title>", text, re.S).group(1)
        assert page.title.split(" (")[0] in title.replace("&amp;", "&") and title.strip() != "Notebook", page.href
        assert text.count('class="cv-nav"') == 1 and 'id="cv-search-input"' in text, page.href
        # the contents list every notebook, relative to this page, and mark this page
        for nb in notebooks:
            assert f'href="{page.root}{nb.href}"' in text, (page.href, nb.href)
        if page.kind in ("notebook", "doc"):
            marked = [a for a in re.findall(r"<a [^>]*>", text) if 'aria-current="page"' in a]
            assert marked == [a for a in marked if f'href="{page.root}{page.href}"' in a] and len(marked) == 1, page.href
        assert ('rel="prev"' in text) == (i > 0), page.href
        assert 'rel="next"' in text or i == len(pages) - 1, page.href
        assert "static/book.js" in text and "static/search-index.js" in text


def test_notebook_pages_name_and_link_their_paper(site):
    """A and D print a DOI; B and C print none (cited by venue and year, docs/REFERENCES.md says why):
    their pages link to the book's references page instead. Repository links point into the book."""
    out, _ = site
    for page in book.book_pages():
        if page.kind == "notebook" and page.section in "ABCD":
            text = (out / page.href).read_text()
            assert f"Paper {page.section}." in text, page.href
            doi = re.search(r'href="https://doi\.org/10\.[^"]+"', text)
            assert doi or "prints no DOI or preprint link" in text, page.href
            assert f'href="{page.root}docs/REFERENCES.html"' in text and ".md\"" not in text, page.href
    assert (out / "docs" / "REFERENCES.html").exists() and (out / "CITATION.cff").exists()


def test_front_page_counts_claims_and_lists_papers(site):
    out, index = site
    text = index.read_text()
    for name in book.SECTION_NAMES.values():
        assert name in text
    assert "Claims judged" in text and "<th>inconclusive</th>" in text


def test_search_index_covers_every_page_with_anchored_sections(site):
    out, _ = site
    idx = _search_index(out)
    hrefs = {p["url"] for p in idx}
    assert {p.href for p in book.book_pages()} <= hrefs
    for page in idx:
        text = (out / page["url"]).read_text()
        for sec in page["sections"]:
            if sec["id"]:
                assert f'id="{sec["id"]}"' in text or f"id='{sec['id']}'" in text, (page["url"], sec["id"])


def test_sections_of_html_split_at_headings():
    html = ('<html><head><title>x</title><style>p{}</style></head><body><nav>skip me</nav><p>intro</p>'
            '<h2 id="Eq-1">Eq. 1<a class="anchor-link" href="#Eq-1">&#182;</a></h2><p>the loss &amp; its gradient</p>'
            '<script>var no = 1;</script><h3 id="b">B</h3><div>text <b>bold</b></div></body></html>')
    assert book.page_sections(html) == [
        {"id": "", "heading": "", "text": "intro"},
        {"id": "Eq-1", "heading": "Eq. 1", "text": "the loss & its gradient"},
        {"id": "b", "heading": "B", "text": "text bold"}]


def test_local_mathjax_from_a_kept_tarball(tmp_path):
    npm = tmp_path / "npm"
    npm.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"/* mathjax */"
        info = tarfile.TarInfo(f"package/es5/{book.MATHJAX_FILE}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    name, version = book.MATHJAX_PACKAGE
    (npm / f"{name}-{version}.tgz").write_bytes(buf.getvalue())
    static = tmp_path / "static"
    static.mkdir()
    assert book.local_mathjax(static, npm)
    assert (static / book.MATHJAX_FILE).read_bytes() == b"/* mathjax */"
    with pytest.raises(ValueError, match="mathjax"):
        book.build_book(tmp_path / "x", mathjax="offline")


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_search_finds_sections_under_node(site):
    out, _ = site
    script = (
        "global.window = {}; require(process.argv[1]); const b = require(process.argv[2]);"
        "const out = {};"
        "for (const q of process.argv.slice(3)) out[q] = b.search(window.CV_SEARCH, q, 5).map(h => h.url);"
        "console.log(JSON.stringify(out));")
    queries = ["gaussian kernel", "position loss", "zzzz-not-a-word", ""]
    proc = subprocess.run(["node", "-e", script, str(out / "static" / "search-index.js"),
                           str(out / "static" / "book.js"), *queries], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert hits["gaussian kernel"] and all("gaussian" in _page_text(out, u) for u in hits["gaussian kernel"])
    assert any(u.startswith("A-mtmdd-vm/A.04") for u in hits["position loss"])
    assert hits["zzzz-not-a-word"] == [] and hits[""] == []


def _page_text(out: Path, url: str) -> str:
    return (out / url.split("#")[0]).read_text().lower()


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (apt-get install chromium) for the browser test")
def test_a_page_renders_with_navigation_and_search_in_chromium(site, tmp_path):
    out, _ = site
    page = out / "A-mtmdd-vm" / "A.04-Position-Loss.html"
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=5000"]
    shot = tmp_path / "page.png"
    subprocess.run([*flags, "--window-size=1280,900", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    import numpy as np
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape == (900, 1280, 3)
    # the sidebar is drawn: its background colour (book.css: #f6f7f9) fills most of the left strip,
    # with text on it; the current page's entry is highlighted (#1f5fa8); the page itself is white
    left = img[:, :250].reshape(-1, 3)
    assert (left == (246, 247, 249)).all(axis=1).mean() > 0.5
    assert (left == (31, 95, 168)).all(axis=1).sum() > 500
    assert (img[:, 400:].reshape(-1, 3) == 255).all(axis=1).mean() > 0.5
    dom = subprocess.run([*flags, "--dump-dom", (out / "search.html").as_uri() + "?q=position%20loss"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert re.search(r'id="cv-search-summary">\d+ sections? match', dom)
    assert 'href="A-mtmdd-vm/A.04-Position-Loss.html#' in dom
